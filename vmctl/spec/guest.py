"""One guest of the spec: its body merged over the defaults, checked, and built into a GuestSpec."""

from __future__ import annotations

import copy
import datetime
import ipaddress
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from vmctl.cloudinit.schema import READ_WITH_LIBYAML, CheckBudget, check_user_data
from vmctl.errors import Location
from vmctl.model import (
    CDROM_ONLY_BUSES,
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
    WaitSpec,
    naming,
)
from vmctl.spec.files import Entry
from vmctl.spec.source import MAX_FILE_SIZE, NodePath, SourceDoc, dotted, yaml_text_document, yaml_text_problem
from vmctl.spec.templates import Scope, has_guest_ref, substitute_guest
from vmctl.units import Range, UnitError, format_size, parse_duration, parse_size

_USER_DATA_HEADERS = ("#!", "#include", "#cloud-boothook", "Content-Type:", "## template")
_MiB, _TiB, _PiB = 1024**2, 1024**4, 1024**5
# Less than no guest boots with. The most: QEMU (7.1 and later) refuses RAM that does not fit the
# CPU's physical address bits, which the host decides (40 bits, 1TiB, for TCG's default CPU; 46, 64TiB,
# on common servers; 52 with 5-level paging). 16TiB is as much as vmctl can promise without asking
# the host: a larger typo is a spec problem here, not a QEMU failure halfway through apply.
MEMORY = Range(16 * _MiB, 16 * _TiB)
# Disks are qcow2 volumes with QEMU's default 64KiB clusters, whose 32MiB L1 table addresses 2PiB
# (QCOW_MAX_L1_SIZE in QEMU's block/qcow2.h). Below 1MiB, where partitioning tools put the first
# partition, a disk holds nothing useful: 0 or 1B is a mistake.
DISK_SIZE = Range(1 * _MiB, 2 * _PiB)
# The wait for the guest agent and cloud-init: zero would give up before the guest starts; a day
# is more than any boot, even under TCG.
WAIT_TIMEOUT = Range(1, 24 * 3600)
# User-data travels in the domain's XML (vmctl's metadata), and libvirt's RPC refuses strings over
# 4MiB (REMOTE_STRING_MAX): 1MiB, as for a spec file, leaves room for the rest of the domain.
MAX_USER_DATA = MAX_FILE_SIZE


class SpecContext(Protocol):
    """What a guest needs from the whole spec: names, references, and where to report problems."""

    project: str
    workspace: str | None
    secrets: tuple[str, ...]
    mac_sites: dict[tuple[str, str], tuple[Location, str]]
    ip_sites: dict[tuple[str, str], tuple[Location, str]]
    host_names: list[str]  # the spec's hosts: a guest names one of them (or none when there is one)
    user_data_budget: CheckBudget  # how much more user-data cloud-init's schema may check

    def problem(self, where: Location | None, path: str, message: str, hint: str | None = None) -> None: ...

    def note(self, text: str) -> None:
        """Something worth saying once about the spec that is not a problem."""

    def default_pool(self, pools: tuple[PoolSpec, ...], where: Location, path: str) -> str: ...

    def pool_ref(self, pools: tuple[PoolSpec, ...], name: str, where: Location, path: str) -> str: ...

    def unknown_ref(self, kind: str, name: str, known: list[str], where: Location, path: str) -> None: ...


def plain(value: Any) -> Any:
    """YAML data as JSON-like data: dates become ISO strings, so a stored copy compares equal."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; anything else in `over` replaces what `base` had."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def resolve_file(base: Path, value: object) -> tuple[Path, str | None]:
    """A file named in a spec, relative to the spec's directory; the problem with it, if any."""
    try:
        path = (base / str(value)).resolve()
        exists, regular = path.exists(), path.is_file()
    except (ValueError, OSError) as exc:
        return base, f"not a usable file name: {exc}"
    if not exists:
        return path, f"no such file: {path}"
    if not regular:
        return path, f"not a regular file: {path}"
    return path, None


