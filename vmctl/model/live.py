"""What the hypervisor has: domains, volumes, networks and pools as libvirt reports them.

A live guest has the same field names as a wanted one (vmctl.model.wanted.GuestSpec), so the planner
compares them field by field, but it is its own type: a field means what libvirt holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from vmctl.model.ownership import GuestRecord, Owner, VolumeRef
from vmctl.model.wanted import (
    Accel,
    BootSpec,
    CloudInitSpec,
    DevicesSpec,
    DiskBus,
    DiskSpec,
    Firmware,
    NetworkSpec,
    NicSpec,
    PowerState,
    SeedSpec,
    ShareSpec,
)


@dataclass(frozen=True, slots=True)
class HostFacts:
    """What the planner needs to know about the hypervisor host."""

    kvm_usable: bool = False
    log_dir: str | None = "/var/log/libvirt/qemu"
    default_pool_path: str = "/var/lib/libvirt/images"  # where the spec's unnamed default pool goes
    local: bool = True  # the hypervisor's files are on this machine (read serial logs here)


@dataclass(frozen=True, slots=True)
class DiskState:
    """A disk as the domain has it. `size` is its volume's capacity; None: the volume is missing."""

    name: str
    bus: DiskBus
    pool: str
    volume: str
    size: int | None
    target: str  # the device name libvirt gave it (vda, sdb)
    image: str | None = None  # from vmctl's record: the image it was made on
    image_sha256: str | None = None
    format: str = "qcow2"  # the driver's format: qcow2 or raw
    path: str = ""  # the file, when the domain names one (a file in a pool's directory is that pool's volume too)
    cdrom: bool = False  # a CD-ROM drive; with no volume or path, an empty one

    def uses(self, disk: DiskSpec) -> bool:
        """Whether this is the volume or file an existing-volume disk of the spec names (or, for an
        empty CD-ROM drive, whether this is one too)."""
        if disk.source == "empty":
            return self.cdrom and not (self.volume or self.path)
        if disk.source == "path":
            return disk.volume in (self.path, self.volume)
        return (self.pool, self.volume) == (disk.pool, disk.volume)


@dataclass(frozen=True, slots=True)
class GuestState:
    """One domain's definition (persistent or running) as libvirt holds it, in GuestSpec's field names."""

    name: str
    guest: str
    hostname: str
    accel: Accel
    machine: str
    firmware: Firmware
    cpu_model: str | None
    cpus: int
    max_cpus: int
    memory: int
    max_memory: int
    state: PowerState
    autostart: bool
    pool: str
    boot: BootSpec | None
    disks: tuple[DiskState, ...]
    nics: tuple[NicSpec, ...]
    shares: tuple[ShareSpec, ...]
    devices: DevicesSpec
    cloud_init: CloudInitSpec | None
    seed: SeedSpec | None
    prevent_destroy: bool
    scsi_controller: bool = False  # a SCSI disk can be hot-plugged without adding one
    unmodelled: tuple[str, ...] = ()  # what the domain has that vmctl cannot express: a redefinition drops it

    def disk(self, name: str) -> DiskState | None:
        return next((d for d in self.disks if d.name == name), None)

    def nic(self, name: str) -> NicSpec | None:
        return next((n for n in self.nics if n.name == name), None)

    @property
    def targets(self) -> dict[str, str]:
        """Disk name -> target device."""
        return {d.name: d.target for d in self.disks}


@dataclass(frozen=True, slots=True)
class LiveGuest:
    """A domain this project and workspace own: its persistent config and, if running, its live state."""

    name: str
    uuid: str
    record: GuestRecord
    config: GuestState
    running: GuestState | None = None
    config_xml: str = field(default="", compare=False, repr=False)  # as read; redefining keeps its addresses

    @property
    def current(self) -> GuestState:
        """What the guest is now: the live definition when running, else the config."""
        return self.running or self.config


@dataclass(frozen=True, slots=True)
class ForeignGuest:
    """A domain nobody owns, read in full because the spec adopts it. Its states carry no record:
    their guest, hostname and pool are empty, and unaliased devices are named <vda>, <52:54:...>."""

    name: str
    uuid: str
    config: GuestState
    running: GuestState | None = None
    config_xml: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class VolumeInfo:
    """A volume as the pool reports it."""

    pool: str
    name: str
    capacity: int | None  # bytes; None when not read (vmctl only needed to know the volume exists)


@dataclass(frozen=True, slots=True)
class LiveNetwork:
    """A libvirt network; `owner` is None for networks vmctl did not make."""

    spec: NetworkSpec
    owner: Owner | None
    active: bool
    autostart: bool


@dataclass(frozen=True, slots=True)
class LivePool:
    """A storage pool; `owner` is None for pools vmctl did not make."""

    name: str
    path: str
    active: bool
    owner: Owner | None = None
    kind: str = "dir"  # libvirt's pool type: dir, logical, netfs...


@dataclass(frozen=True, slots=True)
class LiveState:
    """What the hypervisor has, as far as this project and workspace are concerned."""

    guests: tuple[LiveGuest, ...] = ()
    other_domains: Mapping[str, str] = field(default_factory=dict)  # name -> who owns it
    networks: tuple[LiveNetwork, ...] = ()
    pools: tuple[LivePool, ...] = ()
    volumes: Mapping[tuple[str, str], VolumeInfo] = field(default_factory=dict)  # (pool, name)
    adoptable: Mapping[str, ForeignGuest] = field(default_factory=dict)  # unowned domains the spec adopts
    # This project's guests whose record puts them on another host of the spec: name -> that host.
    # They are in other_domains too: left alone here, never adopted a second time.
    elsewhere: Mapping[str, str] = field(default_factory=dict)
    _by_name: dict[str, LiveGuest] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # The planner looks guests up by name once per desired guest: a thousand of each is common.
        object.__setattr__(self, "_by_name", {g.name: g for g in self.guests})

    def guest(self, name: str) -> LiveGuest | None:
        return self._by_name.get(name)

    def network(self, name: str) -> LiveNetwork | None:
        return next((n for n in self.networks if n.spec.libvirt_name == name), None)

    def pool(self, name: str) -> LivePool | None:
        return next((p for p in self.pools if p.name == name), None)


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """One of a guest's snapshots, as libvirt lists it."""

    guest: str
    name: str
    created: int  # seconds since the epoch
    state: str  # the guest's state it holds: "running" (memory included) or "shutoff"
    current: bool = False  # the one the guest was last saved as, or reverted to

    @property
    def memory(self) -> bool:
        return self.state == "running"


@dataclass(frozen=True, slots=True)
class OwnedGuest:
    """A domain this project and workspace own, as much as removing it needs: its record and power."""

    name: str
    record: GuestRecord
    active: bool
    boot_volumes: tuple[VolumeRef, ...] = ()  # its kernel and initrd; read only when images go too


@dataclass(frozen=True, slots=True)
class OwnedState:
    """What destroy may remove, read from ownership records alone (no domain definition is parsed)."""

    guests: tuple[OwnedGuest, ...] = ()
    networks: tuple[LiveNetwork, ...] = ()
    pools: tuple[LivePool, ...] = ()
    volumes: Mapping[tuple[str, str], VolumeInfo] = field(default_factory=dict)  # (pool, name)
