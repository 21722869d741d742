"""Load spec files into a validated Spec: schema, then the checks a schema cannot express."""

from __future__ import annotations

import difflib
import ipaddress
from collections.abc import Sequence
from dataclasses import replace

from vmctl.cloudinit.schema import CheckBudget
from vmctl.errors import Location, Problem, SpecError
from vmctl.model import GuestSpec, HostEntry, HostSpec, ImageSpec, Move, NetworkSpec, PoolSpec, Spec, naming
from vmctl.spec.files import Entry, MergedSpec, read_and_merge
from vmctl.spec.guest import GuestBuilder, GuestSource, SpecContext, resolve_file
from vmctl.spec.schema import check_guest
from vmctl.spec.source import dotted
from vmctl.spec.variables import VarInputs, mask_problems
from vmctl.units import Range, UnitError, parse_duration

# Long enough for an apply to finish (a second is for tests); a year is longer than any CI job.
EXPIRES_AFTER = Range(1, 365 * 24 * 3600)


def load_spec(paths: Sequence[str], workspace: str | None = None, inputs: VarInputs | None = None) -> Spec:
    """Read, validate and merge spec files, with variables' values from `inputs`; raise SpecError
    listing every problem (sensitive values masked)."""
    if workspace is not None and not naming.WORKSPACE_PATTERN.fullmatch(workspace):
        hint = "letters, digits, '.', '_' and '-', at most 40 characters"
        raise SpecError([Problem(None, "workspace", f"invalid workspace name {workspace!r}", hint)])
    merged = read_and_merge(paths, workspace, inputs)
    try:
        return _SpecBuilder(merged, workspace).build()
    except SpecError as exc:
        raise SpecError(mask_problems(list(exc.problems), merged.scope.variables.secrets)) from None


