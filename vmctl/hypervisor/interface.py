"""The hypervisor interface: the operations plan and apply need, typed, with no libvirt in sight.

`Hypervisor` is what the rest of vmctl holds. Names are libvirt's names (domains, pools, volumes,
networks); sizes are bytes; XML is libvirt's domain and device XML, built by `vmctl.libvirtxml`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NotRequired, Protocol, TypeAlias, TypedDict, overload

if TYPE_CHECKING:
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

JsonValue: TypeAlias = dict[str, "JsonValue"] | list["JsonValue"] | str | int | float | bool | None
# What vmctl sends may be any JSON-shaped value: read-only views, so a list[str] is one too.
JsonArg: TypeAlias = Mapping[str, "JsonArg"] | Sequence["JsonArg"] | str | int | float | bool | None


class GuestExecStarted(TypedDict):
    """The guest agent's reply to guest-exec."""

    pid: int


GuestExecStatus = TypedDict(
    "GuestExecStatus",
    {"exited": bool, "exitcode": NotRequired[int], "out-data": NotRequired[str], "err-data": NotRequired[str]},
)
"""The guest agent's reply to guest-exec-status: output is base64, and only there once it exited."""

GuestVcpu = TypedDict("GuestVcpu", {"logical-id": int, "online": bool, "can-offline": NotRequired[bool]})
"""One vCPU in the guest agent's reply to guest-get-vcpus."""

AgentReply: TypeAlias = JsonValue | GuestExecStarted | GuestExecStatus | list[GuestVcpu]
"""Any guest agent command's reply: JSON, of a known shape for the commands whose reply vmctl reads."""

Addresses: TypeAlias = Mapping[str, Sequence[str]]
"""A guest's IP addresses by the MAC address (lower case) of the NIC that has them."""

UploadProgress: TypeAlias = Callable[[int, int], None]
"""Called as an upload goes: (bytes sent, bytes in all)."""


class ConsoleStream(Protocol):
    """A guest's serial console as a byte stream; raises HypervisorError."""

    def recv(self, size: int) -> bytes:
        """Up to `size` bytes the guest wrote, waiting for some; b"" once the console closed."""

    def send(self, data: bytes) -> None:
        """Type `data` into the console."""

    def close(self) -> None:
        """End the session; the guest keeps running."""


