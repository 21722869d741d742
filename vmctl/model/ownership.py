"""vmctl's ownership record: what it keeps inside the libvirt objects it made (in their <metadata>)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from vmctl.model.wanted import CloudInitSpec


@dataclass(frozen=True, slots=True)
class Owner:
    """vmctl's ownership record, kept in a domain's (or network's) <metadata>."""

    project: str
    workspace: str | None = None
    created: str = ""
    digest: str = ""
    expires: str = ""  # UTC, "%Y-%m-%dT%H:%M:%SZ"; empty: never (gc leaves it alone)
    # The spec's name of the host it belongs on; empty for a spec without hosts (and in records
    # written before vmctl recorded hosts).
    host: str = ""

    def same_scope(self, other: Owner | None) -> bool:
        """The same project and workspace: when and from which spec each was made do not matter."""
        return other is not None and (self.project, self.workspace) == (other.project, other.workspace)

    def other_host(self, other: Owner) -> bool:
        """Both name a host, and not the same one: what `other` owns belongs on another host than this."""
        return bool(self.host and other.host and self.host != other.host)

    def claims(self, other: Owner | None) -> bool:
        """An object recorded for `other` is this owner's to change: same scope, and not another host's."""
        return other is not None and self.same_scope(other) and not self.other_host(other)

    def expired(self, now: str) -> bool:
        """Its expiry has passed at `now` (same format: such timestamps compare as text)."""
        return bool(self.expires) and self.expires <= now

    @property
    def scope(self) -> Owner:
        """Who it is, without when: the project and workspace."""
        return Owner(self.project, self.workspace)


@dataclass(frozen=True, slots=True)
class VolumeRef:
    """A volume in a pool, by name."""

    pool: str
    name: str


@dataclass(frozen=True, slots=True)
class DiskRecord:
    """Which image (name and digest) a disk was made from."""

    name: str
    image: str | None = None
    image_sha256: str | None = None
    image_volume: VolumeRef | None = None


@dataclass(frozen=True, slots=True)
class DeviceName:
    """The spec's name of a device an adopted domain had without vmctl's alias: a disk by its target
    device, a NIC by its MAC. Redefining the domain gives the device its alias; the name stays."""

    kind: Literal["disk", "nic"]
    name: str
    key: str


@dataclass(frozen=True, slots=True)
class GuestRecord:
    """Everything vmctl keeps about a domain it manages."""

    owner: Owner
    guest: str
    hostname: str
    pool: str = "default"
    prevent_destroy: bool = False
    disks: tuple[DiskRecord, ...] = ()
    claims: tuple[VolumeRef, ...] = ()
    cloud_init: CloudInitSpec | None = None
    seed_digest: str | None = None
    creating: bool = False  # set until every volume exists: an interrupted create is redone
    devices: tuple[DeviceName, ...] = ()  # names of an adopted domain's devices that have no alias

    def device_name(self, kind: str, key: str) -> str | None:
        return next((d.name for d in self.devices if (d.kind, d.key) == (kind, key)), None)

    def disk(self, name: str) -> DiskRecord | None:
        return next((d for d in self.disks if d.name == name), None)


@dataclass(frozen=True, slots=True)
class LockHolder:
    """Who holds a project's apply lock on a hypervisor: the machine, its process, and since when."""

    machine: str
    pid: int
    since: str  # ISO 8601, UTC
    user: str = ""

    def __str__(self) -> str:
        who = f"{self.user}@{self.machine}" if self.user else self.machine
        return f"pid {self.pid} on {who}, since {self.since}"
