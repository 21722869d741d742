"""The one module that talks to libvirt. Everything else sees `LibvirtBackend`'s small interface.

Works against any URI (qemu:///system, qemu:///session, qemu+ssh://..., test:///default): files reach
the hypervisor as volumes through libvirt streams, never by assuming a shared local disk.
"""

from __future__ import annotations

import io
import json
import os
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO

import libvirt

from vmctl.domainread import DomainView, domain_uses, is_vmctl_xml, read_domain
from vmctl.errors import ConnectError, HypervisorError
from vmctl.failpoints import failpoint
from vmctl.metadata import NAMESPACE, PREFIX
from vmctl.model import (
    GuestSpec,
    HostFacts,
    LiveGuest,
    LiveNetwork,
    LivePool,
    LiveState,
    NetworkSpec,
    Owner,
    VolumeInfo,
    VolumeRef,
)
from vmctl.networkxml import network_xml, read_network
from vmctl.storagexml import backing_path, pool_xml, read_pool, volume_xml

_CHUNK = 4 * 1024 * 1024
_READERS = 4  # libvirtd serves 5 requests per connection at once by default; keep one for others

libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # libvirt's own stderr printer: silenced

Progress = Callable[[int, int], None]


def _detail(exc: libvirt.libvirtError) -> str:
    return str(exc.get_error_message() or exc)


def _missing(exc: libvirt.libvirtError) -> bool:
    return exc.get_error_code() in (
        libvirt.VIR_ERR_NO_DOMAIN,
        libvirt.VIR_ERR_NO_STORAGE_VOL,
        libvirt.VIR_ERR_NO_STORAGE_POOL,
        libvirt.VIR_ERR_NO_NETWORK,
    )


@contextmanager
def _translated(operation: str, guest: str | None = None) -> Iterator[None]:
    """libvirt errors become HypervisorErrors that keep libvirt's message and say what was being done."""
    try:
        yield
    except libvirt.libvirtError as exc:
        raise HypervisorError(operation, _detail(exc), guest) from None


def connect(uri: str) -> LibvirtBackend:
    """Open a connection, with a message that says how to fix the usual failures."""
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError as exc:
        detail = _detail(exc)
        raise ConnectError(f"connect to {uri}", detail, hint=_connect_hint(uri, detail)) from None
    return LibvirtBackend(conn, uri)


def _connect_hint(uri: str, detail: str) -> str:
    if "No such file" in detail or "Connection refused" in detail:
        return "is libvirtd running? start it (systemctl start libvirtd, or: virtlogd -d; libvirtd -d)"
    if "Permission denied" in detail or "authentication" in detail.lower():
        return "add your user to the 'libvirt' group, or use --connect qemu:///session"
    return f"check the URI ({uri}) and that the hypervisor is reachable"


