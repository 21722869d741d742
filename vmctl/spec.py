"""Load spec files into a validated Spec: schema, then the checks a schema cannot express."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from vmctl import naming
from vmctl.errors import Location, Problem, SpecError
from vmctl.model import (
    BootSpec,
    CloudInitSpec,
    DevicesSpec,
    DiskSpec,
    FileRef,
    GuestSpec,
    ImageSpec,
    NetworkSpec,
    NicSpec,
    PoolSpec,
    ShareSpec,
    Spec,
    WaitSpec,
)
from vmctl.specfiles import Entry, MergedSpec, read_and_merge
from vmctl.units import parse_duration, parse_size
from vmctl.yamlsource import NodePath, SourceDoc, dotted


def load_spec(paths: Sequence[str], workspace: str | None = None) -> Spec:
    """Read, validate and merge spec files; raise SpecError listing every problem."""
    if workspace is not None and not naming.WORKSPACE_PATTERN.match(workspace):
        hint = "letters, digits, '.', '_' and '-', at most 40 characters"
        raise SpecError([Problem(None, "workspace", f"invalid workspace name {workspace!r}", hint)])
    merged = read_and_merge(paths)
    return _SpecBuilder(merged, workspace).build()


def _plain(value: Any) -> Any:
    """YAML data as JSON-like data: dates become ISO strings, so a stored copy compares equal."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


class _GuestSource:
    """A guest's body merged over the defaults, able to say where each value was written."""

    def __init__(self, entry: Entry, defaults: Entry | None) -> None:
        self.entry = entry
        self.defaults = defaults
        self.data = _deep_merge(defaults.body if defaults else {}, entry.body)

    def _owner(self, keys: NodePath) -> tuple[SourceDoc, NodePath]:
        for source in (self.entry, self.defaults):
            if source is not None and _has_path(source.body, keys):
                return source.doc, (*source.path, *keys)
        return self.entry.doc, self.entry.path

    def where(self, *keys: str | int) -> Location:
        doc, path = self._owner(keys)
        return doc.where(path)

    def key_where(self, *keys: str | int) -> Location:
        doc, path = self._owner(keys)
        return doc.key_where(path)

    def base_dir(self, *keys: str | int) -> Path:
        return self._owner(keys)[0].base_dir

    def path(self, *keys: str | int) -> str:
        return dotted((*self.entry.path, *keys))


def _has_path(data: Any, keys: NodePath) -> bool:
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return False
        data = data[key]
    return True