class Hypervisor(Protocol):
    """Reads live state in bulk and carries out single, named operations; raises HypervisorError."""

    # Connection and host facts

    def close(self) -> None:
        """Close the connection; the object is not used afterwards."""

    def host_facts(self) -> HostFacts:
        """What the planner must know of the host (KVM, where serial logs go)."""

    def log_dir(self) -> str | None:
        """The hypervisor host's directory of serial console logs; None when not known (remote session)."""

    # The apply lock, held on the hypervisor itself

    def try_lock(self, owner: Owner, holder: LockHolder) -> LockHolder | None:
        """Take `owner`'s apply lock on this hypervisor for `holder`: None once taken, else who holds it.

        Released by `unlock`, by `close`, and by the hypervisor when this process's connection ends."""

    def lock_ready(self, owner: Owner) -> None:
        """Wait until the lock `try_lock` took is wholly in place (it is taken at once, and may finish
        settling while vmctl reads); raise if it could not be. Called before anything is changed."""

    def unlock(self, owner: Owner) -> None:
        """Give the lock back; nothing if it is not held."""

    # Reading state

    def read_state(
        self, owner: Owner, disks_of_interest: Iterable[VolumeRef] = (), adoptable: Iterable[str] = ()
    ) -> LiveState:
        """Everything the planner needs, with the sizes of guests' disks and of `disks_of_interest`.

        Domains named in `adoptable` that nobody owns are read in full too, for the spec to adopt.
        """

    def read_owned(self, owner: Owner | None, boot_volumes: bool = False) -> OwnedState:
        """What `owner` owns, from ownership records alone; with each guest's kernel and initrd if asked.

        With no owner: every guest vmctl owns, whoever for (its pools are not told apart then).
        """

    def read_live_guest(self, name: str, owner: Owner, pool_paths: Mapping[str, str]) -> LiveGuest | None:
        """One of `owner`'s guests as it is now; None if it is gone or not theirs."""

    def read_guest(self, name: str, pool_paths: Mapping[str, str] | None = None) -> DomainView:
        """One domain as it is now (its live definition when running)."""

    def domain_xml(self, name: str, inactive: bool = False) -> str:
        """A domain's XML: the live definition when running, or its persistent one if `inactive`."""

    # Domains

    def domain_names(self) -> list[str]:
        """Every domain's name, sorted."""

    def domain_exists(self, name: str) -> bool:
        """Whether a domain of that name exists."""

    def is_active(self, name: str) -> bool:
        """Whether the domain is running."""

    def define(self, xml: str, name: str) -> None:
        """Define the domain, or replace its persistent definition."""

    def undefine(self, name: str) -> None:
        """Forget the domain with all its libvirt-side extras (NVRAM, snapshots); nothing if it is gone."""

    def rename(self, name: str, new_name: str) -> None:
        """Rename a stopped domain; it keeps its UUID, disks and MACs."""

    def start(self, name: str) -> None:
        """Start the domain unless it is running."""

    def shutdown(self, name: str, timeout: float) -> bool:
        """Ask the guest to power off; True if it is off within `timeout` seconds."""

    def power_off(self, name: str) -> None:
        """Pull the plug, if it is running."""

    def set_autostart(self, name: str, enabled: bool) -> None:
        """Whether the domain starts with the host."""

    def set_metadata(self, name: str, xml: str, live: bool) -> None:
        """Replace vmctl's metadata element, in the persistent definition and, if `live`, the running one."""

    # Snapshots (internal, in the guest's qcow2 disks; of a running guest with its memory)

    def create_snapshot(self, name: str, snapshot: str) -> None:
        """Save the guest as it is now under `snapshot`: its disks, and its memory if it runs."""

    def revert_snapshot(self, name: str, snapshot: str) -> None:
        """Put the guest back as it was saved: running (where it was) or stopped, as it was then."""

    def delete_snapshot(self, name: str, snapshot: str) -> None:
        """Forget a snapshot and free what it held in the disks."""

    def snapshots(self, name: str) -> list[SnapshotInfo]:
        """The guest's snapshots, oldest first."""

    # Devices and sizes of a domain: `live` changes the running guest as well as its definition

    def attach(self, name: str, xml: str, live: bool) -> None:
        """Add a device."""

    def detach(self, name: str, xml: str, live: bool) -> None:
        """Ask for a device to be removed (a running guest releases it in its own time)."""

    def update_device(self, name: str, xml: str, live: bool) -> None:
        """Change a device in place (a NIC's network, a CD-ROM's medium)."""

    def set_memory(self, name: str, size: int, live: bool) -> None:
        """Set the guest's current memory, in bytes (the balloon's target when running)."""

    def set_vcpus(self, name: str, count: int, live: bool) -> None:
        """Set the number of vCPUs plugged in."""

    def block_resize(self, name: str, target: str, size: int) -> None:
        """Grow a running guest's disk, by its target device (vda), to `size` bytes."""

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
        """One qemu-guest-agent command; its reply's 'return' value."""

    def addresses(self, name: str) -> Addresses:
        """The guest's IP addresses, from its agent, else from DHCP leases; empty if none is known."""

    def open_console(self, name: str) -> ConsoleStream:
        """The running guest's serial console, through libvirt (so for remote hosts too)."""

    # Storage pools and volumes

    def pool_exists(self, name: str) -> bool:
        """Whether a pool of that name exists (asked afresh)."""

    def create_pool(self, name: str, path: str, owner: Owner) -> None:
        """Define, build and start a directory pool marked as `owner`'s, started with the host."""

    def start_pool(self, name: str) -> None:
        """Start the pool unless it is running."""

    def delete_pool(self, name: str) -> None:
        """Stop and forget the pool, unless it still holds volumes; its directory goes only if empty."""

    def volume_exists(self, pool: str, name: str) -> bool:
        """Whether the pool has a volume of that name."""

    def create_volume(
        self,
        pool: str,
        name: str,
        capacity: int,
        fmt: str = "qcow2",
        backing: VolumeRef | None = None,
        backing_format: str = "qcow2",
    ) -> None:
        """A new volume of `capacity` bytes; an overlay of `backing` if given."""

    def delete_volume(self, pool: str, name: str) -> None:
        """Delete the volume; nothing if it is gone."""

    def resize_volume(self, pool: str, name: str, capacity: int) -> None:
        """Grow a volume to `capacity` bytes."""

    def volume_users(self, pool: str, name: str) -> list[str]:
        """Who still needs the volume ('volume X', 'domain Y'): overlays on it and domains using it."""

    def write_volume(self, pool: str, name: str, data: bytes, fmt: str = "raw") -> None:
        """A new small volume holding `data` (a seed ISO)."""

    def upload_file(self, pool: str, name: str, source: Path, fmt: str, progress: UploadProgress | None = None) -> None:
        """Upload a local file as a new volume, atomically: a partial upload never has the final name."""

    # Networks

    def create_network(self, spec: NetworkSpec, owner: Owner) -> None:
        """Define and start a network marked as `owner`'s, started with the host."""

    def start_network(self, name: str) -> None:
        """Start the network unless it is running, and have it start with the host."""

    def delete_network(self, name: str) -> None:
        """Stop and forget the network; nothing if it is gone."""

    def set_network_owner(self, name: str, owner: Owner) -> None:
        """Rewrite vmctl's record in the network's persistent definition (read back from there)."""

    def add_network_host(self, name: str, host: HostEntry) -> None:
        """Reserve an address for a MAC in the network's DHCP, with its DNS names; live, no restart."""

    def remove_network_host(self, name: str, host: HostEntry) -> None:
        """Release a reservation and its DNS names; live, no restart."""

    def change_network_host(self, name: str, before: HostEntry, after: HostEntry) -> None:
        """Move a MAC's reservation (and DNS names) to another address; live, no restart."""