def _has_path(data: Any, keys: NodePath) -> bool:
    for key in keys:
        in_list = isinstance(data, list) and isinstance(key, int) and 0 <= key < len(data)
        if not (in_list or (isinstance(data, dict) and key in data)):
            return False
        data = data[key]
    return True


class GuestSource:
    """A guest's body merged over the defaults, able to say where each value was written.

    With a `scope` naming one instance, the references to the guest are substituted for it.
    """

    def __init__(self, entry: Entry, defaults: Entry | None, scope: Scope | None = None) -> None:
        self.entry = entry
        self.defaults = defaults
        self.data = deep_merge(defaults.body if defaults else {}, entry.body)
        self.refers_to_guest = has_guest_ref(self.data)
        self.per_instance = False
        if scope is not None:
            self._substitute(scope)

    def for_instance(self, scope: Scope) -> GuestSource:
        """The same body for one instance of `count`: merged and searched for references once."""
        instance = copy.copy(self)
        instance._substitute(scope)
        return instance

    def _substitute(self, scope: Scope) -> None:
        self.per_instance = self.refers_to_guest
        if self.per_instance:
            self.data = substitute_guest(self.data, scope)

    def _owner(self, keys: NodePath) -> tuple[SourceDoc, NodePath]:
        for source in (self.entry, self.defaults):
            if source is not None and _has_path(source.body, keys):
                return source.doc, (*source.path, *keys)
        return self.entry.doc, self.entry.path

    def where(self, *keys: str | int) -> Location:
        doc, path = self._owner(keys)
        return doc.where(path)

    def base_dir(self, *keys: str | int) -> Path:
        return self._owner(keys)[0].base_dir

    def path(self, *keys: str | int) -> str:
        """The dotted path of the value: under `defaults` when the defaults wrote it."""
        from_defaults = self.defaults is not None and _has_path(self.defaults.body, keys)
        if keys and from_defaults and not _has_path(self.entry.body, keys):
            return dotted(("defaults", *keys))
        return dotted((*self.entry.path, *keys))