class _SpecBuilder:
    """Turns the merged, schema-valid documents into the model, collecting semantic problems."""

    def __init__(self, merged: MergedSpec, workspace: str | None) -> None:
        self.merged = merged
        self.workspace = workspace
        self.problems: list[Problem] = []
        self.project = str(merged.scalars["project"][0]) if "project" in merged.scalars else ""

    def problem(self, where: Location | None, path: str, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(where, path, message, hint))

    def build(self) -> Spec:
        if not self.project:
            first = self.merged.docs[0]
            self.problem(first.where(()), "project", "missing required key 'project'", "add e.g. 'project: lab'")
        if self.merged.defaults and "count" in self.merged.defaults.body:
            d = self.merged.defaults
            self.problem(d.doc.key_where((*d.path, "count")), "defaults.count", "count cannot be a default")
        pools = self._pools()
        images = self._images(pools)
        networks = self._networks()
        guests = self._guests(pools, images, networks)
        self._check_unique_names(guests)
        self._check_unique_macs(guests)
        if self.problems:
            raise SpecError(self.problems)
        connection = self.merged.scalars.get("connection", (None, None))[0]
        files = tuple(d.file for d in self.merged.docs)
        return Spec(self.project, self.workspace, connection, pools, images, networks, guests, files)

    # -- pools, images, networks ------------------------------------------------------------

    def _pools(self) -> tuple[PoolSpec, ...]:
        entries = self.merged.sections["pools"]
        if not entries:
            return (PoolSpec(naming.DEFAULT_POOL, naming.DEFAULT_POOL_PATH),)
        return tuple(PoolSpec(e.name, e.body["path"].rstrip("/") or "/") for e in entries.values())

    def _default_pool(self, pools: tuple[PoolSpec, ...], where: Location, path: str) -> str:
        names = [p.name for p in pools]
        if naming.DEFAULT_POOL in names or len(names) == 1:
            return naming.DEFAULT_POOL if naming.DEFAULT_POOL in names else names[0]
        self.problem(where, path, "several pools and none named 'default': say which", f"add pool: {names[0]}")
        return names[0]

    def _pool_ref(self, pools: tuple[PoolSpec, ...], name: str, where: Location, path: str) -> str:
        if name not in {p.name for p in pools}:
            self._unknown_ref("pool", name, [p.name for p in pools], where, path)
        return name

    def _unknown_ref(self, kind: str, name: str, known: list[str], where: Location, path: str) -> None:
        import difflib

        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean '{close[0]}'?" if close else (f"defined {kind}s: {', '.join(known)}" if known else None)
        self.problem(where, path, f"no {kind} named '{name}'", hint or f"define it under '{kind}s:'")

    def _images(self, pools: tuple[PoolSpec, ...]) -> tuple[ImageSpec, ...]:
        return tuple(self._image(e, pools) for e in self.merged.sections["images"].values())

    def _image(self, entry: Entry, pools: tuple[PoolSpec, ...]) -> ImageSpec:
        body, doc = entry.body, entry.doc
        where, path = doc.where(entry.path), dotted(entry.path)
        if ("path" in body) == ("url" in body):
            self.problem(where, path, "an image needs exactly one of 'path' or 'url'")
        if "url" in body and "sha256" not in body:
            self.problem(where, f"{path}.url", "a downloaded image needs 'sha256' to verify it")
        local = None
        if "path" in body:
            local = (doc.base_dir / body["path"]).resolve()
            if not local.is_file():
                self.problem(doc.where((*entry.path, "path")), f"{path}.path", f"no such file: {local}")
        pool_where = doc.where((*entry.path, "pool"))
        if "pool" in body:
            pool = self._pool_ref(pools, body["pool"], pool_where, f"{path}.pool")
        else:
            pool = self._default_pool(pools, pool_where, f"{path}.pool")
        sha = body.get("sha256")
        return ImageSpec(
            entry.name, body.get("format", "qcow2"), pool, local, body.get("url"), sha and sha.lower(), where
        )

    def _networks(self) -> tuple[NetworkSpec, ...]:
        return tuple(self._network(e) for e in self.merged.sections["networks"].values())

    def _network(self, entry: Entry) -> NetworkSpec:
        body, doc, path = entry.body, entry.doc, dotted(entry.path)
        mode = body["mode"]
        where = doc.where(entry.path)
        ipv4 = body.get("ipv4")
        if mode == "bridge" and "bridge" not in body:
            self.problem(where, path, "a bridge network needs 'bridge: <host bridge>'")
        if mode != "bridge" and "bridge" in body:
            self.problem(doc.key_where((*entry.path, "bridge")), f"{path}.bridge", "only bridge networks name a bridge")
        if mode in ("bridge", "user") and (ipv4 or "dhcp" in body):
            self.problem(where, path, f"a {mode} network has no ipv4/dhcp of vmctl's: the host provides them")
        if mode == "nat" and not ipv4:
            self.problem(where, path, "a nat network needs 'ipv4', e.g. 203.0.113.1/24")
        if ipv4:
            self._check_ipv4(ipv4, doc.where((*entry.path, "ipv4")), f"{path}.ipv4")
        if body.get("dhcp") and not ipv4:
            self.problem(doc.where((*entry.path, "dhcp")), f"{path}.dhcp", "dhcp needs 'ipv4'")
        dhcp = bool(body.get("dhcp", ipv4 is not None))
        libvirt_name = naming.network_name(self.project, entry.name, self.workspace)
        return NetworkSpec(entry.name, libvirt_name, mode, ipv4, dhcp, body.get("bridge"))

    def _check_ipv4(self, text: str, where: Location, path: str) -> None:
        try:
            iface = ipaddress.IPv4Interface(text)
        except ValueError as exc:
            self.problem(where, path, f"not an IPv4 address/prefix: {exc}", "e.g. 198.51.100.1/24")
            return
        net = iface.network
        if iface.ip in (net.network_address, net.broadcast_address) or net.prefixlen > 30:
            self.problem(where, path, f"{text} is not a usable host address on its network", "e.g. 198.51.100.1/24")

    # -- guests --------------------------------------------------------------------------------

    def _guests(
        self, pools: tuple[PoolSpec, ...], images: tuple[ImageSpec, ...], networks: tuple[NetworkSpec, ...]
    ) -> tuple[GuestSpec, ...]:
        guests: list[GuestSpec] = []
        for entry in self.merged.sections["guests"].values():
            source = _GuestSource(entry, self.merged.defaults)
            count = int(source.data.get("count", 1))
            for instance in naming.instance_names(entry.name, count):
                guests.append(_GuestBuilder(self, source, instance, pools, images, networks).build())
        return tuple(guests)

    def _check_unique_names(self, guests: tuple[GuestSpec, ...]) -> None:
        seen: dict[str, GuestSpec] = {}
        for guest in guests:
            other = seen.setdefault(guest.name, guest)
            if other is not guest:
                message = f"guest '{guest.guest}' makes a domain named '{guest.name}', as does '{other.guest}'"
                self.problem(guest.origin, f"guests.{guest.guest}", message, "rename one, or change its count")

    def _check_unique_macs(self, guests: tuple[GuestSpec, ...]) -> None:
        seen: dict[str, str] = {}
        for guest in guests:
            for nic in guest.nics:
                owner = f"{guest.name}.{nic.name}"
                first = seen.setdefault(nic.mac.lower(), owner)
                if first != owner:
                    message = f"MAC {nic.mac} is used by {first} too"
                    self.problem(guest.origin, f"guests.{guest.guest}.nics.{nic.name}.mac", message)


