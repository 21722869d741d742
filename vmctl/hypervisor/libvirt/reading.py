"""Reading live state in bulk: every domain, pool, network and disk size in few round trips."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import libvirt

from vmctl.errors import HypervisorError, VmctlError
from vmctl.hypervisor.libvirt.connection import Connection, _capacity, _detail, _missing, _translated
from vmctl.libvirtxml.metadata import NAMESPACE, read_guest_record
from vmctl.libvirtxml.network import read_network
from vmctl.libvirtxml.readback import DomainView, is_vmctl_xml, read_domain
from vmctl.libvirtxml.storage import read_pool
from vmctl.model.types import (
    GuestRecord,
    HostFacts,
    LiveGuest,
    LiveNetwork,
    LivePool,
    LiveState,
    OwnedGuest,
    OwnedState,
    Owner,
    VolumeInfo,
    VolumeRef,
)
from vmctl.resolve.disksize import virtual_size

_READERS = 4  # libvirtd serves 5 requests per connection at once by default; keep one for others


class Reading(Connection):
    """Live state, parsed into the spec's dataclasses."""

    def host_facts(self) -> HostFacts:
        with _translated("read host capabilities"):
            caps = ET.fromstring(self.conn.getCapabilities())
        features = {f.get("name") for f in caps.iterfind("host/cpu/feature")}
        kvm_offered = any(d.get("type") == "kvm" for d in caps.iterfind("guest/arch/domain"))
        arch = caps.findtext("host/cpu/arch", "x86_64")
        return HostFacts(kvm_usable=kvm_offered and bool(features & {"vmx", "svm"}), arch=arch, log_dir=self.log_dir())

    def log_dir(self) -> str | None:
        # The serial log is written by virtlogd on the hypervisor host, in libvirt's own log directory.
        if self.uri.startswith("test:"):
            return None
        if "/session" in self.uri:
            if "+" in self.uri.split(":", 1)[0]:
                return None  # a remote user's home directory is unknown
            return os.path.expanduser("~/.cache/libvirt/qemu/log")
        return "/var/log/libvirt/qemu"

    def read_state(self, owner: Owner, disks_of_interest: Iterable[VolumeRef] = ()) -> LiveState:
        """Everything the planner needs, in as few round trips as possible, several at a time.

        Only disk volumes are sized (one call each); every other volume just has to exist, which
        listing the pools tells.
        """
        pools = self._read_pools(owner)
        pool_paths = {p.name: p.path for p in pools}
        present = self._list_volumes([p for p in pools if p.active])
        sizes = _Capacities(lambda pool, name: present.get((pool, name)), self._local_dirs(pools))
        guests, others = self._read_domains(_GuestReader(owner, pool_paths, sizes))
        for volume in disks_of_interest:  # the spec's disks no guest has yet: usually none are left
            sizes(volume.pool, volume.name)
        volumes = {key: VolumeInfo(*key, sizes.known.get(key, -1)) for key in present if sizes.known.get(key) != -2}
        return LiveState(tuple(guests), others, tuple(self._read_networks()), tuple(pools), volumes)

    def _local_dirs(self, pools: Iterable[LivePool]) -> dict[str, str]:
        """Directory pools whose files are on this host: only when libvirtd runs here too."""
        scheme, _, rest = self.uri.partition(":")
        if scheme not in ("qemu", "qemu+unix") or not rest.startswith("///"):
            return {}
        return {p.name: p.path for p in pools if p.kind == "dir"}

    def read_owned(self, owner: Owner, boot_volumes: bool = False) -> OwnedState:
        """What this project and workspace own, from ownership records alone: one small call per domain.

        Removing needs no domain definition, only who owns what and which volumes each claims.
        `boot_volumes` adds each owned guest's kernel and initrd, from its definition.
        """
        pools = self._read_pools(owner)
        present = self._list_volumes([p for p in pools if p.active])
        domains = self._list_domains()
        with ThreadPoolExecutor(_READERS) as workers:
            records = list(workers.map(_owned_record, domains))
            guests = [
                OwnedGuest(dom.name(), record, dom.ID() != -1)
                for dom, record in zip(domains, records, strict=True)
                if record is not None and record.owner.same_scope(owner)
            ]
            if boot_volumes:
                pool_paths = {p.name: p.path for p in pools}
                guests = list(workers.map(lambda g: self._with_boot_volumes(g, pool_paths), guests))
        volumes = {key: VolumeInfo(key[0], key[1], -1) for key in present}
        guests.sort(key=lambda g: g.name)
        return OwnedState(tuple(guests), tuple(self._read_networks()), tuple(pools), volumes)

    def _with_boot_volumes(self, guest: OwnedGuest, pool_paths: dict[str, str]) -> OwnedGuest:
        with _translated("read domain config", guest.name):
            xml = self._domains[guest.name].XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        config = read_domain(xml, pool_paths).guest
        boot = config.boot if config else None
        if config is None or boot is None:
            return guest
        files = [f for f in (boot.kernel, boot.initrd) if f is not None]
        return replace(guest, boot_volumes=tuple(VolumeRef(config.pool, f.volume) for f in files))

    def read_live_guest(self, name: str, owner: Owner, pool_paths: dict[str, str]) -> LiveGuest | None:
        """One managed guest as it is now (for verifying what was just done); None if gone or not ours."""
        dom = self._find_domain(name)
        if dom is None:
            return None
        with _translated("read autostart", name):
            autostart = bool(dom.autostart())
        _name, view = self._read_one(dom, _GuestReader(owner, pool_paths, _Capacities(self._volume)), autostart)
        return view if isinstance(view, LiveGuest) else None

    def _read_pools(self, owner: Owner) -> list[LivePool]:
        with _translated("list storage pools"):
            found = self.conn.listAllStoragePools(0)
        pools = []
        for pool in found:
            with _translated(f"read pool {pool.name()}"):
                pools.append(read_pool(pool.XMLDesc(0), bool(pool.isActive()), owner))
            self._pool_cache[pool.name()] = pool
        return pools

    def _read_domains(self, reader: _GuestReader) -> tuple[list[LiveGuest], dict[str, str]]:
        """Every domain, read by a few workers at once; one task per worker, not one per domain."""
        domains = self._list_domains()
        with _translated("list domains"):
            autostart = {d.name() for d in self.conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_AUTOSTART)}

        def read_share(share: list[libvirt.virDomain]) -> list[tuple[str, LiveGuest | str | None]]:
            return [self._read_one(d, reader, d.name() in autostart) for d in share]

        guests, others = [], {}
        with ThreadPoolExecutor(_READERS) as workers:
            shares = workers.map(read_share, [domains[i::_READERS] for i in range(_READERS)])
            for name, view in (found for share in shares for found in share):
                if isinstance(view, LiveGuest):
                    guests.append(view)
                elif view is not None:
                    others[name] = view
        return sorted(guests, key=lambda g: g.name), dict(sorted(others.items()))

    def _list_domains(self) -> list[libvirt.virDomain]:
        """Every domain, remembered by name for the operations that follow."""
        with _translated("list domains"):
            domains: list[libvirt.virDomain] = self.conn.listAllDomains(0)
        self._domains = {d.name(): d for d in domains}
        return domains

    def _read_one(
        self, dom: libvirt.virDomain, reader: _GuestReader, autostart: bool
    ) -> tuple[str, LiveGuest | str | None]:
        name = dom.name()
        try:
            xml = dom.XMLDesc(0)
        except libvirt.libvirtError as exc:
            if _missing(exc):
                return name, None  # vanished while we read: not ours to worry about
            raise HypervisorError("read domain", _detail(exc), name) from None
        if not is_vmctl_xml(xml):
            return name, "not managed by vmctl"
        view = read_domain(xml, reader.pool_paths, autostart, reader.sizes)
        if view.record is None or view.guest is None:
            return name, "not managed by vmctl"
        theirs = view.record.owner
        if not reader.owner.same_scope(theirs):
            where = f"project {theirs.project}" + (f", workspace {theirs.workspace}" if theirs.workspace else "")
            return name, f"managed by vmctl for {where}"
        return name, self._live_guest(dom, view, reader, autostart)

    def _live_guest(self, dom: libvirt.virDomain, view: DomainView, reader: _GuestReader, autostart: bool) -> LiveGuest:
        assert view.record is not None and view.guest is not None
        if not view.active:
            return LiveGuest(view.name, view.uuid, view.record, view.guest, None, view.targets)
        with _translated("read domain config", view.name):
            xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        config = read_domain(xml, reader.pool_paths, autostart, reader.sizes)
        assert config.guest is not None and config.record is not None
        return LiveGuest(view.name, view.uuid, config.record, config.guest, view.guest, config.targets)

    def _list_volumes(self, pools: list[LivePool]) -> dict[tuple[str, str], libvirt.virStorageVol]:
        found = {}
        for pool in pools:
            with _translated(f"list volumes of pool {pool.name}"):
                found.update({(pool.name, v.name()): v for v in self._pool(pool.name).listAllVolumes(0)})
        self._volumes = dict(found)
        return found

    def _read_networks(self) -> list[LiveNetwork]:
        with _translated("list networks"):
            nets = self.conn.listAllNetworks(0)
        found = []
        for net in nets:
            with _translated(f"read network {net.name()}"):
                found.append(read_network(net.XMLDesc(0), bool(net.isActive()), bool(net.autostart())))
        return found


