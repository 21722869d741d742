"""The plan: what apply will do, change by change, field by field, and why.

Every decision is made here, once: each field's effect, the volume operations, the live device
steps, the disk targets, whether the guest's config is rewritten and what happens to its power.
Apply walks these and decides nothing of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from vmctl.model import DesiredState, GuestSpec, HostEntry, LiveGuest, NicSpec, VolumeRef


class Action(Enum):
    """What happens to one object; carries its own symbol."""

    CREATE = ("create", "+")
    UPDATE = ("update", "~")
    UPDATE_RESTART = ("update-restart", "~!")
    REPLACE = ("replace", "-/+")
    DELETE = ("delete", "-")
    ADOPT = ("adopt", "<=")  # an existing domain vmctl takes over: its record is written, nothing else unless planned

    @property
    def label(self) -> str:
        return self.value[0]

    @property
    def symbol(self) -> str:
        return self.value[1]


class Kind(Enum):
    """The kind of object a change is about."""

    POOL = "pool"
    IMAGE = "image"
    NETWORK = "network"
    GUEST = "guest"
    VOLUME = "volume"


class Effect(Enum):
    """How one field change is carried out."""

    LIVE = "live"  # on the running guest, which keeps running
    CONFIG = "config"  # written to the persistent config (the guest is stopped, or only the config drifted)
    RESTART = "restart"  # needs the guest restarted
    REPLACE = "replace"  # destroy and recreate; data on replaced disks is lost
    CREATE = "create"
    DELETE = "delete"
    IGNORED = "ignored"  # a live difference in a field the guest's ignore_changes names: never planned


class Unit(Enum):
    """What a field's value is, so renderers can show it (2GiB, a disk's summary)."""

    BYTES = "bytes"
    DISK = "disk"
    NIC = "nic"


class VolumeWork(Enum):
    """What apply does to one volume."""

    CREATE = "create"  # make it: a disk (on its image, or empty) or a seed
    GROW = "grow"  # resize the volume in its pool (the guest is stopped)
    GROW_LIVE = "grow-live"  # QEMU resizes the running guest's block device (it owns the image)
    RECREATE = "recreate"  # delete it and make it anew: its data is lost
    DELETE = "delete"


class DeviceWork(Enum):
    """One request to a running guest, in the order the planner lists them."""

    ADD_SCSI_CONTROLLER = "add-scsi-controller"
    ATTACH_DISK = "attach-disk"
    DETACH_DISK = "detach-disk"
    DETACH_NIC = "detach-nic"
    ATTACH_NIC = "attach-nic"
    MOVE_NIC = "move-nic"
    SWAP_SEED = "swap-seed"
    BALLOON = "balloon"
    PLUG_VCPUS = "plug-vcpus"
    ONLINE_VCPUS = "online-vcpus"  # ask the guest agent to online the hot-plugged vCPUs


class Power(Enum):
    """What happens to the guest's power once its other steps are done."""

    KEEP = "keep"  # as it is, or as `state` asks: start a stopped guest that should run, stop the reverse
    RESTART = "restart"  # a change needs a restart: done with --allow-restart, else reported
    REBOOT_FOR_SEED = "reboot-for-seed"  # only the new cloud-init seed waits for a boot
    SHUT_DOWN = "shut-down"  # before the guest is deleted: it was read running


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field: its value before and after, how it is done, and why."""

    path: str
    before: Any
    after: Any
    effect: Effect
    reason: str = ""
    destructive: bool = False
    sensitive: bool = False
    unit: Unit | None = None


@dataclass(frozen=True, slots=True)
class VolumeStep:
    """One volume operation, decided by the planner."""

    work: VolumeWork
    ref: VolumeRef
    size: int | None = None  # bytes, for a disk made or grown
    disk: str | None = None  # the guest's disk it backs; None for a seed or a leftover
    target: str | None = None  # the running guest's device, for GROW_LIVE


@dataclass(frozen=True, slots=True)
class DeviceStep:
    """One live request to a running guest, decided by the planner."""

    work: DeviceWork
    device: str = ""  # the disk's or NIC's name in the spec
    target: str = ""  # the disk's target device, for ATTACH_DISK and DETACH_DISK
    amount: int = 0  # bytes for BALLOON, vCPUs for PLUG_VCPUS


@dataclass(frozen=True, slots=True)
class GuestSteps:
    """How one guest's change is carried out, beyond its volumes."""

    devices: tuple[DeviceStep, ...] = ()  # live requests, only for a running guest
    targets: Mapping[str, str] = field(default_factory=dict)  # disk name -> target device, every desired disk
    claim_first: bool = False  # record new volumes in vmctl's metadata before making them
    write_config: bool = False  # define the whole desired definition as the persistent config
    write_record: bool = False  # rewrite vmctl's record alone (claims, hostname, prevent_destroy)
    autostart: bool | None = None  # set the autostart flag to this; None: leave it
    power: Power = Power.KEEP
    verify: bool = False  # read the domain back until the live requests are honoured
    rename_from: str | None = None  # the domain's name now: renamed (stopped) before anything else
    adopt: bool = False  # write vmctl's record into a domain nobody owned, before anything else


