"""What the spec wants: the guests, disks, networks, pools and images it asks for, and the desired
state they resolve to. Sizes are bytes; names are the hypervisor's names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, Literal

from vmctl.errors import Location

Accel = Literal["auto", "kvm", "tcg"]
Firmware = Literal["bios", "uefi"]
PowerState = Literal["running", "stopped"]
DiskBus = Literal["virtio", "scsi", "sata", "ide"]
CDROM_ONLY_BUSES: tuple[DiskBus, ...] = ("sata", "ide")  # a disk is on virtio or scsi; a CD-ROM drive is not on virtio
NicKind = Literal["network", "bridge", "user"]
NetworkMode = Literal["nat", "isolated", "bridge", "user", "existing"]
# Where a disk's data lives: a volume vmctl makes (and deletes), or one that exists already,
# by pool and name or by file path, which vmctl never deletes; or nowhere: an empty CD-ROM drive.
DiskSource = Literal["owned", "volume", "path", "empty"]


@dataclass(frozen=True, slots=True)
class PoolSpec:
    """A directory storage pool. An empty `path` is the host's default place (the spec named none)."""

    name: str
    path: str


@dataclass(frozen=True, slots=True)
class HostSpec:
    """A hypervisor the spec spreads guests over, by the name the spec gives it."""

    name: str
    uri: str


@dataclass(frozen=True, slots=True)
class ImageSpec:
    """A base image; uploaded once into `pool` as a content-addressed volume."""

    name: str
    format: Literal["qcow2", "raw"]
    pool: str
    path: Path | None = None
    url: str | None = None
    sha256: str | None = None
    origin: Location | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class ImageFacts:
    """What vmctl measured of an image file: its digest and sizes."""

    sha256: str
    virtual_size: int
    file_size: int


@dataclass(frozen=True, slots=True)
class HostEntry:
    """A fixed address on a vmctl network: a DHCP reservation by MAC, and DNS names for it."""

    mac: str
    ip: str
    names: tuple[str, ...]  # the guest's host name, then HOSTNAME.PROJECT


@dataclass(frozen=True, slots=True)
class NetworkSpec:
    """A network. Only nat/isolated ones are libvirt objects that vmctl manages."""

    name: str
    libvirt_name: str
    mode: NetworkMode
    ipv4: str | None = None
    dhcp: bool = False
    bridge: str | None = None
    hosts: tuple[HostEntry, ...] = ()  # fixed addresses, in MAC order

    def host(self, mac: str) -> HostEntry | None:
        return next((h for h in self.hosts if h.mac == mac), None)

    @property
    def managed(self) -> bool:
        return self.mode in ("nat", "isolated")


@dataclass(frozen=True, slots=True)
class FileRef:
    """A local file (kernel, initrd) that vmctl uploads as a content-addressed volume."""

    path: PurePath = field(compare=False)  # local file (spec) or path on the host (live)
    volume: str = ""  # content-addressed volume name, filled once the file's digest is known


@dataclass(frozen=True, slots=True)
class BootSpec:
    """Direct kernel boot."""

    kernel: FileRef
    initrd: FileRef | None
    cmdline: str


@dataclass(frozen=True, slots=True)
class DiskSpec:
    """A disk, identified by its name. `size` None means: the image's own size (or, for a disk that
    exists already, whatever size it has). A `path` disk has no pool: `volume` is its file's path.
    A `cdrom` is a read-only CD-ROM drive with an existing volume or file in it, or empty."""

    name: str
    bus: DiskBus
    pool: str
    volume: str
    size: int | None = None
    image: str | None = None
    image_sha256: str | None = None
    source: DiskSource = "owned"
    format: Literal["qcow2", "raw"] = "qcow2"
    cdrom: bool = False

    @property
    def owned(self) -> bool:
        """vmctl made the volume and deletes it with the disk; else it only uses it."""
        return self.source == "owned"


@dataclass(frozen=True, slots=True)
class NicSpec:
    """A NIC, identified by its name; `source` is the libvirt network or bridge name."""

    name: str
    kind: NicKind
    source: str
    mac: str
    model: str = "virtio"
    derived_mac: bool = field(default=False, compare=False)  # vmctl made the MAC up: a renamed guest keeps its own
    # A fixed address on a vmctl network: held by the network (its DHCP and DNS), not the domain.
    ipv4: str | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class ShareSpec:
    """A virtiofs share; the mount tag is its name."""

    name: str
    source: str
    readonly: bool = False