class LibvirtBackend:
    """Reads live state in bulk and carries out single, named operations on libvirt objects."""

    def __init__(self, conn: libvirt.virConnect, uri: str) -> None:
        self.conn = conn
        self.uri = uri
        # Objects found while reading, reused by the operations that follow: one lookup saved per call.
        self._pool_cache: dict[str, libvirt.virStoragePool] = {}
        self._domains: dict[str, libvirt.virDomain] = {}
        self._volumes: dict[tuple[str, str], libvirt.virStorageVol] = {}
        # Streams get a connection of their own, one at a time: libvirt 9.0's client can lose replies
        # (and hang, or drop the connection) when a stream shares a connection with concurrent calls.
        self._stream_conn: libvirt.virConnect | None = None
        self._stream_lock = threading.Lock()
        self._lock = threading.Lock()

    def close(self) -> None:
        for conn in (self._stream_conn, self.conn):
            if conn is not None:
                with suppress(libvirt.libvirtError):
                    conn.close()

    # -- reading ---------------------------------------------------------------------------------

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

    def read_state(self, owner: Owner, disks_of_interest: Iterable[VolumeRef] = (), sized: bool = True) -> LiveState:
        """Everything the planner needs, in as few round trips as possible, several at a time.

        Only disk volumes are sized (one call each); every other volume just has to exist, which
        listing the pools tells. Without `sized`, no volume is (destroy needs no sizes).
        """
        pools = self._read_pools(owner)
        pool_paths = {p.name: p.path for p in pools}
        present = self._list_volumes([p for p in pools if p.active])
        wanted = {(v.pool, v.name) for v in disks_of_interest}
        with ThreadPoolExecutor(_READERS) as workers:
            sizing = {key: workers.submit(_capacity, vol) for key, vol in present.items() if key in wanted}
            guests, others = self._read_domains(owner, pool_paths, workers)
            live_disks = {(d.pool, d.volume) for g in guests for s in (g.config, g.running) if s for d in s.disks}
            if sized:
                sizing |= {
                    key: workers.submit(_capacity, present[key]) for key in live_disks - wanted if key in present
                }
            sizes = {key: future.result() for key, future in sizing.items()}
        volumes = {key: VolumeInfo(key[0], key[1], sizes.get(key, -1)) for key in present if sizes.get(key) != -2}
        guests = [_with_disk_sizes(g, volumes) for g in guests]
        return LiveState(tuple(guests), others, tuple(self._read_networks()), tuple(pools), volumes)

    def read_live_guest(self, name: str, owner: Owner, pool_paths: dict[str, str]) -> LiveGuest | None:
        """One managed guest as it is now (for verifying what was just done); None if gone or not ours."""
        dom = self._find_domain(name)
        if dom is None:
            return None
        with _translated("read autostart", name):
            autostart = bool(dom.autostart())
        _name, view = self._read_one(dom, owner, pool_paths, autostart)
        if not isinstance(view, LiveGuest):
            return None
        sizes = {}
        for disk in {*view.config.disks, *(view.running.disks if view.running else ())}:
            vol = self._volume(disk.pool, disk.volume) if disk.pool else None
            if vol is not None:
                with _translated(f"read volume {disk.volume}", name):
                    sizes[(disk.pool, disk.volume)] = VolumeInfo(disk.pool, disk.volume, vol.info()[1])
        return _with_disk_sizes(view, sizes)

    def _read_pools(self, owner: Owner) -> list[LivePool]:
        with _translated("list storage pools"):
            found = self.conn.listAllStoragePools(0)
        pools = []
        for pool in found:
            with _translated(f"read pool {pool.name()}"):
                pools.append(read_pool(pool.XMLDesc(0), bool(pool.isActive()), owner))
            self._pool_cache[pool.name()] = pool
        return pools

    def _read_domains(
        self, owner: Owner, pool_paths: dict[str, str], workers: ThreadPoolExecutor
    ) -> tuple[list[LiveGuest], dict[str, str]]:
        with _translated("list domains"):
            domains = self.conn.listAllDomains(0)
            autostart = {d.name() for d in self.conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_AUTOSTART)}
        self._domains = {d.name(): d for d in domains}
        guests, others = [], {}
        views = workers.map(lambda d: self._read_one(d, owner, pool_paths, d.name() in autostart), domains)
        for name, view in views:
            if isinstance(view, LiveGuest):
                guests.append(view)
            elif view is not None:
                others[name] = view
        return sorted(guests, key=lambda g: g.name), others

    def _read_one(
        self, dom: libvirt.virDomain, owner: Owner, pool_paths: dict[str, str], autostart: bool
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
        view = read_domain(xml, pool_paths, autostart)
        if view.record is None or view.guest is None:
            return name, "not managed by vmctl"
        theirs = view.record.owner
        if (theirs.project, theirs.workspace) != (owner.project, owner.workspace):
            where = f"project {theirs.project}" + (f", workspace {theirs.workspace}" if theirs.workspace else "")
            return name, f"managed by vmctl for {where}"
        return name, self._live_guest(dom, view, pool_paths, autostart)

    def _live_guest(
        self, dom: libvirt.virDomain, view: DomainView, pool_paths: dict[str, str], autostart: bool
    ) -> LiveGuest:
        assert view.record is not None and view.guest is not None
        if not view.active:
            return LiveGuest(view.name, view.uuid, view.record, view.guest, None, view.targets)
        with _translated("read domain config", view.name):
            config = read_domain(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), pool_paths, autostart)
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

    # -- pools and networks ------------------------------------------------------------------------

    def _pool(self, name: str) -> libvirt.virStoragePool:
        with self._lock:
            if name not in self._pool_cache:
                with _translated(f"find pool {name}"):
                    self._pool_cache[name] = self.conn.storagePoolLookupByName(name)
            return self._pool_cache[name]

    def pool_exists(self, name: str) -> bool:
        self._pool_cache.pop(name, None)
        try:
            self.conn.storagePoolLookupByName(name)
        except libvirt.libvirtError as exc:
            if _missing(exc):
                return False
            raise HypervisorError(f"find pool {name}", _detail(exc)) from None
        return True

    def create_pool(self, name: str, path: str, owner: Owner) -> None:
        with _translated(f"create pool {name}"):
            pool = self.conn.storagePoolDefineXML(pool_xml(name, path, owner), 0)
            pool.build(0)
            pool.create(0)
            pool.setAutostart(1)
        self._pool_cache[name] = pool

    def start_pool(self, name: str) -> None:
        with _translated(f"start pool {name}"):
            pool = self._pool(name)
            if not pool.isActive():
                pool.create(0)

    def delete_pool(self, name: str) -> None:
        """Stop and forget a pool; its directory is removed only if empty."""
        with _translated(f"delete pool {name}"):
            pool = self._pool(name)
            if pool.isActive():
                pool.refresh(0)
                if pool.numOfVolumes() > 0:
                    return
                pool.destroy()
            with suppress(libvirt.libvirtError):
                pool.delete(0)  # removes the directory only when empty
            pool.undefine()
        self._pool_cache.pop(name, None)

    def create_network(self, spec: NetworkSpec, owner: Owner) -> None:
        with _translated(f"create network {spec.libvirt_name}"):
            net = self.conn.networkDefineXML(network_xml(spec, owner))
            net.create()
            net.setAutostart(1)

    def start_network(self, name: str) -> None:
        with _translated(f"start network {name}"):
            net = self.conn.networkLookupByName(name)
            if not net.isActive():
                net.create()
            net.setAutostart(1)

    def delete_network(self, name: str) -> None:
        try:
            net = self.conn.networkLookupByName(name)
        except libvirt.libvirtError as exc:
            if _missing(exc):
                return
            raise HypervisorError(f"delete network {name}", _detail(exc)) from None
        with _translated(f"delete network {name}"):
            if net.isActive():
                net.destroy()
            net.undefine()

    # -- volumes ---------------------------------------------------------------------------------------

    def _volume(self, pool: str, name: str) -> libvirt.virStorageVol | None:
        if (pool, name) in self._volumes:
            return self._volumes[(pool, name)]
        try:
            vol = self._pool(pool).storageVolLookupByName(name)
        except libvirt.libvirtError as exc:
            if _missing(exc):
                return None
            raise HypervisorError(f"find volume {name}", _detail(exc)) from None
        self._volumes[(pool, name)] = vol
        return vol

    def volume_exists(self, pool: str, name: str) -> bool:
        return self._volume(pool, name) is not None

    def volume_path(self, pool: str, name: str) -> str:
        vol = self._volume(pool, name)
        if vol is None:
            raise HypervisorError(f"find volume {name}", f"no volume {name} in pool {pool}")
        with _translated(f"find volume {name}"):
            return str(vol.path())

    def create_volume(
        self,
        pool: str,
        name: str,
        capacity: int,
        fmt: str = "qcow2",
        backing: VolumeRef | None = None,
        backing_format: str = "qcow2",
    ) -> None:
        backing_path = self.volume_path(backing.pool, backing.name) if backing else None
        xml = volume_xml(name, capacity, fmt, backing_path, backing_format)
        with _translated(f"create volume {name}"):
            self._volumes[(pool, name)] = self._pool(pool).createXML(xml, 0)

    def delete_volume(self, pool: str, name: str) -> None:
        vol = self._volume(pool, name)
        self._volumes.pop((pool, name), None)
        if vol is None:
            return
        with _translated(f"delete volume {name}"):
            try:
                vol.delete(0)
            except libvirt.libvirtError as exc:
                if not _missing(exc):
                    raise

    def volume_users(self, pool: str, name: str) -> list[str]:
        """Who still needs this volume: overlays built on it, and any domain (vmctl's or not) that boots
        from it or has it as a disk. A shared image is deleted only when this is empty."""
        path = self.volume_path(pool, name)
        users = [f"volume {v}" for v in self._overlays_of(path)]
        with _translated("list domains"):
            domains = self.conn.listAllDomains(0)
        for dom in domains:
            try:
                xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
            except libvirt.libvirtError as exc:
                if _missing(exc):
                    continue
                raise HypervisorError("read domain", _detail(exc), dom.name()) from None
            if domain_uses(xml, pool, name, path):
                users.append(f"domain {dom.name()}")
        return users

    def _overlays_of(self, path: str) -> list[str]:
        users = []
        with _translated("list storage pools"):
            pools = [p for p in self.conn.listAllStoragePools(0) if p.isActive()]
        for candidate in pools:
            with _translated(f"list volumes of pool {candidate.name()}"):
                volumes = candidate.listAllVolumes(0)
            for vol in volumes:
                try:
                    xml = vol.XMLDesc(0)
                except libvirt.libvirtError as exc:
                    if _missing(exc):
                        continue  # deleted meanwhile: it is nobody's overlay any more
                    raise HypervisorError(f"read volume {vol.name()}", _detail(exc)) from None
                if backing_path(xml) == path:
                    users.append(vol.name())
        return users

    def resize_volume(self, pool: str, name: str, capacity: int) -> None:
        vol = self._volume(pool, name)
        if vol is None:
            raise HypervisorError(f"resize volume {name}", f"no volume {name} in pool {pool}")
        with _translated(f"resize volume {name}"):
            vol.resize(capacity, 0)

    def write_volume(self, pool: str, name: str, data: bytes, fmt: str = "raw") -> None:
        """Create a small volume holding `data` (a seed ISO)."""
        with _translated(f"create volume {name}"):
            self._volumes[(pool, name)] = self._pool(pool).createXML(volume_xml(name, len(data), fmt), 0)
        self._upload(pool, name, io.BytesIO(data), len(data), None)

    @contextmanager
    def _streaming(self, pool: str, name: str) -> Iterator[tuple[libvirt.virConnect, libvirt.virStorageVol]]:
        """The stream connection (opened on first use) and the volume as seen through it."""
        with self._stream_lock:
            with _translated(f"open a stream connection to {self.uri}"):
                if self._stream_conn is None:
                    self._stream_conn = libvirt.open(self.uri)
                vol = self._stream_conn.storagePoolLookupByName(pool).storageVolLookupByName(name)
            yield self._stream_conn, vol

    def read_volume(self, pool: str, name: str) -> bytes:
        with self._streaming(pool, name) as (conn, vol), _translated(f"read volume {name}"):
            _type, capacity, _alloc = vol.info()
            stream = conn.newStream(0)
            vol.download(stream, 0, capacity, 0)
            chunks: list[bytes] = []
            stream.recvAll(lambda _s, data, out: out.append(data), chunks)
            stream.finish()
        return b"".join(chunks)

    def upload_file(self, pool: str, name: str, source: Path, fmt: str, progress: Progress | None = None) -> None:
        """Upload a local file as volume `name`, atomically: a partial upload never has the final name.

        The bytes go to '<name>.part' first, which is cloned to the final name inside the hypervisor
        and then removed; an interrupted upload leaves only a '.part' that the next upload replaces.
        """
        part = f"{name}.part"
        size = source.stat().st_size
        self.delete_volume(pool, part)
        with _translated(f"upload {source.name}"):
            vol = self._pool(pool).createXML(volume_xml(part, size, fmt), 0)
        with source.open("rb") as handle:
            self._upload(pool, part, handle, size, progress)
        with _translated(f"create volume {name}"):
            final_xml = volume_xml(name, size, fmt)
            self._volumes[(pool, name)] = self._pool(pool).createXMLFrom(final_xml, vol, 0)
        self.delete_volume(pool, part)

    def _upload(self, pool: str, name: str, handle: BinaryIO, size: int, progress: Progress | None) -> None:
        sent = 0

        def chunk(_stream: Any, nbytes: int, _opaque: Any) -> bytes:
            nonlocal sent
            data = handle.read(min(nbytes, _CHUNK))
            if sent:
                failpoint("upload-midway")
            sent += len(data)
            if progress:
                progress(sent, size)
            return data

        with self._streaming(pool, name) as (conn, vol), _translated(f"upload volume {name}"):
            stream = conn.newStream(0)
            vol.upload(stream, 0, size, 0)
            try:
                stream.sendAll(chunk, None)
                stream.finish()
            except libvirt.libvirtError:
                stream.abort()
                raise

    # -- domains -----------------------------------------------------------------------------------------

    def _find_domain(self, name: str) -> libvirt.virDomain | None:
        if name in self._domains:
            return self._domains[name]
        try:
            dom = self.conn.lookupByName(name)
        except libvirt.libvirtError as exc:
            if _missing(exc):
                return None
            raise HypervisorError("find domain", _detail(exc), name) from None
        self._domains[name] = dom
        return dom

    def _domain(self, name: str) -> libvirt.virDomain:
        dom = self._find_domain(name)
        if dom is None:
            raise HypervisorError("find domain", f"no domain named {name}", name)
        return dom

    def domain_exists(self, name: str) -> bool:
        return self._find_domain(name) is not None

    def domain_xml(self, name: str, inactive: bool = False) -> str:
        flags = libvirt.VIR_DOMAIN_XML_INACTIVE if inactive else 0
        with _translated("read domain", name):
            return str(self._domain(name).XMLDesc(flags))

    def read_guest(self, name: str, pool_paths: dict[str, str] | None = None) -> DomainView:
        """One domain's live view (the live definition when running)."""
        return read_domain(self.domain_xml(name), pool_paths)

    def define(self, xml: str, name: str) -> None:
        with _translated("define", name):
            self._domains[name] = self.conn.defineXML(xml)

    def is_active(self, name: str) -> bool:
        with _translated("read state", name):
            return bool(self._domain(name).isActive())

    def start(self, name: str) -> None:
        with _translated("start", name):
            dom = self._domain(name)
            if not dom.isActive():
                dom.create()

    def shutdown(self, name: str, timeout: float) -> bool:
        """Ask the guest to power off (its agent if it has one, else ACPI); True if it did in `timeout`."""
        dom = self._domain(name)
        flags = libvirt.VIR_DOMAIN_SHUTDOWN_GUEST_AGENT | libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN
        with _translated("shut down", name):
            if not dom.isActive():
                return True
            try:
                _shutdown(dom, flags)
            except libvirt.libvirtError as exc:
                if not dom.isActive():
                    return True
                if exc.get_error_code() != libvirt.VIR_ERR_OPERATION_INVALID:
                    raise
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.is_active(name):
                return True
            time.sleep(0.25)
        return False

    def power_off(self, name: str) -> None:
        with _translated("power off", name):
            dom = self._domain(name)
            if dom.isActive():
                try:
                    dom.destroy()
                except libvirt.libvirtError:
                    if dom.isActive():
                        raise

    def undefine(self, name: str) -> None:
        """Forget the domain, with its NVRAM, snapshot and checkpoint metadata and managed save."""
        flags = (
            libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
            | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
            | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
            | libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
        )
        dom = self._find_domain(name)
        self._domains.pop(name, None)
        if dom is None:
            return
        with _translated("undefine", name):
            try:
                dom.undefineFlags(flags)
            except libvirt.libvirtError as exc:
                if _missing(exc):
                    return
                if exc.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT and "unsupported flags" not in _detail(exc):
                    raise
                dom.undefine()  # drivers that know none of these extras (the test driver)

    def set_autostart(self, name: str, enabled: bool) -> None:
        with _translated("set autostart", name):
            self._domain(name).setAutostart(1 if enabled else 0)

    def set_metadata(self, name: str, xml: str, live: bool) -> None:
        with _translated("write vmctl metadata", name):
            self._domain(name).setMetadata(
                libvirt.VIR_DOMAIN_METADATA_ELEMENT, xml, PREFIX, NAMESPACE, _flags(live, config=True)
            )

    def attach(self, name: str, xml: str, live: bool) -> None:
        with _translated("attach device", name):
            self._domain(name).attachDeviceFlags(xml, _flags(live, config=True))

    def detach(self, name: str, xml: str, live: bool, config: bool = True) -> None:
        with _translated("detach device", name):
            self._domain(name).detachDeviceFlags(xml, _flags(live, config))

    def update_device(self, name: str, xml: str, live: bool) -> None:
        with _translated("update device", name):
            self._domain(name).updateDeviceFlags(xml, _flags(live, config=True))

    def set_memory(self, name: str, size: int, live: bool) -> None:
        with _translated("set memory", name):
            self._domain(name).setMemoryFlags(size // 1024, _flags(live, config=True))

    def set_vcpus(self, name: str, count: int, live: bool) -> None:
        with _translated("set vCPUs", name):
            self._domain(name).setVcpusFlags(count, _flags(live, config=True))

    def block_resize(self, name: str, target: str, size: int) -> None:
        with _translated(f"resize disk {target}", name):
            self._domain(name).blockResize(target, size, libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES)

    # -- guest agent ----------------------------------------------------------------------------------------

    def agent(self, name: str, command: str, arguments: dict[str, Any] | None = None, timeout: int = 5) -> Any:
        """One qemu-guest-agent command; returns its 'return' value."""
        import libvirt_qemu

        message = json.dumps({"execute": command, **({"arguments": arguments} if arguments else {})})
        with _translated(f"guest agent {command}", name):
            reply = libvirt_qemu.qemuAgentCommand(self._domain(name), message, timeout, 0)
        return json.loads(reply).get("return")

    def addresses(self, name: str) -> dict[str, list[str]]:
        """IP addresses by MAC, from the guest agent, else from DHCP leases."""
        dom = self._domain(name)
        for source in (
            libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT,
            libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE,
        ):
            try:
                found = dom.interfaceAddresses(source, 0)
            except libvirt.libvirtError:
                continue
            result = {
                (info.get("hwaddr") or iface).lower(): [a["addr"] for a in info.get("addrs") or []]
                for iface, info in found.items()
                if iface != "lo"
            }
            if any(result.values()):
                return result
        return {}


def _shutdown(dom: libvirt.virDomain, flags: int) -> None:
    try:
        dom.shutdownFlags(flags)
    except libvirt.libvirtError as exc:
        if "unsupported flags" not in _detail(exc) and exc.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT:
            raise
        dom.shutdown()  # drivers that cannot choose the method (the test driver)


def _capacity(vol: libvirt.virStorageVol) -> int:
    """A volume's size in bytes; -2 when it vanished while being read."""
    try:
        return int(vol.info()[1])
    except libvirt.libvirtError as exc:
        if _missing(exc):
            return -2
        raise HypervisorError(f"read volume {vol.name()}", _detail(exc)) from None


def _flags(live: bool, config: bool) -> int:
    flags = 0
    if live:
        flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
    if config:
        flags |= libvirt.VIR_DOMAIN_AFFECT_CONFIG
    return flags


def _with_disk_sizes(guest: LiveGuest, volumes: Mapping[tuple[str, str], VolumeInfo]) -> LiveGuest:
    """Disk sizes come from the volumes, not the domain XML; None marks a missing volume."""

    def sized(spec: GuestSpec) -> GuestSpec:
        disks = []
        for disk in spec.disks:
            info = volumes.get((disk.pool, disk.volume))
            disks.append(replace(disk, size=info.capacity if info and info.capacity >= 0 else None))
        return replace(spec, disks=tuple(disks))

    running = sized(guest.running) if guest.running else None
    return replace(guest, config=sized(guest.config), running=running)
