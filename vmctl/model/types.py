"""The data that flows between vmctl's stages.

The same dataclasses describe what the spec asks for and what libvirt has, so the planner can
compare them field by field. Sizes are bytes; names are the hypervisor's names.
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
DiskBus = Literal["virtio", "scsi"]
NicKind = Literal["network", "bridge", "user"]
NetworkMode = Literal["nat", "isolated", "bridge", "user"]


@dataclass(frozen=True, slots=True)
class PoolSpec:
    """A directory storage pool."""

    name: str
    path: str


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
class NetworkSpec:
    """A network. Only nat/isolated ones are libvirt objects that vmctl manages."""

    name: str
    libvirt_name: str
    mode: NetworkMode
    ipv4: str | None = None
    dhcp: bool = False
    bridge: str | None = None

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
    """A disk, identified by its name. `size` None means: the image's own size."""

    name: str
    bus: DiskBus
    pool: str
    volume: str
    size: int | None = None
    image: str | None = None
    image_sha256: str | None = None


@dataclass(frozen=True, slots=True)
class NicSpec:
    """A NIC, identified by its name; `source` is the libvirt network or bridge name."""

    name: str
    kind: NicKind
    source: str
    mac: str
    model: str = "virtio"


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
    origin: Location | None = field(default=None, compare=False)

    def disk(self, name: str) -> DiskSpec | None:
        return next((d for d in self.disks if d.name == name), None)

    def nic(self, name: str) -> NicSpec | None:
        return next((n for n in self.nics if n.name == name), None)


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

    def guest(self, name: str) -> GuestSpec | None:
        return next((g for g in self.guests if g.name == name), None)

    def image(self, name: str) -> ImageSpec | None:
        return next((i for i in self.images if i.name == name), None)

    def pool(self, name: str) -> PoolSpec | None:
        return next((p for p in self.pools if p.name == name), None)


@dataclass(frozen=True, slots=True)
class HostFacts:
    """What the planner needs to know about the hypervisor host."""

    kvm_usable: bool = False
    arch: str = "x86_64"
    log_dir: str | None = "/var/log/libvirt/qemu"


@dataclass(frozen=True, slots=True)
class Owner:
    """vmctl's ownership record, kept in a domain's (or network's) <metadata>."""

    project: str
    workspace: str | None = None
    created: str = ""
    digest: str = ""

    def same_scope(self, other: Owner | None) -> bool:
        """The same project and workspace: when and from which spec each was made do not matter."""
        return other is not None and (self.project, self.workspace) == (other.project, other.workspace)


@dataclass(frozen=True, slots=True)
class VolumeRef:
    """A volume in a pool, by name."""

    pool: str
    name: str


@dataclass(frozen=True, slots=True)
class ImageUpload:
    """A local file that must exist in a pool as a content-addressed volume."""

    name: str  # the spec's image name, or 'kernel'/'initrd'
    pool: str
    volume: str
    source: Path | None
    url: str | None
    sha256: str
    format: str
    size: int = 0  # bytes of the file to upload (0 when not yet downloaded)


@dataclass(frozen=True, slots=True)
class DesiredState:
    """The spec resolved against the host and the images: exactly what should exist."""

    project: str
    workspace: str | None
    pools: tuple[PoolSpec, ...]
    uploads: tuple[ImageUpload, ...]
    networks: tuple[NetworkSpec, ...]
    guests: tuple[GuestSpec, ...]
    _by_name: dict[str, GuestSpec] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {g.name: g for g in self.guests})

    def guest(self, name: str) -> GuestSpec | None:
        return self._by_name.get(name)

    @property
    def owner(self) -> Owner:
        """Who vmctl's objects for this spec belong to."""
        return Owner(self.project, self.workspace)

    def image_upload(self, image: str | None, sha256: str | None) -> ImageUpload | None:
        """The uploaded volume of an image's content (what a disk on that image is an overlay of)."""
        return next((u for u in self.uploads if (u.name, u.sha256) == (image, sha256)), None)


@dataclass(frozen=True, slots=True)
class DiskRecord:
    """Which image (name and digest) a disk was made from."""

    name: str
    image: str | None = None
    image_sha256: str | None = None
    image_volume: VolumeRef | None = None


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

    def disk(self, name: str) -> DiskRecord | None:
        return next((d for d in self.disks if d.name == name), None)


@dataclass(frozen=True, slots=True)
class LiveGuest:
    """A domain this project and workspace own: its persistent config and, if running, its live state."""

    name: str
    uuid: str
    record: GuestRecord
    config: GuestSpec
    running: GuestSpec | None = None
    targets: Mapping[str, str] = field(default_factory=dict)  # disk name -> target dev (config)

    @property
    def current(self) -> GuestSpec:
        """What the guest is now: the live definition when running, else the config."""
        return self.running or self.config


@dataclass(frozen=True, slots=True)
class VolumeInfo:
    """A volume as the pool reports it."""

    pool: str
    name: str
    capacity: int  # bytes; -1 when not read (vmctl only needs to know the volume exists)


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
