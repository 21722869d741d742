"""Reading live state in bulk: every domain, pool, network and disk size in few round trips.

Fetching is here; making live state of what was fetched is `vmctl.hypervisor.livestate`'s.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

import libvirt

from vmctl.cachedir import cache_dir
from vmctl.errors import HypervisorError, VmctlError
from vmctl.hypervisor import livestate
from vmctl.hypervisor.libvirt.connection import Connection, error_detail, is_missing, is_unsupported, translated
from vmctl.hypervisor.livestate import DiskSizes, GuestReading
from vmctl.hypervisor.readmemo import ReadMemo, memo_path
from vmctl.libvirtxml.metadata import NAMESPACE, read_guest_record
from vmctl.libvirtxml.network import read_network
from vmctl.libvirtxml.storage import read_pool
from vmctl.model import (
    GuestRecord,
    HostFacts,
    LiveGuest,
    LiveNetwork,
    LivePool,
    LiveState,
    OwnedGuest,
    OwnedState,
    Owner,
    VolumeRef,
)
from vmctl.resolve.disksize import virtual_size

_READERS = 4  # libvirtd serves 5 requests per connection at once by default; keep one for others
# Reading every domain: a few workers fetch domain XML, fewer read it as it comes. Fetching is
# waiting for libvirt; reading is CPU under the GIL, which more readers would only take turns at.
_FETCHERS = 3
_PARSERS = 2

Seen = tuple[str, livestate.Seen | None]  # a domain's name, and what it is to us, or None: vanished


class StateReader:
    """Live state, parsed into the model."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.conn = connection.conn

    def host_facts(self) -> HostFacts:
        with translated("read host capabilities"):
            capabilities = self.conn.getCapabilities()
        with translated("list storage pools"):
            pools = self.conn.listAllStoragePools(0)
        default = [read_pool(p.XMLDesc(0), bool(p.isActive()), Owner("")) for p in pools if p.name() == "default"]
        pool_path = livestate.default_pool_path(self.connection.uri, default)
        uri = self.connection.uri
        return livestate.host_facts(capabilities, self.log_dir(), pool_path, livestate.is_local(uri))

    def log_dir(self) -> str | None:
        return livestate.log_dir(self.connection.uri)

    def read_state(
        self, owner: Owner, disks_of_interest: Iterable[VolumeRef] = (), adoptable: Iterable[str] = ()
    ) -> LiveState:
        """Everything the planner needs, in as few round trips as possible, several at a time.

        Only disk volumes are sized (one call each); every other volume just has to exist, which
        listing the pools tells.
        """
        pools = self.read_pools(owner)
        present = self.list_volumes([p for p in pools if p.active])
        local = livestate.local_dirs(self.connection.uri, pools)
        sizes = _Capacities(lambda pool, name: present.get((pool, name)), local)
        memo = ReadMemo.load(memo_path(cache_dir(), self.connection.uri, owner))
        reading = GuestReading(owner, {p.name: p.path for p in pools}, sizes, frozenset(adoptable), memo)
        wanted = [(v.pool, v.name) for v in disks_of_interest if (v.pool, v.name) in present]
        with ThreadPoolExecutor(1) as sizer:
            if not local:  # a remote host's sizes are round trips: asked ahead, beside the readers
                sizes.ask_ahead(wanted, sizer)
            found = self._read_domains(reading)
            for pool, name in wanted:  # the spec's disks no guest has: usually none are left
                sizes(pool, name)
        memo.save()
        return livestate.live_state(found, self._read_networks(), pools, livestate.volume_infos(present, sizes.known))

    def read_owned(self, owner: Owner | None, boot_volumes: bool = False) -> OwnedState:
        """What this project and workspace own, from ownership records alone: one small call per domain.

        Removing needs no domain definition, only who owns what and which volumes each claims.
        `boot_volumes` adds each owned guest's kernel and initrd, from its definition. With no
        owner, every guest of vmctl's (pools are owned by no one then).
        """
        pools = self.read_pools(owner or livestate.NOBODY)
        present = self.list_volumes([p for p in pools if p.active])
        domains = self.connection.list_domains()
        with ThreadPoolExecutor(_READERS) as workers:
            records = list(workers.map(_owned_record, domains))
            guests = [
                OwnedGuest(dom.name(), record, dom.ID() != -1)
                for dom, record in zip(domains, records, strict=True)
                if record is not None and (owner is None or owner.claims(record.owner))
            ]
            if boot_volumes:
                pool_paths = {p.name: p.path for p in pools}
                guests = list(workers.map(lambda g: self._with_boot_volumes(g, pool_paths), guests))
        return livestate.owned_state(guests, self._read_networks(), pools, present)

    def _with_boot_volumes(self, guest: OwnedGuest, pool_paths: Mapping[str, str]) -> OwnedGuest:
        with translated("read domain config", guest.name):
            xml = self.connection.domain(guest.name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        return livestate.with_boot_volumes(guest, xml, pool_paths)

    def read_live_guest(self, name: str, owner: Owner, pool_paths: Mapping[str, str]) -> LiveGuest | None:
        """One managed guest as it is now (for verifying what was just done); None if gone or not ours."""
        dom = self.connection.find_domain(name)
        if dom is None:
            return None
        with translated("read autostart", name):
            autostart = bool(dom.autostart())
        reading = GuestReading(owner, pool_paths, _Capacities(self.connection.volume))
        _name, seen = self._read_one(dom, reading, autostart)
        return seen if isinstance(seen, LiveGuest) else None

    def read_pools(self, owner: Owner) -> list[LivePool]:
        """Every pool, remembered by name for the operations that follow."""
        with translated("list storage pools"):
            found = self.conn.listAllStoragePools(0)
        pools = []
        for pool in found:
            with _unless_vanished(f"read pool {pool.name()}"):
                pools.append(read_pool(pool.XMLDesc(0), bool(pool.isActive()), owner))
                self.connection.remember_pool(pool.name(), pool)
        return pools

    def list_volumes(self, pools: list[LivePool]) -> dict[tuple[str, str], libvirt.virStorageVol]:
        """Every volume of these pools by (pool, name), remembered for the operations that follow."""
        found = {}
        for pool in pools:
            with _unless_vanished(f"list volumes of pool {pool.name}"):
                found.update({(pool.name, v.name()): v for v in self.connection.pool(pool.name).listAllVolumes(0)})
        self.connection.remember_volumes(found)
        return found

    def _read_domains(self, reading: GuestReading) -> list[Seen]:
        """Every domain: fetched by a few workers, read by others as the XML comes in."""
        domains = self.connection.list_domains()
        with translated("list domains"):
            autostart = {d.name() for d in self.conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_AUTOSTART)}
        fetched: queue.SimpleQueue[_Fetched | None] = queue.SimpleQueue()
        with ThreadPoolExecutor(_FETCHERS + _PARSERS) as workers:
            parsers = [workers.submit(_read_fetched, fetched, reading, autostart) for _ in range(_PARSERS)]
            shares = [domains[i::_FETCHERS] for i in range(_FETCHERS)]
            try:
                for fetcher in [workers.submit(_fetch_share, share, fetched) for share in shares]:
                    fetcher.result()
            finally:
                for _ in parsers:
                    fetched.put(None)  # no more to come
            return [seen for parser in parsers for seen in parser.result()]

    def _read_one(self, dom: libvirt.virDomain, reading: GuestReading, autostart: bool) -> Seen:
        name = dom.name()
        try:
            xml = dom.XMLDesc(0)
        except libvirt.libvirtError as exc:
            if is_missing(exc):
                return name, None  # vanished while we read: not ours to worry about
            raise HypervisorError("read domain", error_detail(exc), guest=name) from None
        return name, livestate.read_guest_xml(xml, reading, autostart, lambda: _config_xml(dom, name))

    def _read_networks(self) -> list[LiveNetwork]:
        with translated("list networks"):
            nets = self.conn.listAllNetworks(0)
        found = []
        for net in nets:
            with _unless_vanished(f"read network {net.name()}"):
                # The persistent definition: vmctl's record is rewritten there (libvirt 9.0 cannot
                # change a running network's metadata); reservations are changed in both.
                xml = persistent_network_xml(net)
                found.append(read_network(xml, bool(net.isActive()), bool(net.autostart())))
        return found


