"""`LibvirtHypervisor`: one object made of parts that share a `Connection` (the virConnect and the
objects found through it): `StateReader` reads, `DomainOps`, `SnapshotOps`, `StorageOps` and
`NetworkOps` act.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal, overload

import libvirt

from vmctl.hypervisor.interface import (
    Addresses,
    AgentReply,
    ConsoleStream,
    GuestExecStarted,
    GuestExecStatus,
    GuestVcpu,
    Hypervisor,
    JsonArg,
    UploadProgress,
)
from vmctl.hypervisor.libvirt.connection import Connection
from vmctl.hypervisor.libvirt.console import ConsoleSession
from vmctl.hypervisor.libvirt.domains import DomainOps
from vmctl.hypervisor.libvirt.locking import LockOps
from vmctl.hypervisor.libvirt.networks import NetworkOps
from vmctl.hypervisor.libvirt.reading import StateReader
from vmctl.hypervisor.libvirt.snapshots import SnapshotOps
from vmctl.hypervisor.libvirt.storage import StorageOps
from vmctl.libvirtxml.readback import DomainView
from vmctl.model import (
    HostEntry,
    HostFacts,
    LiveGuest,
    LiveState,
    LockHolder,
    NetworkSpec,
    OwnedState,
    Owner,
    SnapshotInfo,
    VolumeRef,
)


class LibvirtHypervisor:
    """The hypervisor interface on libvirt: every operation is one of its parts'."""

    def __init__(self, conn: libvirt.virConnect, uri: str) -> None:
        connection = Connection(conn, uri)
        self.conn = conn  # the raw connection, for tests and tools that reach past the interface
        self.uri = uri
        self._connection = connection
        self._reader = StateReader(connection)
        self._domains = DomainOps(connection)
        self._storage = StorageOps(connection)
        self._networks = NetworkOps(connection)
        self._snapshots = SnapshotOps(connection)
        self._locks = LockOps(connection)

    # Connection and host facts

    def close(self) -> None:
        # The connection first: libvirtd holds a close back while it destroys a lock domain (0.2 s
        # on libvirt 9.0), and giving the locks back destroys theirs.
        self._connection.close()
        self._locks.close()

    def host_facts(self) -> HostFacts:
        return self._reader.host_facts()

    def log_dir(self) -> str | None:
        return self._reader.log_dir()

    # The apply lock

    def try_lock(self, owner: Owner, holder: LockHolder) -> LockHolder | None:
        return self._locks.try_lock(owner, holder)

    def lock_ready(self, owner: Owner) -> None:
        self._locks.ready(owner)

    def unlock(self, owner: Owner) -> None:
        self._locks.unlock(owner)

    # Reading state

    def read_state(
        self, owner: Owner, disks_of_interest: Iterable[VolumeRef] = (), adoptable: Iterable[str] = ()
    ) -> LiveState:
        return self._reader.read_state(owner, disks_of_interest, adoptable)

    def read_owned(self, owner: Owner | None, boot_volumes: bool = False) -> OwnedState:
        return self._reader.read_owned(owner, boot_volumes)

    def read_live_guest(self, name: str, owner: Owner, pool_paths: Mapping[str, str]) -> LiveGuest | None:
        return self._reader.read_live_guest(name, owner, pool_paths)

    def read_guest(self, name: str, pool_paths: Mapping[str, str] | None = None) -> DomainView:
        return self._domains.read_guest(name, pool_paths)

    def domain_xml(self, name: str, inactive: bool = False) -> str:
        return self._domains.domain_xml(name, inactive)

    # Domains

    def domain_names(self) -> list[str]:
        return sorted(d.name() for d in self._connection.list_domains())

    def domain_exists(self, name: str) -> bool:
        return self._domains.domain_exists(name)

    def is_active(self, name: str) -> bool:
        return self._domains.is_active(name)

    def define(self, xml: str, name: str) -> None:
        self._domains.define(xml, name)

    def undefine(self, name: str) -> None:
        self._domains.undefine(name)

    def rename(self, name: str, new_name: str) -> None:
        self._domains.rename(name, new_name)

    def start(self, name: str) -> None:
        self._domains.start(name)

    def shutdown(self, name: str, timeout: float) -> bool:
        return self._domains.shutdown(name, timeout)

    def power_off(self, name: str) -> None:
        self._domains.power_off(name)

    def set_autostart(self, name: str, enabled: bool) -> None:
        self._domains.set_autostart(name, enabled)

    def set_metadata(self, name: str, xml: str, live: bool) -> None:
        self._domains.set_metadata(name, xml, live)

    # Snapshots

    def create_snapshot(self, name: str, snapshot: str) -> None:
        self._snapshots.create_snapshot(name, snapshot)

    def revert_snapshot(self, name: str, snapshot: str) -> None:
        self._snapshots.revert_snapshot(name, snapshot)

    def delete_snapshot(self, name: str, snapshot: str) -> None:
        self._snapshots.delete_snapshot(name, snapshot)

    def snapshots(self, name: str) -> list[SnapshotInfo]:
        return self._snapshots.snapshots(name)

    # Devices and sizes of a domain

    def attach(self, name: str, xml: str, live: bool) -> None:
        self._domains.attach(name, xml, live)

    def detach(self, name: str, xml: str, live: bool) -> None:
        self._domains.detach(name, xml, live)

    def update_device(self, name: str, xml: str, live: bool) -> None:
        self._domains.update_device(name, xml, live)

    def set_memory(self, name: str, size: int, live: bool) -> None:
        self._domains.set_memory(name, size, live)

    def set_vcpus(self, name: str, count: int, live: bool) -> None:
        self._domains.set_vcpus(name, count, live)

    def block_resize(self, name: str, target: str, size: int) -> None:
        self._domains.block_resize(name, target, size)

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
        return self._domains.agent(name, command, arguments, timeout)

    def addresses(self, name: str) -> Addresses:
        return self._domains.addresses(name)

    def open_console(self, name: str) -> ConsoleStream:
        return ConsoleSession(self.conn, self._connection.domain(name), name)

    # Storage pools and volumes

    def pool_exists(self, name: str) -> bool:
        return self._storage.pool_exists(name)

    def create_pool(self, name: str, path: str, owner: Owner) -> None:
        self._storage.create_pool(name, path, owner)

    def start_pool(self, name: str) -> None:
        self._storage.start_pool(name)

    def delete_pool(self, name: str) -> None:
        self._storage.delete_pool(name)

    def volume_exists(self, pool: str, name: str) -> bool:
        return self._storage.volume_exists(pool, name)

    def create_volume(
        self,
        pool: str,
        name: str,
        capacity: int,
        fmt: str = "qcow2",
        backing: VolumeRef | None = None,
        backing_format: str = "qcow2",
    ) -> None:
        self._storage.create_volume(pool, name, capacity, fmt, backing, backing_format)

    def delete_volume(self, pool: str, name: str) -> None:
        self._storage.delete_volume(pool, name)

    def resize_volume(self, pool: str, name: str, capacity: int) -> None:
        self._storage.resize_volume(pool, name, capacity)

    def volume_users(self, pool: str, name: str) -> list[str]:
        return self._storage.volume_users(pool, name)

    def write_volume(self, pool: str, name: str, data: bytes, fmt: str = "raw") -> None:
        self._storage.write_volume(pool, name, data, fmt)

    def upload_file(self, pool: str, name: str, source: Path, fmt: str, progress: UploadProgress | None = None) -> None:
        self._storage.upload_file(pool, name, source, fmt, progress)

    # Networks

    def create_network(self, spec: NetworkSpec, owner: Owner) -> None:
        self._networks.create_network(spec, owner)

    def start_network(self, name: str) -> None:
        self._networks.start_network(name)

    def delete_network(self, name: str) -> None:
        self._networks.delete_network(name)

    def set_network_owner(self, name: str, owner: Owner) -> None:
        self._networks.set_network_owner(name, owner)

    def add_network_host(self, name: str, host: HostEntry) -> None:
        self._networks.add_network_host(name, host)

    def remove_network_host(self, name: str, host: HostEntry) -> None:
        self._networks.remove_network_host(name, host)

    def change_network_host(self, name: str, before: HostEntry, after: HostEntry) -> None:
        self._networks.change_network_host(name, before, after)


if TYPE_CHECKING:

    def _is_a_hypervisor(implementation: LibvirtHypervisor) -> Hypervisor:
        return implementation  # mypy: every operation of the interface is here, typed alike