@dataclass(frozen=True, slots=True)
class DevicesSpec:
    """Paravirtualized device toggles."""

    rng: bool = True
    balloon: bool = True
    agent: bool = True
    vsock: bool = False
    console: Literal["serial", "none"] = "serial"


@dataclass(frozen=True, slots=True)
class CloudInitSpec:
    """cloud-init NoCloud content. `user_data` is a mapping (#cloud-config) or text."""

    user_data: Any = None
    meta_data: Mapping[str, Any] = field(default_factory=dict)
    network_config: Mapping[str, Any] | None = None
    sensitive: tuple[str, ...] = ()
    # Values of sensitive variables: masked wherever they appear in the content vmctl keeps or shows.
    secrets: tuple[str, ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class SeedSpec:
    """The seed ISO made from a CloudInitSpec: `digest` identifies its content."""

    volume: str  # carries the digest: a new content is a new volume
    pool: str
    digest: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class WaitSpec:
    """What `apply --wait` waits for after starting a guest."""

    agent: bool = True
    cloud_init: bool = False
    timeout: float = 300.0
    enabled: bool = False  # the spec asked to wait (a `wait:` section); `apply --wait` asks for every guest


@dataclass(frozen=True, slots=True)
class GuestSpec:
    """One virtual machine as the spec wants it, or as libvirt has it."""

    name: str  # the libvirt domain name
    guest: str  # the spec's guest key (before count expansion)
    hostname: str
    accel: Accel = "auto"
    machine: str = "q35"
    firmware: Firmware = "bios"
    cpu_model: str | None = None
    cpus: int = 1
    max_cpus: int = 1
    memory: int = 1024**3
    max_memory: int = 1024**3
    state: PowerState = "running"
    autostart: bool = False
    pool: str = "default"
    boot: BootSpec | None = None
    disks: tuple[DiskSpec, ...] = ()
    nics: tuple[NicSpec, ...] = ()
    shares: tuple[ShareSpec, ...] = ()
    devices: DevicesSpec = DevicesSpec()
    cloud_init: CloudInitSpec | None = None
    seed: SeedSpec | None = None
    wait: WaitSpec = field(default=WaitSpec(), compare=False)
    prevent_destroy: bool = False
    # Spec fields whose live differences are shown as ignored and never planned.
    ignore_changes: tuple[str, ...] = field(default=(), compare=False)
    adopt: bool = False  # the domain may exist already, made by hand: vmctl takes it over as it is
    host: str | None = field(default=None, compare=False)  # the spec's host name; None: the one host
    origin: Location | None = field(default=None, compare=False)

    def disk(self, name: str) -> DiskSpec | None:
        return next((d for d in self.disks if d.name == name), None)

    def nic(self, name: str) -> NicSpec | None:
        return next((n for n in self.nics if n.name == name), None)


@dataclass(frozen=True, slots=True)
class Move:
    """A guest renamed in the spec (`moved:`): its domain `old` is renamed `new` (domain names)."""

    old: str
    new: str


@dataclass(frozen=True, slots=True)
class Spec:
    """Everything the spec files ask for, validated and merged."""

    project: str
    workspace: str | None
    connection: str | None
    pools: tuple[PoolSpec, ...]
    images: tuple[ImageSpec, ...]
    networks: tuple[NetworkSpec, ...]
    guests: tuple[GuestSpec, ...]
    files: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # worth saying once, not problems: e.g. that user-data was not checked
    moves: tuple[Move, ...] = ()
    secrets: tuple[str, ...] = field(default=(), repr=False)  # values of sensitive variables
    expires_after: float | None = None  # seconds: gc may remove what apply made once they have passed
    hosts: tuple[HostSpec, ...] = ()  # empty: the one host of `connection` (or --connect)

    def guest(self, name: str) -> GuestSpec | None:
        return next((g for g in self.guests if g.name == name), None)

    def image(self, name: str) -> ImageSpec | None:
        return next((i for i in self.images if i.name == name), None)

    def pool(self, name: str) -> PoolSpec | None:
        return next((p for p in self.pools if p.name == name), None)