@contextmanager
def _unless_vanished(operation: str) -> Iterator[None]:
    """Read one object of a listing; one removed since (by another program) is as if listed a moment later."""
    try:
        yield
    except libvirt.libvirtError as exc:
        if not is_missing(exc):
            raise HypervisorError(operation, error_detail(exc)) from None


def persistent_network_xml(net: libvirt.virNetwork) -> str:
    try:
        return str(net.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE))
    except libvirt.libvirtError as exc:
        if not is_unsupported(exc):
            raise
        return str(net.XMLDesc(0))  # drivers that keep one definition (the test driver)


@dataclass(frozen=True, slots=True)
class _Fetched:
    """A domain and its XML as it is now (None: it vanished while being read)."""

    dom: libvirt.virDomain
    name: str
    xml: str | None


def _fetch_share(share: list[libvirt.virDomain], out: queue.SimpleQueue[_Fetched | None]) -> None:
    for dom in share:
        name = dom.name()
        try:
            out.put(_Fetched(dom, name, dom.XMLDesc(0)))
        except libvirt.libvirtError as exc:
            if not is_missing(exc):
                raise HypervisorError("read domain", error_detail(exc), guest=name) from None
            out.put(_Fetched(dom, name, None))  # vanished while we read: not ours to worry about


def _read_fetched(
    fetched: queue.SimpleQueue[_Fetched | None], reading: GuestReading, autostart: set[str]
) -> list[Seen]:
    """Domains as they are fetched, until there are no more."""
    seen: list[Seen] = []
    while (one := fetched.get()) is not None:
        if one.xml is None:
            seen.append((one.name, None))
        else:
            config = partial(_config_xml, one.dom, one.name)  # asked only of the owner's running guests
            seen.append((one.name, livestate.read_guest_xml(one.xml, reading, one.name in autostart, config)))
    return seen