class GuestBuilder:
    """Builds one guest instance (one of `count`) and checks what the schema cannot."""

    def __init__(
        self,
        spec: SpecContext,
        source: GuestSource,
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
        memory, max_memory = self._memory()
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
            ignore_changes=tuple(data.get("ignore_changes", ())),
            adopt=bool(data.get("adopt", False)),
            host=self._host(),
            origin=self.src.entry.doc.key_where(self.src.entry.path),
        )

    def _host(self) -> str | None:
        names, host = self.spec.host_names, self.data.get("host")
        if host is None:
            if len(names) > 1:
                message = "several hosts and none chosen: say which"
                self.spec.problem(self.src.where(), f"{self.src.path()}.host", message, f"add host: {names[0]}")
            return names[0] if names else None
        if not names:
            self.problem(("host",), f"host '{host}' is named, but the spec has no hosts", "add hosts:")
        elif host not in names:
            self.spec.unknown_ref("host", host, names, self.src.where("host"), self.src.path("host"))
        return str(host)

    def _size(self, keys: tuple[str, ...], default: str | None, allowed: Range) -> int | None:
        value: Any = self.data
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if value is None and default is None:
            return None
        try:
            return parse_size(default if value is None else value, allowed)
        except UnitError as exc:
            self.problem(keys, str(exc), exc.hint)
            return None

    def _memory(self) -> tuple[int, int]:
        memory = self._size(("memory",), "1GiB", MEMORY)
        max_memory = self._size(("max_memory",), None, MEMORY)
        if memory is not None and max_memory is not None and memory > max_memory:
            at = ("memory",) if "memory" in self.data else ("max_memory",)
            message = f"memory ({format_size(memory)}) is more than max_memory ({format_size(max_memory)})"
            self.problem(at, message, "raise max_memory or lower memory")
        memory = memory or 1024**3
        return memory, max_memory or memory

    def _guest_pool(self) -> str:
        if "pool" in self.data:
            return self.spec.pool_ref(self.pools, self.data["pool"], self.src.where("pool"), self.src.path("pool"))
        return self.spec.default_pool(self.pools, self.src.where(), self.src.path("pool"))

    def _file(self, *keys: str) -> Path:
        value: Any = self.data
        for key in keys:
            value = value[key]
        path, problem = resolve_file(self.src.base_dir(*keys), value)
        if problem:
            self.problem(keys, problem)
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
            if body.get("cdrom"):
                disks.append(self._cdrom(name, body))
                continue
            if body.get("bus") in CDROM_ONLY_BUSES:
                self.problem((*keys, "bus"), f"bus {body['bus']} is for CD-ROM drives only", "virtio or scsi")
            if "volume" in body or "path" in body:
                disks.append(self._existing_disk(name, body))
                continue
            pool = guest_pool
            if "pool" in body:
                where, path = self.src.where(*keys, "pool"), self.src.path(*keys, "pool")
                pool = self.spec.pool_ref(self.pools, body["pool"], where, path)
            image = body.get("image")
            if image is not None and image not in self.images:
                where, path = self.src.where(*keys, "image"), self.src.path(*keys, "image")
                self.spec.unknown_ref("image", image, list(self.images), where, path)
            if image is None and "size" not in body:
                self.problem(keys, "a blank disk needs a 'size'", "e.g. size: 20GiB")
            size = self._size((*keys, "size"), None, DISK_SIZE)
            volume = naming.disk_volume(self.domain, name)
            disks.append(DiskSpec(name, body.get("bus", "virtio"), pool, volume, size and _round_up(size, 512), image))
        return tuple(disks)

    def _existing_disk(self, name: str, body: dict[str, Any]) -> DiskSpec:
        """A disk on a volume or file that exists already: vmctl uses it and never deletes it."""
        keys = ("disks", name)
        given = [k for k in ("volume", "path", "image", "pool") if k in body]
        if len(given) != 1:
            self.problem(keys, f"a disk takes one of volume, path, image or pool, not {' and '.join(given)}")
        size = self._size((*keys, "size"), None, DISK_SIZE)
        bus, fmt = body.get("bus", "virtio"), body.get("format", "qcow2")
        if "volume" in body:
            volume = body["volume"]
            return DiskSpec(name, bus, volume["pool"], volume["name"], size, source="volume", format=fmt)
        return DiskSpec(name, bus, "", str(body["path"]), size, source="path", format=fmt)

    def _cdrom(self, name: str, body: dict[str, Any]) -> DiskSpec:
        """A CD-ROM drive: its media an existing volume or file, which vmctl never deletes, or none."""
        keys = ("disks", name)
        given = [k for k in ("volume", "path") if k in body]
        if len(given) > 1 or any(k in body for k in ("image", "pool", "size")):
            wrong = " and ".join([*given, *(k for k in ("image", "pool", "size") if k in body)])
            self.problem(keys, f"a CD-ROM drive takes a volume or a path (or neither: empty), not {wrong}")
        bus, fmt = body.get("bus", "sata"), body.get("format", "raw")
        if bus == "virtio":
            self.problem((*keys, "bus"), "a CD-ROM drive cannot be on virtio", "sata (the default), ide or scsi")
        if "volume" in body:
            volume = body["volume"]
            return DiskSpec(name, bus, volume["pool"], volume["name"], source="volume", format=fmt, cdrom=True)
        if "path" in body:
            return DiskSpec(name, bus, "", str(body["path"]), source="path", format=fmt, cdrom=True)
        return DiskSpec(name, bus, "", "", source="empty", format=fmt, cdrom=True)

    def _nics(self) -> tuple[NicSpec, ...]:
        nics = []
        for name, body in (self.data.get("nics") or {}).items():
            keys = ("nics", name)
            given = [k for k in ("network", "bridge", "user") if k in body]
            if len(given) != 1:
                self.problem(keys, "a NIC needs exactly one of network, bridge or user", "e.g. {network: labnet}")
                continue
            kind, source = self._nic_source(given[0], body, keys)
            mac = self._mac(body, name)
            ipv4 = self._fixed_address(body, name)
            nics.append(
                NicSpec(name, kind, source, mac, body.get("model", "virtio"), derived_mac="mac" not in body, ipv4=ipv4)
            )
        return tuple(nics)

    def _fixed_address(self, body: dict[str, Any], nic: str) -> str | None:
        """A NIC's `ipv4`: on a vmctl network that serves DHCP, within its range, not the host's own."""
        if "ipv4" not in body:
            return None
        keys = ("nics", nic, "ipv4")
        text = str(body["ipv4"])
        self.spec.ip_sites[(self.domain, nic)] = (self.src.where(*keys), self.src.path(*keys))
        network = self.networks.get(body.get("network", "")) if "network" in body else None
        if network is None or not network.managed or not network.ipv4 or not network.dhcp:
            self.problem(keys, "a fixed address needs a nat or isolated network with ipv4 and DHCP")
            return text
        problem = address_problem(text, network.ipv4)
        if problem:
            self.problem(keys, problem, f"network {network.name} is {network.ipv4}")
        return text

    def _mac(self, body: dict[str, Any], nic: str) -> str:
        keys = ("nics", nic, "mac")
        if "mac" not in body:
            return naming.derived_mac(self.spec.project, self.spec.workspace, self.instance, nic)
        mac = str(body["mac"]).lower()
        self.spec.mac_sites[(self.domain, nic)] = (self.src.where(*keys), self.src.path(*keys))
        if int(mac[:2], 16) & 1:
            self.problem(
                keys,
                f"{mac} is a multicast address: a NIC needs a unicast MAC",
                "make the first octet even, e.g. 52:54:00:...",
            )
        return mac

    def _nic_source(self, given: str, body: dict[str, Any], keys: NodePath) -> tuple[Any, str]:
        if given == "bridge":
            return "bridge", body["bridge"]
        if given == "user":
            return "user", ""
        network = self.networks.get(body["network"])
        if network is None:
            where, path = self.src.where(*keys, "network"), self.src.path(*keys, "network")
            self.spec.unknown_ref("network", body["network"], list(self.networks), where, path)
            return "network", body["network"]
        if network.mode == "user":
            return "user", ""
        if network.mode == "bridge":
            return "bridge", network.bridge or ""
        return "network", network.libvirt_name  # managed by vmctl, or an existing one by its libvirt name

    def _shares(self) -> tuple[ShareSpec, ...]:
        shares = self.data.get("shares") or {}
        return tuple(ShareSpec(n, b["source"], bool(b.get("readonly", False))) for n, b in shares.items())

    def _cloud_init(self) -> CloudInitSpec | None:
        body = self.data.get("cloud_init")
        if body is None:
            return None
        if "user_data" in body and "user_data_file" in body:
            self.problem(("cloud_init", "user_data_file"), "give user_data or user_data_file, not both")
        user_data = plain(body.get("user_data"))
        keys: tuple[str, ...] = ("cloud_init", "user_data")
        if "user_data_file" in body:
            keys = ("cloud_init", "user_data_file")
            user_data = self._user_data_file(self._file(*keys), keys)
        sensitive = tuple(body.get("sensitive", ()))
        if isinstance(user_data, str):
            self._check_user_data_text(user_data, keys, sensitive)
        elif isinstance(user_data, dict):
            self._check_cloud_config(user_data, keys, sensitive, lambda inner: self.src.where(*keys, *inner))
        network_config = plain(body["network_config"]) if "network_config" in body else None
        meta_data = plain(body.get("meta_data", {}))
        return CloudInitSpec(user_data, meta_data, network_config, sensitive, secrets=self.spec.secrets)

    def _user_data_file(self, path: Path, keys: tuple[str, ...]) -> str | None:
        if not path.is_file():
            return None  # reported by _file
        try:
            with path.open("rb") as file:
                raw = file.read(MAX_USER_DATA + 1)
        except OSError as exc:
            self.problem(keys, f"cannot read {path}: {exc.strerror}")
            return None
        if len(raw) > MAX_USER_DATA:
            self.problem(keys, f"user-data may be at most {format_size(MAX_USER_DATA)}: {path} is larger")
            return None
        return raw.decode("utf-8", errors="replace")

    def _check_user_data_text(self, text: str, keys: tuple[str, ...], sensitive: tuple[str, ...]) -> None:
        first = text.lstrip().split("\n", 1)[0].strip()
        if first.startswith("#cloud-config"):
            exactly = self.spec.user_data_budget.read_exactly(text)
            if not exactly:
                self.spec.note(READ_WITH_LIBYAML)
            problem = yaml_text_problem(text, as_cloud_init=exactly)
            if problem:
                self.problem(keys, f"user-data is #cloud-config but not valid YAML: {problem}")
                return
            from_file = keys[-1] == "user_data_file"
            display = _shown(self._file(*keys)) if from_file else self.src.path(*keys)
            data, values = yaml_text_document(text, display, as_cloud_init=exactly)
            if from_file:  # the user-data file's own lines
                self._check_cloud_config(data, keys, sensitive, lambda inner: _nearest(values, inner, display))
            else:  # lines inside a string of the spec: the string's place, and the line within it
                self._check_cloud_config(data, keys, sensitive, lambda _: self.src.where(*keys), values)
        elif not first.startswith(_USER_DATA_HEADERS):
            hint = "start it with '#cloud-config' (or write user_data as a mapping), or '#!' for a script"
            self.problem(keys, "user-data text has no header cloud-init recognises", hint)

    def _check_cloud_config(
        self,
        data: Any,
        keys: tuple[str, ...],
        sensitive: tuple[str, ...],
        where: Callable[[NodePath], Location],
        lines: Mapping[NodePath, Location] | None = None,
    ) -> None:
        """cloud-init's own schema, before any guest boots: each problem where it was written."""
        found = check_user_data(plain(data), sensitive, self.spec.user_data_budget)
        if isinstance(found, str):
            self.spec.note(found)
            return
        for problem in found:
            inner = dotted(problem.path)
            if keys[-1] == "user_data" and lines is None:
                path, message = self.src.path(*keys, *problem.path), problem.message
            else:
                path, message = self.src.path(*keys), f"{inner}: {problem.message}" if inner else problem.message
            if lines is not None:
                message = f"its line {_nearest(lines, problem.path, '').line}: {message}"
            self.spec.problem(where(problem.path), path, message, "see cloud-init's module reference for its keys")

    def _wait(self, has_cloud_init: bool) -> WaitSpec:
        body = self.data.get("wait") or {}
        agent_device = bool((self.data.get("devices") or {}).get("agent", True))
        agent = bool(body.get("agent", agent_device))
        cloud_init = bool(body.get("cloud_init", has_cloud_init and agent_device))
        if (agent or cloud_init) and not agent_device:
            self.problem(("wait",), "waiting needs the guest agent, but devices.agent is false")
        try:
            timeout = parse_duration(body.get("timeout", "5m"), WAIT_TIMEOUT)
        except UnitError as exc:
            self.problem(("wait", "timeout"), str(exc), exc.hint)
            timeout = 300.0
        return WaitSpec(agent, cloud_init, timeout, enabled="wait" in self.data)


def _shown(path: Path) -> str:
    """A file as a user would type it here: relative to the working directory when under it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _nearest(values: Mapping[NodePath, Location], path: NodePath, display: str) -> Location:
    """Position of the value at `path` in a YAML text, or of its nearest ancestor."""
    for depth in range(len(path), -1, -1):
        if found := values.get(path[:depth]):
            return found
    return Location(display, 1, 1)


def address_problem(text: str, network: str) -> str | None:
    """Why `text` cannot be a guest's address on `network` (its host address/prefix), or None."""
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError as exc:
        return f"not an IPv4 address: {exc}"
    iface = ipaddress.IPv4Interface(network)
    if address not in iface.network:
        return f"{text} is not in the network's range {iface.network}"
    if address == iface.ip:
        return f"{text} is the host's own address on the network"
    if address in (iface.network.network_address, iface.network.broadcast_address):
        return f"{text} is not a usable host address on {iface.network}"
    return None


def _round_up(value: int, unit: int) -> int:
    return -(-value // unit) * unit