class _GuestBuilder:
    """Builds one guest instance (one of `count`) and checks what the schema cannot."""

    def __init__(
        self,
        spec: _SpecBuilder,
        source: _GuestSource,
        instance: str,
        pools: tuple[PoolSpec, ...],
        images: tuple[ImageSpec, ...],
        networks: tuple[NetworkSpec, ...],
    ) -> None:
        self.spec = spec
        self.src = source
        self.data = source.data
        self.instance = instance
        self.pools = pools
        self.images = {i.name: i for i in images}
        self.networks = {n.name: n for n in networks}
        self.domain = naming.domain_name(instance, spec.workspace)

    def problem(self, keys: tuple[str | int, ...], message: str, hint: str | None = None) -> None:
        self.spec.problem(self.src.where(*keys), self.src.path(*keys), message, hint)

    def build(self) -> GuestSpec:
        data = self.data
        if not naming.is_valid_libvirt_name(self.domain):
            self.problem((), f"'{self.domain}' is not a valid libvirt domain name")
        cpus = int(data.get("cpus", 1))
        max_cpus = int(data.get("max_cpus", cpus))
        if cpus > max_cpus:
            self.problem(("cpus",), f"cpus ({cpus}) is more than max_cpus ({max_cpus})", "raise max_cpus or lower cpus")
        memory = parse_size(data.get("memory", "1GiB"))
        max_memory = parse_size(data["max_memory"]) if "max_memory" in data else memory
        if memory > max_memory:
            self.problem(
                ("memory",), f"memory ({data.get('memory')}) is more than max_memory ({data.get('max_memory')})"
            )
        if memory < 16 * 1024**2:
            self.problem(("memory",), "memory must be at least 16MiB")
        pool = self._guest_pool()
        cloud_init = self._cloud_init()
        return GuestSpec(
            name=self.domain,
            guest=self.src.entry.name,
            hostname=self.instance,
            accel=data.get("accel", "auto"),
            machine=data.get("machine", "q35"),
            firmware=data.get("firmware", "bios"),
            cpu_model=data.get("cpu_model"),
            cpus=cpus,
            max_cpus=max_cpus,
            memory=_round_up(memory, 1024**2),
            max_memory=_round_up(max_memory, 1024**2),
            state=data.get("state", "running"),
            autostart=bool(data.get("autostart", False)),
            pool=pool,
            boot=self._boot(),
            disks=self._disks(pool),
            nics=self._nics(),
            shares=self._shares(),
            devices=DevicesSpec(**data.get("devices", {})),
            cloud_init=cloud_init,
            wait=self._wait(cloud_init is not None),
            prevent_destroy=bool(data.get("prevent_destroy", False)),
            origin=self.src.entry.doc.key_where(self.src.entry.path),
        )

    def _guest_pool(self) -> str:
        if "pool" in self.data:
            return self.spec._pool_ref(self.pools, self.data["pool"], self.src.where("pool"), self.src.path("pool"))
        return self.spec._default_pool(self.pools, self.src.where(), self.src.path("pool"))

    def _file(self, *keys: str) -> Path:
        value: Any = self.data
        for key in keys:
            value = value[key]
        path = (self.src.base_dir(*keys) / str(value)).resolve()
        if not path.is_file():
            self.problem(keys, f"no such file: {path}")
        return path

    def _boot(self) -> BootSpec | None:
        boot = self.data.get("boot")
        if not boot:
            return None
        initrd = FileRef(self._file("boot", "initrd")) if "initrd" in boot else None
        return BootSpec(FileRef(self._file("boot", "kernel")), initrd, boot.get("cmdline", ""))

    def _disks(self, guest_pool: str) -> tuple[DiskSpec, ...]:
        disks = []
        for name, body in (self.data.get("disks") or {}).items():
            keys = ("disks", name)
            pool = guest_pool
            if "pool" in body:
                pool = self.spec._pool_ref(
                    self.pools, body["pool"], self.src.where(*keys, "pool"), self.src.path(*keys)
                )
            image = body.get("image")
            if image is not None and image not in self.images:
                self.spec._unknown_ref(
                    "image", image, list(self.images), self.src.where(*keys, "image"), self.src.path(*keys, "image")
                )
            if image is None and "size" not in body:
                self.problem(keys, "a blank disk needs a 'size'", "e.g. size: 20GiB")
            size = parse_size(body["size"]) if "size" in body else None
            volume = naming.disk_volume(self.domain, name)
            disks.append(DiskSpec(name, body.get("bus", "virtio"), pool, volume, size and _round_up(size, 512), image))
        return tuple(disks)

    def _nics(self) -> tuple[NicSpec, ...]:
        nics = []
        for name, body in (self.data.get("nics") or {}).items():
            keys = ("nics", name)
            given = [k for k in ("network", "bridge", "user") if k in body]
            if len(given) != 1:
                self.problem(keys, "a NIC needs exactly one of network, bridge or user", "e.g. {network: labnet}")
                continue
            kind, source = self._nic_source(given[0], body, keys)
            mac = body.get("mac") or naming.derived_mac(self.spec.project, self.spec.workspace, self.instance, name)
            nics.append(NicSpec(name, kind, source, mac.lower(), body.get("model", "virtio")))
        return tuple(nics)

    def _nic_source(self, given: str, body: dict[str, Any], keys: NodePath) -> tuple[Any, str]:
        if given == "bridge":
            return "bridge", body["bridge"]
        if given == "user":
            return "user", ""
        network = self.networks.get(body["network"])
        if network is None:
            self.spec._unknown_ref(
                "network",
                body["network"],
                list(self.networks),
                self.src.where(*keys, "network"),
                self.src.path(*keys, "network"),
            )
            return "network", body["network"]
        if network.mode == "user":
            return "user", ""
        if network.mode == "bridge":
            return "bridge", network.bridge or ""
        return "network", network.libvirt_name

    def _shares(self) -> tuple[ShareSpec, ...]:
        shares = self.data.get("shares") or {}
        return tuple(ShareSpec(n, b["source"], bool(b.get("readonly", False))) for n, b in shares.items())

    def _cloud_init(self) -> CloudInitSpec | None:
        body = self.data.get("cloud_init")
        if body is None:
            return None
        if "user_data" in body and "user_data_file" in body:
            self.problem(("cloud_init",), "give user_data or user_data_file, not both")
        user_data = _plain(body.get("user_data"))
        if "user_data_file" in body:
            path = self._file("cloud_init", "user_data_file")
            user_data = path.read_text("utf-8", errors="replace") if path.is_file() else None
        if isinstance(user_data, str):
            user_data = self._checked_user_data_text(user_data)
        network_config = _plain(body["network_config"]) if "network_config" in body else None
        sensitive = tuple(body.get("sensitive", ()))
        return CloudInitSpec(user_data, _plain(body.get("meta_data", {})), network_config, sensitive)

    def _checked_user_data_text(self, text: str) -> str:
        first = text.lstrip().split("\n", 1)[0].strip()
        if first.startswith("#cloud-config"):
            try:
                yaml.safe_load(text)
            except yaml.YAMLError as exc:
                self.problem(("cloud_init",), f"user-data is #cloud-config but not valid YAML: {exc}")
        elif not first.startswith(("#!", "#include", "#cloud-boothook", "Content-Type:", "## template")):
            hint = "start it with '#cloud-config' (or write user_data as a mapping), or '#!' for a script"
            self.problem(("cloud_init",), "user-data text has no header cloud-init recognises", hint)
        return text

    def _wait(self, has_cloud_init: bool) -> WaitSpec:
        body = self.data.get("wait") or {}
        agent_device = bool((self.data.get("devices") or {}).get("agent", True))
        agent = bool(body.get("agent", agent_device))
        cloud_init = bool(body.get("cloud_init", has_cloud_init and agent_device))
        if (agent or cloud_init) and not agent_device:
            self.problem(("wait",), "waiting needs the guest agent, but devices.agent is false")
        timeout = parse_duration(body.get("timeout", "5m"))
        return WaitSpec(agent, cloud_init, timeout, enabled="wait" in self.data)


def _round_up(value: int, unit: int) -> int:
    return -(-value // unit) * unit