def _owned_record(dom: libvirt.virDomain) -> GuestRecord | None:
    """vmctl's record in a domain's persistent definition; None for a domain vmctl does not own."""
    for flags in (libvirt.VIR_DOMAIN_AFFECT_CONFIG, libvirt.VIR_DOMAIN_AFFECT_CURRENT):
        try:
            return read_guest_record(dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, NAMESPACE, flags))
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN_METADATA or _missing(exc):
                return None
            if exc.get_error_code() != libvirt.VIR_ERR_OPERATION_INVALID:
                raise HypervisorError("read domain metadata", _detail(exc), dom.name()) from None
            # a transient domain has no persistent definition: its running one is all there is
    return None


class _Capacities:
    """Volume sizes, each read once, when a guest's disk first needs it (from any reader thread).

    `find` gives the volume (None if libvirt has none). Known sizes are bytes, or -2 for a missing
    volume. A volume in one of `local_dirs` (directory pools of a libvirtd on this host) is sized
    from its file, as libvirt itself would: vol.info makes libvirtd open and probe the file, half of
    a big plan's daemon time. Whatever cannot be read here is asked of libvirt.
    """

    def __init__(
        self, find: Callable[[str, str], libvirt.virStorageVol | None], local_dirs: Mapping[str, str] | None = None
    ) -> None:
        self.find = find
        self.local_dirs = local_dirs or {}
        self.known: dict[tuple[str, str], int] = {}

    def __call__(self, pool: str, volume: str, fmt: str = "qcow2") -> int | None:
        key = (pool, volume)
        if key not in self.known:
            self.known[key] = self._size(pool, volume, fmt)
        size = self.known[key]
        return size if size >= 0 else None

    def _size(self, pool: str, volume: str, fmt: str) -> int:
        vol = self.find(pool, volume)
        if vol is None:
            return -2
        from_file = self._from_file(pool, volume, fmt)  # 0 for an empty raw file: a size, not a miss
        return _capacity(vol) if from_file is None else from_file

    def _from_file(self, pool: str, volume: str, fmt: str) -> int | None:
        directory = self.local_dirs.get(pool)
        if directory is None or fmt not in ("qcow2", "raw"):
            return None
        try:
            return virtual_size(f"{directory}/{volume}", fmt)  # a str: pathlib would cost more than the read
        except (OSError, VmctlError):
            return None  # not readable by this user, say: libvirtd can


@dataclass(frozen=True, slots=True)
class _GuestReader:
    """What reading each domain shares: whose guests are wanted, where pools live, disk sizes."""

    owner: Owner
    pool_paths: dict[str, str]
    sizes: _Capacities