class _SpecBuilder(SpecContext):
    """Turns the merged documents into the model, collecting semantic problems.

    Entries the schema already found fault with are not built, but their names still count, so a
    reference to them is not reported as a second, misleading problem.
    """

    def __init__(self, merged: MergedSpec, workspace: str | None) -> None:
        self.merged = merged
        self.workspace = workspace
        self.problems: list[Problem] = []
        self.notes: dict[str, None] = {}
        project = merged.scalars.get("project", ("", None))[0]
        self.project = project if isinstance(project, str) else ""
        self.secrets = merged.scope.variables.secrets
        self.mac_sites: dict[tuple[str, str], tuple[Location, str]] = {}
        self.ip_sites: dict[tuple[str, str], tuple[Location, str]] = {}
        self.host_names: list[str] = []
        self.user_data_budget = CheckBudget()
        self.unbuilt: dict[str, set[str]] = {
            section: {name for name, e in entries.items() if merged.broken(e)}
            for section, entries in merged.sections.items()
        }

    def problem(self, where: Location | None, path: str, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(where, path, message, hint))

    def note(self, text: str) -> None:
        self.notes[text] = None

    def build(self) -> Spec:
        self._check_top_level()
        hosts = self._hosts()
        pools = self._pools()
        images = self._images(pools)
        networks = self._networks()
        guests = self._guests(pools, images, networks)
        self._check_unique_names(guests)
        self._check_unique_macs(guests)
        moves = self._moves(guests)
        self._check_unique_addresses(guests)
        expires_after = self._expires_after()
        problems = list(dict.fromkeys([*self.merged.problems, *self.problems]))
        if problems:
            raise SpecError(problems)
        connection = self.merged.scalars.get("connection", (None, None))[0]
        files = tuple(d.file for d in self.merged.docs)
        notes = tuple(self.notes)
        networks = tuple(replace(n, hosts=_fixed_hosts(n, guests, self.project)) for n in networks)
        return Spec(
            self.project,
            self.workspace,
            connection,
            pools,
            images,
            networks,
            guests,
            files,
            notes,
            moves,
            self.secrets,
            expires_after,
            hosts,
        )

    def _expires_after(self) -> float | None:
        if "expires_after" not in self.merged.scalars:
            return None
        value, doc = self.merged.scalars["expires_after"]
        try:
            return parse_duration(value, EXPIRES_AFTER)
        except UnitError as exc:
            self.problem(doc.where(("expires_after",)), "expires_after", str(exc), exc.hint)
            return None

    def _check_top_level(self) -> None:
        already = {p.path for p in self.merged.problems}
        if not self.project and "project" not in already:
            first = self.merged.docs[0]
            self.problem(first.where(()), "project", "missing required key 'project'", "add e.g. 'project: lab'")
        defaults = self.merged.defaults
        if defaults and "count" in defaults.body:
            self.problem(
                defaults.doc.key_where((*defaults.path, "count")), "defaults.count", "count cannot be a default"
            )

    def _built(self, section: str) -> list[Entry]:
        return [e for e in self.merged.sections[section].values() if e.name not in self.unbuilt[section]]

    # -- references -----------------------------------------------------------------------------

    def default_pool(self, pools: tuple[PoolSpec, ...], where: Location, path: str) -> str:
        names = [p.name for p in pools] + sorted(self.unbuilt["pools"])
        if naming.DEFAULT_POOL in names or len(names) == 1:
            return naming.DEFAULT_POOL if naming.DEFAULT_POOL in names else names[0]
        self.problem(where, path, "several pools and none named 'default': say which", f"add pool: {names[0]}")
        return names[0]

    def pool_ref(self, pools: tuple[PoolSpec, ...], name: str, where: Location, path: str) -> str:
        if name not in {p.name for p in pools}:
            self.unknown_ref("pool", name, [p.name for p in pools], where, path)
        return name

    def unknown_ref(self, kind: str, name: str, known: list[str], where: Location, path: str) -> None:
        if name in self.unbuilt.get(f"{kind}s", set()):
            return  # its own problem is reported where it is defined
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean '{close[0]}'?" if close else (f"defined {kind}s: {', '.join(known)}" if known else None)
        self.problem(where, path, f"no {kind} named '{name}'", hint or f"define it under '{kind}s:'")

    # -- hosts ------------------------------------------------------------------------------------

    def _hosts(self) -> tuple[HostSpec, ...]:
        hosts = tuple(HostSpec(e.name, e.body["uri"]) for e in self._built("hosts"))
        self.host_names = [h.name for h in hosts] + sorted(self.unbuilt["hosts"])
        if (hosts or self.unbuilt["hosts"]) and "connection" in self.merged.scalars:
            doc = self.merged.scalars["connection"][1]
            message = "a spec with hosts names each host's URI there, not in connection"
            self.problem(doc.key_where(("connection",)), "connection", message, "remove connection")
        return hosts

    # -- pools, images, networks ------------------------------------------------------------------

    def _pools(self) -> tuple[PoolSpec, ...]:
        entries = self.merged.sections["pools"]
        if not entries:
            return (PoolSpec(naming.DEFAULT_POOL, ""),)  # where each host keeps its default pool
        return tuple(self._pool(e) for e in self._built("pools"))

    def _pool(self, entry: Entry) -> PoolSpec:
        if "path" not in entry.body and entry.name != naming.DEFAULT_POOL:
            where = entry.doc.where(entry.path)
            self.problem(where, dotted(entry.path), "a pool needs 'path' (only 'default' may leave it to the host)")
        return PoolSpec(
            entry.name, str(entry.body.get("path", "")).rstrip("/") or ("/" if "path" in entry.body else "")
        )

    def _images(self, pools: tuple[PoolSpec, ...]) -> tuple[ImageSpec, ...]:
        return tuple(self._image(e, pools) for e in self._built("images"))

    def _image(self, entry: Entry, pools: tuple[PoolSpec, ...]) -> ImageSpec:
        body, doc = entry.body, entry.doc
        where, path = doc.where(entry.path), dotted(entry.path)
        if ("path" in body) == ("url" in body):
            self.problem(where, path, "an image needs exactly one of 'path' or 'url'")
        if "url" in body and "sha256" not in body:
            url_where = doc.where((*entry.path, "url"))
            self.problem(url_where, f"{path}.url", "a downloaded image needs 'sha256' to verify it")
        local = None
        if "path" in body:
            local, problem = resolve_file(doc.base_dir, body["path"])
            if problem:
                self.problem(doc.where((*entry.path, "path")), f"{path}.path", problem)
        pool_where = doc.where((*entry.path, "pool"))
        if "pool" in body:
            pool = self.pool_ref(pools, body["pool"], pool_where, f"{path}.pool")
        else:
            pool = self.default_pool(pools, pool_where, f"{path}.pool")
        sha = body.get("sha256")
        return ImageSpec(
            entry.name, body.get("format", "qcow2"), pool, local, body.get("url"), sha and sha.lower(), where
        )

    def _networks(self) -> tuple[NetworkSpec, ...]:
        return tuple(self._network(e) for e in self._built("networks"))

    def _network(self, entry: Entry) -> NetworkSpec:
        body, doc, path = entry.body, entry.doc, dotted(entry.path)
        mode = body["mode"]
        where = doc.where(entry.path)
        ipv4 = body.get("ipv4")
        if "name" in body and mode != "existing":
            self.problem(doc.key_where((*entry.path, "name")), f"{path}.name", "only existing networks take a name")
        if mode == "existing" and (ipv4 or "dhcp" in body):
            self.problem(where, path, "an existing network keeps its own ipv4 and DHCP: vmctl does not manage it")
        if mode == "bridge" and "bridge" not in body:
            self.problem(where, path, "a bridge network needs 'bridge: <host bridge>'")
        if mode != "bridge" and "bridge" in body:
            where_bridge = doc.key_where((*entry.path, "bridge"))
            self.problem(where_bridge, f"{path}.bridge", "only bridge networks name a bridge")
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
        if mode == "existing":
            libvirt_name = body.get("name", entry.name)
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

    # -- guests ------------------------------------------------------------------------------------

    def _guests(
        self, pools: tuple[PoolSpec, ...], images: tuple[ImageSpec, ...], networks: tuple[NetworkSpec, ...]
    ) -> tuple[GuestSpec, ...]:
        if self.merged.broken(self.merged.defaults):
            return ()  # every guest inherits the defaults' problem: it is reported once, there
        for name in self.unbuilt["guests"]:
            self._check_references(self.merged.sections["guests"][name], pools, images, networks)
        guests: list[GuestSpec] = []
        for entry in self._built("guests"):
            merged = GuestSource(entry, self.merged.defaults)
            count = int(merged.data.get("count", 1))
            for index, instance in enumerate(naming.instance_names(entry.name, count), start=1):
                source = merged.for_instance(self.merged.scope.for_guest(instance, index))
                if source.per_instance and self._instance_problems(source, instance):
                    continue
                guests.append(GuestBuilder(self, source, instance, pools, images, networks).build())
        return tuple(guests)

    def _instance_problems(self, source: GuestSource, instance: str) -> bool:
        """The schema's verdict on one instance's values, where they refer to the guest."""
        found = check_guest(source.data)
        for path, message, hint in found:
            self.problem(source.where(*path), source.path(*path), f"{message} (for {instance})", hint)
        return bool(found)

    # -- moved ---------------------------------------------------------------------------------------------

    def _moves(self, guests: tuple[GuestSpec, ...]) -> tuple[Move, ...]:
        """`moved:` entries: each from a name the spec no longer has to a guest it has, once."""
        names = {g.hostname for g in guests}
        moves: list[Move] = []
        seen: dict[str, str] = {}
        for item, doc, index in self.merged.lists["moved"]:
            if (
                not isinstance(item, dict)
                or not isinstance(item.get("from"), str)
                or not isinstance(item.get("to"), str)
            ):
                continue  # the schema reports it
            old, new = item["from"], item["to"]
            where, path = doc.where(("moved", index)), f"moved[{index}]"
            if old in names:
                self.problem(doc.where(("moved", index, "from")), f"{path}.from", f"guest '{old}' is still in the spec")
            elif new not in names:
                hint = "moved: says what a guest of the spec was called before"
                self.problem(doc.where(("moved", index, "to")), f"{path}.to", f"no guest named '{new}'", hint)
            elif old in seen or new in seen.values():
                self.problem(where, path, f"'{old}' or '{new}' is moved twice", "one move per guest")
            else:
                seen[old] = new
                ws = self.workspace
                moves.append(Move(naming.domain_name(old, ws), naming.domain_name(new, ws)))
        return tuple(moves)

    def _check_references(
        self,
        entry: Entry,
        pools: tuple[PoolSpec, ...],
        images: tuple[ImageSpec, ...],
        networks: tuple[NetworkSpec, ...],
    ) -> None:
        """A guest the schema found fault with is not built, but what it refers to is still checked."""
        refs = {
            "image": [i.name for i in images],
            "pool": [p.name for p in pools],
            "network": [n.name for n in networks],
        }
        for section, kinds in (("disks", ("image", "pool")), ("nics", ("network",))):
            items = entry.body.get(section)
            for name, body in items.items() if isinstance(items, dict) else ():
                for kind in kinds:
                    target = body.get(kind) if isinstance(body, dict) else None
                    if isinstance(target, str) and target not in refs[kind]:
                        path = (*entry.path, section, name, kind)
                        self.unknown_ref(kind, target, refs[kind], entry.doc.where(path), dotted(path))

    def _check_unique_names(self, guests: tuple[GuestSpec, ...]) -> None:
        seen: dict[str, GuestSpec] = {}
        for guest in guests:
            other = seen.setdefault(guest.name, guest)
            if other is not guest:
                message = f"guest '{guest.guest}' makes a domain named '{guest.name}', as does '{other.guest}'"
                self.problem(guest.origin, f"guests.{guest.guest}", message, "rename one, or change its count")

    def _check_unique_addresses(self, guests: tuple[GuestSpec, ...]) -> None:
        seen: dict[tuple[str, str], str] = {}
        for guest in guests:
            for nic in guest.nics:
                if nic.ipv4 is None:
                    continue
                owner = f"{guest.name}.{nic.name}"
                first = seen.setdefault((nic.source, nic.ipv4), owner)
                if first != owner:
                    where, path = self.ip_sites.get((guest.name, nic.name), (guest.origin, f"guests.{guest.guest}"))
                    self.problem(where, path, f"address {nic.ipv4} is {first}'s too", "give each NIC its own address")

    def _check_unique_macs(self, guests: tuple[GuestSpec, ...]) -> None:
        seen: dict[str, str] = {}
        for guest in guests:
            for nic in guest.nics:
                owner = f"{guest.name}.{nic.name}"
                first = seen.setdefault(nic.mac.lower(), owner)
                if first != owner:
                    where, path = self.mac_sites.get((guest.name, nic.name), (guest.origin, f"guests.{guest.guest}"))
                    self.problem(where, path, f"MAC {nic.mac} is used by {first} too", "give each NIC its own mac")


def _fixed_hosts(network: NetworkSpec, guests: tuple[GuestSpec, ...], project: str) -> tuple[HostEntry, ...]:
    """The network's reservations: each NIC on it with a fixed address, named GUEST and GUEST.PROJECT."""
    hosts = [
        HostEntry(nic.mac, nic.ipv4, (guest.hostname, f"{guest.hostname}.{project}"))
        for guest in guests
        for nic in guest.nics
        if nic.ipv4 and nic.kind == "network" and nic.source == network.libvirt_name
    ]
    return tuple(sorted(hosts, key=lambda h: h.mac))
