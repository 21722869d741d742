"""A hypervisor in memory: what libvirt would hold, as XML, and a record of every call made to it.

Domains are their definitions as XML (the persistent one, and the running one while they run), so
reading them is `vmctl.hypervisor.livestate` on the same XML libvirt would return: live state comes
back as the libvirt backend would read it. Operations change that XML as libvirt would, in the small:
a device attached is appended, one detached is gone at once (a guest that always lets go).

    fake = FakeHypervisor()
    ... apply a plan with it ...
    assert not fake.called("attach")
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal, overload

from lxml import etree

from vmctl.errors import HypervisorError, VmctlError
from vmctl.hypervisor import (
    Addresses,
    AgentReply,
    ConsoleStream,
    GuestExecStarted,
    GuestExecStatus,
    GuestVcpu,
    Hypervisor,
    JsonArg,
    UploadProgress,
    livestate,
)
from vmctl.hypervisor.livestate import DiskSizes, GuestReading
from vmctl.libvirtxml.metadata import NAMESPACE, find_guest_record
from vmctl.libvirtxml.network import dhcp_host_element, dns_host_element, network_xml, read_network, with_owner
from vmctl.libvirtxml.readback import DomainView, domain_uses, read_domain
from vmctl.libvirtxml.storage import pool_xml, read_pool
from vmctl.libvirtxml.tree import parse
from vmctl.model import (
    HostEntry,
    HostFacts,
    LiveGuest,
    LiveNetwork,
    LivePool,
    LiveState,
    LockHolder,
    NetworkSpec,
    OwnedGuest,
    OwnedState,
    Owner,
    SnapshotInfo,
    VolumeRef,
)
from vmctl.resolve.disksize import virtual_size

NOT_RUNNING = "Requested operation is not valid: domain is not running"


@dataclass
class FakeSnapshot:
    """A saved domain: its info, and its definitions as they were."""

    info: SnapshotInfo
    config: str
    running: str | None


@dataclass
class FakeDomain:
    """A domain: its persistent definition, and its running one while it runs."""

    config: str
    running: str | None = None
    autostart: bool = False
    snapshots: list[FakeSnapshot] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.running is not None


@dataclass
class FakePool:
    xml: str
    active: bool = True

    @property
    def path(self) -> str:
        return (parse(self.xml).findtext("target/path") or "").rstrip("/")


@dataclass
class FakeVolume:
    capacity: int
    format: str = "qcow2"
    backing: str | None = None  # the path of the volume this one is an overlay of
    data: bytes = b""


@dataclass
class FakeNetwork:
    xml: str
    active: bool = True
    autostart: bool = True


@dataclass
class FakeConsole:
    """A console that shows its output once, then records what is typed until it is closed."""

    output: bytes
    typed: bytearray = field(default_factory=bytearray)
    closed: bool = False

    def recv(self, size: int) -> bytes:
        shown, self.output = self.output[:size], self.output[size:]
        return shown

    def send(self, data: bytes) -> None:
        self.typed.extend(data)

    def close(self) -> None:
        self.closed = True


@dataclass
class FakeHypervisor:
    """The Hypervisor interface over dictionaries. Set the state up directly, or through the operations."""

    host: HostFacts = field(default_factory=lambda: HostFacts(log_dir=None))
    domains: dict[str, FakeDomain] = field(default_factory=dict)
    pools: dict[str, FakePool] = field(default_factory=dict)
    volumes: dict[tuple[str, str], FakeVolume] = field(default_factory=dict)
    networks: dict[str, FakeNetwork] = field(default_factory=dict)
    agent_replies: dict[tuple[str, str], AgentReply] = field(default_factory=dict)  # (guest, command): reply
    guest_addresses: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # guest: MAC: addresses
    ignores_shutdown: set[str] = field(default_factory=set)  # guests that stay up when asked to power off
    # Guests with no OS to honour a request (TCG with nothing booted): a detach or a balloon is accepted
    # and written to the persistent definition, and the running guest stays as it was.
    no_guest_os: set[str] = field(default_factory=set)
    console_output: dict[str, bytes] = field(default_factory=dict)  # guest: what its console shows
    calls: list[tuple[str, tuple[object, ...]]] = field(default_factory=list)  # (operation, its arguments)
    closed: bool = False
    locks: dict[str, LockHolder] = field(default_factory=dict)  # project/workspace: who holds its lock
    _next_id: int = field(default=1, init=False, repr=False)

    def called(self, operation: str) -> list[tuple[object, ...]]:
        """The arguments of each call of `operation`, in order."""
        return [args for name, args in self.calls if name == operation]

    def _call(self, operation: str, *args: object) -> None:
        self.calls.append((operation, args))

    # Connection and host facts

    def close(self) -> None:
        self._call("close")
        self.closed = True

    def host_facts(self) -> HostFacts:
        self._call("host_facts")
        return self.host

    def log_dir(self) -> str | None:
        self._call("log_dir")
        return self.host.log_dir

    # The apply lock

    def try_lock(self, owner: Owner, holder: LockHolder) -> LockHolder | None:
        self._call("try_lock", owner, holder)
        key = f"{owner.project}/{owner.workspace or ''}"
        held = self.locks.setdefault(key, holder)
        return None if held == holder else held

    def lock_ready(self, owner: Owner) -> None:
        self._call("lock_ready", owner)

    def unlock(self, owner: Owner) -> None:
        self._call("unlock", owner)
        self.locks.pop(f"{owner.project}/{owner.workspace or ''}", None)

    # Reading state

    def read_state(
        self, owner: Owner, disks_of_interest: Iterable[VolumeRef] = (), adoptable: Iterable[str] = ()
    ) -> LiveState:
        self._call("read_state", owner, disks_of_interest, adoptable)
        pools = self._live_pools(owner)
        present = self._present(pools)
        sizes = DiskSizes(lambda pool, name, _fmt: self._capacity(pool, name, present))
        reading = GuestReading(owner, {p.name: p.path for p in pools}, sizes, frozenset(adoptable))
        found = [(name, self._read(dom, reading)) for name, dom in self.domains.items()]
        for volume in disks_of_interest:
            sizes(volume.pool, volume.name)
        return livestate.live_state(found, self._live_networks(), pools, livestate.volume_infos(present, sizes.known))

    def read_owned(self, owner: Owner | None, boot_volumes: bool = False) -> OwnedState:
        self._call("read_owned", owner, boot_volumes)
        pools = self._live_pools(owner or livestate.NOBODY)
        pool_paths = {p.name: p.path for p in pools}
        guests = []
        for name, dom in self.domains.items():
            record = find_guest_record(parse(dom.config).find("metadata"))
            if record is None or (owner is not None and not owner.claims(record.owner)):
                continue
            guest = OwnedGuest(name, record, dom.active)
            guests.append(livestate.with_boot_volumes(guest, dom.config, pool_paths) if boot_volumes else guest)
        return livestate.owned_state(guests, self._live_networks(), pools, self._present(pools))

    def read_live_guest(self, name: str, owner: Owner, pool_paths: Mapping[str, str]) -> LiveGuest | None:
        self._call("read_live_guest", name, owner, pool_paths)
        dom = self.domains.get(name)
        if dom is None:
            return None
        sizes = DiskSizes(lambda pool, volume, _fmt: self._capacity(pool, volume, self.volumes))
        seen = self._read(dom, GuestReading(owner, pool_paths, sizes))
        return seen if isinstance(seen, LiveGuest) else None

    def read_guest(self, name: str, pool_paths: Mapping[str, str] | None = None) -> DomainView:
        self._call("read_guest", name, pool_paths)
        return read_domain(self._xml(name), pool_paths)

    def domain_xml(self, name: str, inactive: bool = False) -> str:
        self._call("domain_xml", name, inactive)
        return self._xml(name, inactive)

    def _xml(self, name: str, inactive: bool = False) -> str:
        dom = self._domain(name, "read domain")
        return dom.config if inactive or dom.running is None else dom.running

    def _read(self, dom: FakeDomain, reading: GuestReading) -> livestate.Seen:
        return livestate.read_guest_xml(dom.running or dom.config, reading, dom.autostart, lambda: dom.config)

    def _live_pools(self, owner: Owner) -> list[LivePool]:
        return [read_pool(pool.xml, pool.active, owner) for pool in self.pools.values()]

    def _present(self, pools: list[LivePool]) -> list[tuple[str, str]]:
        """The volumes listed by the running pools."""
        listed = {p.name for p in pools if p.active}
        return [key for key in self.volumes if key[0] in listed]

    def _capacity(self, pool: str, name: str, present: Iterable[tuple[str, str]]) -> int | None:
        volume = self.volumes.get((pool, name))
        return volume.capacity if volume is not None and (pool, name) in present else None

    def _live_networks(self) -> list[LiveNetwork]:
        return [read_network(n.xml, n.active, n.autostart) for n in self.networks.values()]

    # Domains

    def domain_names(self) -> list[str]:
        self._call("domain_names")
        return sorted(self.domains)

    def _domain(self, name: str, operation: str = "find domain") -> FakeDomain:
        if name not in self.domains:
            raise HypervisorError(operation, f"no domain named {name}", guest=name)
        return self.domains[name]

    def domain_exists(self, name: str) -> bool:
        self._call("domain_exists", name)
        return name in self.domains

    def is_active(self, name: str) -> bool:
        self._call("is_active", name)
        return self._domain(name, "read state").active

    def define(self, xml: str, name: str) -> None:
        """Like libvirt: a domain without a UUID gets one, or keeps the one it had; a running one runs on."""
        self._call("define", xml, name)
        root = parse(xml)
        key = root.findtext("name", "")
        known = self.domains.get(key)
        if root.find("uuid") is None:
            had = parse(known.config).findtext("uuid") if known else None
            element = etree.Element("uuid")
            element.text = had or str(uuid.uuid4())
            root.insert(1, element)
        config = etree.tostring(root, encoding="unicode")
        if known is None:
            self.domains[key] = FakeDomain(config)
        else:
            known.config = config

    def undefine(self, name: str) -> None:
        self._call("undefine", name)
        self.domains.pop(name, None)

    def rename(self, name: str, new_name: str) -> None:
        """Like libvirt: only a stopped domain, and never onto a name in use."""
        self._call("rename", name, new_name)
        dom = self._domain(name, "rename")
        if dom.active:
            raise HypervisorError("rename", "cannot rename active domain", guest=name)
        if new_name in self.domains:
            raise HypervisorError("rename", f"domain {new_name} already exists", guest=name)
        root = parse(dom.config)
        element = root.find("name")
        assert element is not None
        element.text = new_name
        dom.config = etree.tostring(root, encoding="unicode")
        self.domains[new_name] = self.domains.pop(name)

    def start(self, name: str) -> None:
        self._call("start", name)
        dom = self._domain(name, "start")
        if dom.running is None:
            root = parse(dom.config)
            root.set("id", str(self._next_id))
            self._next_id += 1
            dom.running = etree.tostring(root, encoding="unicode")

    def shutdown(self, name: str, timeout: float) -> bool:
        self._call("shutdown", name, timeout)
        dom = self._domain(name, "shut down")
        if name in self.ignores_shutdown and dom.active:
            return False
        dom.running = None
        return True

    def power_off(self, name: str) -> None:
        self._call("power_off", name)
        self._domain(name, "power off").running = None

    def set_autostart(self, name: str, enabled: bool) -> None:
        self._call("set_autostart", name, enabled)
        self._domain(name, "set autostart").autostart = enabled

    def set_metadata(self, name: str, xml: str, live: bool) -> None:
        """Replace vmctl's element of <metadata>, put in vmctl's namespace as virDomainSetMetadata does."""
        self._call("set_metadata", name, xml, live)
        element = parse(xml)
        for node in element.iter():
            node.tag = f"{{{NAMESPACE}}}{node.tag}"

        def replace_record(root: etree._Element) -> None:
            metadata = root.find("metadata")
            if metadata is None:
                metadata = etree.SubElement(root, "metadata")
            for old in [e for e in metadata if e.tag.startswith(f"{{{NAMESPACE}}}")]:
                metadata.remove(old)
            metadata.append(element)

        self._edit(name, "write vmctl metadata", live, replace_record)

    def _edit(
        self,
        name: str,
        operation: str,
        live: bool,
        change: Callable[[etree._Element], None],
        needs_guest: bool = False,
    ) -> None:
        """Change the persistent definition and, if `live`, the running one (which must be running);
        `needs_guest`: a request the guest's OS carries out, if it has one."""
        dom = self._domain(name, operation)
        if live and dom.running is None:
            raise HypervisorError(operation, NOT_RUNNING, guest=name)
        dom.config = _changed(dom.config, change)
        if live and dom.running is not None and not (needs_guest and name in self.no_guest_os):
            dom.running = _changed(dom.running, change)

    # Snapshots

    def create_snapshot(self, name: str, snapshot: str) -> None:
        self._call("create_snapshot", name, snapshot)
        dom = self._domain(name, f"save snapshot {snapshot}")
        if any(s.info.name == snapshot for s in dom.snapshots):
            raise HypervisorError(f"save snapshot {snapshot}", f"domain snapshot {snapshot} already exists", guest=name)
        state = "running" if dom.active else "shutoff"
        created = len(dom.snapshots) + 1
        dom.snapshots = [replace(s, info=replace(s.info, current=False)) for s in dom.snapshots]
        dom.snapshots.append(FakeSnapshot(SnapshotInfo(name, snapshot, created, state, True), dom.config, dom.running))

    def revert_snapshot(self, name: str, snapshot: str) -> None:
        self._call("revert_snapshot", name, snapshot)
        dom = self._domain(name, f"revert to snapshot {snapshot}")
        saved = self._snapshot(dom, name, snapshot, "revert to snapshot")
        dom.config, dom.running = saved.config, saved.running
        dom.snapshots = [replace(s, info=replace(s.info, current=s is saved)) for s in dom.snapshots]

    def delete_snapshot(self, name: str, snapshot: str) -> None:
        self._call("delete_snapshot", name, snapshot)
        dom = self._domain(name, f"delete snapshot {snapshot}")
        dom.snapshots.remove(self._snapshot(dom, name, snapshot, "delete snapshot"))

    def snapshots(self, name: str) -> list[SnapshotInfo]:
        self._call("snapshots", name)
        return [s.info for s in self._domain(name, "list snapshots").snapshots]

    def _snapshot(self, dom: FakeDomain, name: str, snapshot: str, operation: str) -> FakeSnapshot:
        found = next((s for s in dom.snapshots if s.info.name == snapshot), None)
        if found is None:
            message = f"Domain snapshot not found: no domain snapshot with matching name '{snapshot}'"
            raise HypervisorError(f"{operation} {snapshot}", message, guest=name)
        return found

    # Devices and sizes of a domain

    def attach(self, name: str, xml: str, live: bool) -> None:
        self._call("attach", name, xml, live)
        self._edit(name, "attach device", live, lambda root: _devices(root).append(parse(xml)))

    def detach(self, name: str, xml: str, live: bool) -> None:
        self._call("detach", name, xml, live)
        wanted = parse(xml)

        def remove(root: etree._Element) -> None:
            devices = _devices(root)
            devices.remove(_matching(devices, wanted, name, "detach device"))

        self._edit(name, "detach device", live, remove, needs_guest=True)

    def update_device(self, name: str, xml: str, live: bool) -> None:
        self._call("update_device", name, xml, live)
        wanted = parse(xml)

        def update(root: etree._Element) -> None:
            devices = _devices(root)
            old = _matching(devices, wanted, name, "update device")
            devices.insert(list(devices).index(old), wanted)
            devices.remove(old)

        self._edit(name, "update device", live, update)

    def set_memory(self, name: str, size: int, live: bool) -> None:
        self._call("set_memory", name, size, live)

        def balloon(root: etree._Element) -> None:
            current = root.find("currentMemory")
            if current is None:
                current = etree.SubElement(root, "currentMemory")
            current.attrib.clear()
            current.set("unit", "KiB")
            current.text = str(size // 1024)

        self._edit(name, "set memory", live, balloon, needs_guest=True)

    def set_vcpus(self, name: str, count: int, live: bool) -> None:
        self._call("set_vcpus", name, count, live)

        def plug(root: etree._Element) -> None:
            vcpu = root.find("vcpu")
            if vcpu is None or count > int(vcpu.text or 1):
                raise HypervisorError("set vCPUs", "requested vcpus is greater than max allowable vcpus", guest=name)
            vcpu.set("current", str(count))

        self._edit(name, "set vCPUs", live, plug)

    def block_resize(self, name: str, target: str, size: int) -> None:
        self._call("block_resize", name, target, size)
        running = self._domain(name).running
        if running is None:
            raise HypervisorError(f"resize disk {target}", NOT_RUNNING, guest=name)
        for disk in parse(running).iterfind("devices/disk"):
            if disk.find(f"target[@dev='{target}']") is not None:
                self._volume_at(disk.find("source"), name).capacity = size
                return
        raise HypervisorError(f"resize disk {target}", f"disk '{target}' was not found in the domain", guest=name)

    def _volume_at(self, source: etree._Element | None, guest: str) -> FakeVolume:
        """The volume a disk's <source> names, by pool and volume or by file path."""
        if source is not None:
            for (pool, name), volume in self.volumes.items():
                by_name = (source.get("pool"), source.get("volume")) == (pool, name)
                if by_name or source.get("file") == self._volume_path(pool, name):
                    return volume
        raise HypervisorError("resize disk", "its volume is not in any pool", guest=guest)

    # Guest agent

    @overload
    def agent(
        self,
        name: str,
        command: Literal["guest-exec"],
        arguments: Mapping[str, JsonArg] | None = None,
        timeout: int = 5,
    ) -> GuestExecStarted: ...
    @overload
    def agent(
        self,
        name: str,
        command: Literal["guest-exec-status"],
        arguments: Mapping[str, JsonArg] | None = None,
        timeout: int = 5,
    ) -> GuestExecStatus: ...
    @overload
    def agent(
        self,
        name: str,
        command: Literal["guest-get-vcpus"],
        arguments: Mapping[str, JsonArg] | None = None,
        timeout: int = 5,
    ) -> list[GuestVcpu]: ...
    @overload
    def agent(
        self, name: str, command: str, arguments: Mapping[str, JsonArg] | None = None, timeout: int = 5
    ) -> AgentReply: ...
    def agent(
        self, name: str, command: str, arguments: Mapping[str, JsonArg] | None = None, timeout: int = 5
    ) -> AgentReply:
        """The reply set in `agent_replies`; a guest with none set has no agent answering."""
        self._call("agent", name, command, arguments, timeout)
        if not self._domain(name, f"guest agent {command}").active:
            raise HypervisorError(f"guest agent {command}", NOT_RUNNING, guest=name)
        if (name, command) not in self.agent_replies:
            raise HypervisorError(f"guest agent {command}", "Guest agent is not responding", guest=name)
        return self.agent_replies[(name, command)]

    def addresses(self, name: str) -> Addresses:
        self._call("addresses", name)
        self._domain(name)
        return self.guest_addresses.get(name, {})

    def open_console(self, name: str) -> ConsoleStream:
        self._call("open_console", name)
        if not self._domain(name, "open the serial console").active:
            raise HypervisorError("open the serial console", NOT_RUNNING, guest=name)
        return FakeConsole(self.console_output.get(name, b""))

    # Storage pools and volumes

    def _pool(self, name: str, operation: str) -> FakePool:
        if name not in self.pools:
            raise HypervisorError(operation, f"no storage pool with matching name '{name}'")
        return self.pools[name]

    def pool_exists(self, name: str) -> bool:
        self._call("pool_exists", name)
        return name in self.pools

    def create_pool(self, name: str, path: str, owner: Owner) -> None:
        self._call("create_pool", name, path, owner)
        if name in self.pools:
            raise HypervisorError(f"create pool {name}", f"pool '{name}' already exists")
        self.pools[name] = FakePool(pool_xml(name, path, owner))

    def start_pool(self, name: str) -> None:
        self._call("start_pool", name)
        self._pool(name, f"start pool {name}").active = True

    def delete_pool(self, name: str) -> None:
        self._call("delete_pool", name)
        pool = self._pool(name, f"delete pool {name}")
        if pool.active and any(key[0] == name for key in self.volumes):
            return
        del self.pools[name]

    def volume_exists(self, pool: str, name: str) -> bool:
        self._call("volume_exists", pool, name)
        self._pool(pool, f"find pool {pool}")
        return (pool, name) in self.volumes

    def _volume_path(self, pool: str, name: str) -> str:
        if (pool, name) not in self.volumes:
            raise HypervisorError(f"find volume {name}", f"no volume {name} in pool {pool}")
        return f"{self._pool(pool, f'find pool {pool}').path}/{name}"

    def _add_volume(self, pool: str, name: str, volume: FakeVolume) -> None:
        operation = f"create volume {name}"
        if not self._pool(pool, operation).active:
            raise HypervisorError(operation, f"storage pool '{pool}' is not active")
        if (pool, name) in self.volumes:
            raise HypervisorError(operation, f"storage volume name '{name}' already in use.")
        self.volumes[(pool, name)] = volume

    def create_volume(
        self,
        pool: str,
        name: str,
        capacity: int,
        fmt: str = "qcow2",
        backing: VolumeRef | None = None,
        backing_format: str = "qcow2",
    ) -> None:
        self._call("create_volume", pool, name, capacity, fmt, backing, backing_format)
        backing_path = self._volume_path(backing.pool, backing.name) if backing else None
        self._add_volume(pool, name, FakeVolume(capacity, fmt, backing_path))

    def delete_volume(self, pool: str, name: str) -> None:
        self._call("delete_volume", pool, name)
        self.volumes.pop((pool, name), None)

    def resize_volume(self, pool: str, name: str, capacity: int) -> None:
        self._call("resize_volume", pool, name, capacity)
        volume = self.volumes.get((pool, name))
        if volume is None:
            raise HypervisorError(f"resize volume {name}", f"no volume {name} in pool {pool}")
        if capacity < volume.capacity:
            raise HypervisorError(f"resize volume {name}", "can't shrink capacity below existing capacity")
        volume.capacity = capacity

    def volume_users(self, pool: str, name: str) -> list[str]:
        self._call("volume_users", pool, name)
        path = self._volume_path(pool, name)
        listed = {p for p, fake in self.pools.items() if fake.active}
        users = [f"volume {v}" for (p, v), vol in self.volumes.items() if p in listed and vol.backing == path]
        return users + [f"domain {d}" for d, dom in self.domains.items() if domain_uses(dom.config, pool, name, path)]

    def write_volume(self, pool: str, name: str, data: bytes, fmt: str = "raw") -> None:
        self._call("write_volume", pool, name, data, fmt)
        self._add_volume(pool, name, FakeVolume(len(data), fmt, data=data))

    def upload_file(self, pool: str, name: str, source: Path, fmt: str, progress: UploadProgress | None = None) -> None:
        """The file's bytes as a new volume, of the size libvirt would see in it."""
        self._call("upload_file", pool, name, source, fmt, progress)
        data = source.read_bytes()
        if progress:
            progress(len(data), len(data))
        try:
            capacity = virtual_size(source, fmt)
        except VmctlError:
            capacity = len(data)  # a format vmctl does not read: libvirt would see the file's size
        self._add_volume(pool, name, FakeVolume(capacity, fmt, data=data))

    # Networks

    def create_network(self, spec: NetworkSpec, owner: Owner) -> None:
        self._call("create_network", spec, owner)
        if spec.libvirt_name in self.networks:
            raise HypervisorError(f"create network {spec.libvirt_name}", "network already exists")
        self.networks[spec.libvirt_name] = FakeNetwork(network_xml(spec, owner))

    def start_network(self, name: str) -> None:
        self._call("start_network", name)
        if name not in self.networks:
            raise HypervisorError(f"start network {name}", f"no network with matching name '{name}'")
        self.networks[name].active = self.networks[name].autostart = True

    def delete_network(self, name: str) -> None:
        self._call("delete_network", name)
        self.networks.pop(name, None)

    def _network(self, name: str, operation: str) -> FakeNetwork:
        if name not in self.networks:
            raise HypervisorError(operation, f"Network not found: no network with matching name '{name}'")
        return self.networks[name]

    def set_network_owner(self, name: str, owner: Owner) -> None:
        self._call("set_network_owner", name, owner)
        net = self._network(name, f"write vmctl metadata of network {name}")
        net.xml = with_owner(net.xml, owner)

    def add_network_host(self, name: str, host: HostEntry) -> None:
        self._call("add_network_host", name, host)
        self._add_host(name, host)

    def remove_network_host(self, name: str, host: HostEntry) -> None:
        self._call("remove_network_host", name, host)
        self._remove_host(name, host)

    def change_network_host(self, name: str, before: HostEntry, after: HostEntry) -> None:
        self._call("change_network_host", name, before, after)
        self._remove_host(name, before)
        self._add_host(name, after)

    def _add_host(self, name: str, host: HostEntry) -> None:
        """As virNetworkUpdate adds a DHCP host and a DNS host."""
        net = self._network(name, f"reserve {host.ip} on network {name}")

        def add(root: etree._Element) -> None:
            dhcp = root.find("ip/dhcp")
            if dhcp is None:
                raise HypervisorError(f"reserve {host.ip} on network {name}", "the network serves no DHCP")
            dhcp.append(dhcp_host_element(host))
            dns = root.find("dns")
            if dns is None:
                dns = etree.SubElement(root, "dns")
            dns.append(dns_host_element(host))

        net.xml = _changed(net.xml, add)

    def _remove_host(self, name: str, host: HostEntry) -> None:
        net = self._network(name, f"release {host.ip} on network {name}")

        def remove(root: etree._Element) -> None:
            for parent, entry in [(d, h) for d in root.iter("dhcp") for h in d.findall("host")]:
                if entry.get("mac", "").lower() == host.mac:
                    parent.remove(entry)
            for parent, entry in [(d, h) for d in root.iter("dns") for h in d.findall("host")]:
                if entry.get("ip") == host.ip:
                    parent.remove(entry)

        net.xml = _changed(net.xml, remove)


def _changed(xml: str, change: Callable[[etree._Element], None]) -> str:
    root = parse(xml)
    change(root)
    return etree.tostring(root, encoding="unicode")


def _devices(root: etree._Element) -> etree._Element:
    devices = root.find("devices")
    return devices if devices is not None else etree.SubElement(root, "devices")


_IDENTITIES = (("alias", "name"), ("mac", "address"), ("target", "dev"))


def _identities(device: etree._Element) -> set[tuple[str, str]]:
    """What libvirt may recognise a device by: its alias, its MAC address, its target."""
    found = set()
    for tag, attribute in _IDENTITIES:
        element = device.find(tag)
        if element is not None and element.get(attribute):
            found.add((tag, element.get(attribute, "")))
    return found


def _matching(devices: etree._Element, wanted: etree._Element, guest: str, operation: str) -> etree._Element:
    for device in devices:
        if device.tag == wanted.tag and _identities(device) & _identities(wanted):
            return device
    raise HypervisorError(operation, "matching device not found", guest=guest)


if TYPE_CHECKING:
    _: Hypervisor = FakeHypervisor()  # mypy: the fake has every operation of the interface, typed alike