def _config_xml(dom: libvirt.virDomain, name: str) -> str:
    with translated("read domain config", name):
        return str(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))


def _owned_record(dom: libvirt.virDomain) -> GuestRecord | None:
    """vmctl's record in a domain's persistent definition; None for a domain vmctl does not own."""
    for flags in (libvirt.VIR_DOMAIN_AFFECT_CONFIG, libvirt.VIR_DOMAIN_AFFECT_CURRENT):
        try:
            return read_guest_record(dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, NAMESPACE, flags))
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN_METADATA or is_missing(exc):
                return None
            if exc.get_error_code() != libvirt.VIR_ERR_OPERATION_INVALID:
                raise HypervisorError("read domain metadata", error_detail(exc), guest=dom.name()) from None
            # a transient domain has no persistent definition: its running one is all there is
    return None


class _Capacities(DiskSizes):
    """Disk sizes from libvirt's volumes, or from the volume files when they are on this host.

    `find` gives the volume (None if libvirt has none). A volume in one of `local_dirs` (directory
    pools of a libvirtd on this host) is sized from its file, as libvirt itself would: vol.info makes
    libvirtd open and probe the file, half of a big plan's daemon time. Whatever cannot be read here
    is asked of libvirt.
    """

    def __init__(
        self, find: Callable[[str, str], libvirt.virStorageVol | None], local_dirs: Mapping[str, str] | None = None
    ) -> None:
        super().__init__()
        self.find = find
        self.local_dirs = local_dirs or {}
        self.ahead: dict[tuple[str, str], Future[int | None]] = {}

    def ask_ahead(self, volumes: Iterable[tuple[str, str]], worker: Executor) -> None:
        """Ask libvirt for these sizes in the background, one after another. The readers of domains
        then rarely wait for a size; one needed before its turn came is asked by its reader."""
        for pool, volume in volumes:
            self.ahead[(pool, volume)] = worker.submit(self._from_libvirt, pool, volume)

    def read(self, pool: str, volume: str, fmt: str) -> int | None:
        asked = self.ahead.pop((pool, volume), None)
        if asked is not None and not asked.cancel():
            return asked.result()  # asked already, or being asked
        if self.find(pool, volume) is None:
            return None  # libvirt has no such volume, whatever file is there
        from_file = self._from_file(pool, volume, fmt)  # 0 for an empty raw file: a size, not a miss
        return self._from_libvirt(pool, volume) if from_file is None else from_file

    def _from_libvirt(self, pool: str, volume: str) -> int | None:
        vol = self.find(pool, volume)
        return None if vol is None else _capacity(vol)

    def _from_file(self, pool: str, volume: str, fmt: str) -> int | None:
        directory = self.local_dirs.get(pool)
        if directory is None or fmt not in ("qcow2", "raw"):
            return None
        try:
            return virtual_size(f"{directory}/{volume}", fmt)  # a str: pathlib would cost more than the read
        except (OSError, VmctlError):
            return None  # not readable by this user, say: libvirtd can


def _capacity(vol: libvirt.virStorageVol) -> int | None:
    """A volume's size in bytes; None when it vanished while being read."""
    try:
        return int(vol.info()[1])
    except libvirt.libvirtError as exc:
        if is_missing(exc):
            return None
        raise HypervisorError(f"read volume {vol.name()}", error_detail(exc)) from None