class HostWork(Enum):
    """A fixed address's change on a running network: libvirt's network update, no restart."""

    ADD = "add"
    CHANGE = "change"
    REMOVE = "remove"


@dataclass(frozen=True, slots=True)
class HostStep:
    """One reservation (DHCP by MAC, and its DNS names) added, changed or removed live."""

    work: HostWork
    before: HostEntry | None = None
    after: HostEntry | None = None


@dataclass(frozen=True, slots=True)
class NicRef:
    """A running guest's NIC, by domain name and NIC name."""

    guest: str
    nic: NicSpec


@dataclass(frozen=True, slots=True)
class NetworkSteps:
    """How one network's change is carried out."""

    start: bool = False  # start it and have it start with the host
    write_owner: bool = False  # rewrite vmctl's record alone (its expiry)
    hosts: tuple[HostStep, ...] = ()  # live updates of its DHCP and DNS hosts
    restart: bool = False  # recreated: its range or mode changed (only with --allow-restart)
    reattach: tuple[NicRef, ...] = ()  # running guests' NICs plugged back once it is recreated


@dataclass(frozen=True, slots=True)
class Change:
    """One object's change: a guest, volume, image, network or pool."""

    kind: Kind
    name: str
    action: Action
    fields: tuple[FieldChange, ...] = ()
    notes: tuple[str, ...] = ()
    guest: str | None = None  # for volumes: the guest they belong to
    pool: str | None = None  # for volumes and images
    volume: VolumeStep | None = None  # for volumes: what apply does
    steps: GuestSteps | None = None  # for guests created or updated: how apply does it
    network: NetworkSteps | None = None  # for networks updated: how apply does it
    desired: GuestSpec | None = field(default=None, compare=False, repr=False)
    live: LiveGuest | None = field(default=None, compare=False, repr=False)

    @property
    def destructive(self) -> bool:
        """Data is lost: a volume deleted or recreated (a network or an empty pool holds none)."""
        return any(f.destructive for f in self.fields)

    @property
    def needs_restart(self) -> bool:
        return any(f.effect is Effect.RESTART for f in self.fields)


@dataclass(frozen=True, slots=True)
class Plan:
    """All changes, in the order apply carries them out."""

    project: str
    workspace: str | None
    uri: str
    changes: tuple[Change, ...] = ()
    desired: DesiredState | None = field(default=None, compare=False, repr=False)
    targets: tuple[str, ...] = ()  # --target: a partial plan, only these guests and what they need
    ignored: tuple[Change, ...] = ()  # guests' live differences their ignore_changes names: shown, not planned
    scope: str = ""  # what the plan is about, when not one project (gc: every project and workspace)
    host: str | None = None  # the spec's name for the host; None: the spec has no hosts

    @property
    def empty(self) -> bool:
        return not self.changes

    def count(self, action: Action) -> int:
        return sum(1 for c in self.changes if c.action is action)

    def of_kind(self, kind: Kind) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.kind is kind)

    def guest_changes(self) -> tuple[Change, ...]:
        return self.of_kind(Kind.GUEST)

    def volumes_by_guest(self) -> dict[str, tuple[Change, ...]]:
        """Each guest's volume changes, in plan order (found in one pass: a plan may have thousands)."""
        found: dict[str, list[Change]] = {}
        for change in self.changes:
            if change.kind is Kind.VOLUME and change.guest is not None:
                found.setdefault(change.guest, []).append(change)
        return {guest: tuple(volumes) for guest, volumes in found.items()}
