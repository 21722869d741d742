"""The model: frozen types that flow between the stages, and how vmctl names things.

Owns: what the spec wants (`wanted`), what libvirt has (`live`), vmctl's ownership record
(`ownership`); names and MACs (`naming`). The wanted and live sides are distinct types that share
field names, so the planner compares them field by field.
Must not import: anything of vmctl but `vmctl.errors` and `vmctl.units`.
"""

from vmctl.model.desired import DesiredState, ImageUpload
from vmctl.model.live import (
    DiskState,
    GuestState,
    HostFacts,
    LiveGuest,
    LiveNetwork,
    LivePool,
    LiveState,
    OwnedGuest,
    OwnedState,
    VolumeInfo,
)
from vmctl.model.ownership import DiskRecord, GuestRecord, LockHolder, Owner, VolumeRef
from vmctl.model.wanted import (
    Accel,
    BootSpec,
    CloudInitSpec,
    DevicesSpec,
    DiskBus,
    DiskSpec,
    FileRef,
    Firmware,
    GuestSpec,
    HostSpec,
    ImageFacts,
    ImageSpec,
    NetworkMode,
    NetworkSpec,
    NicKind,
    NicSpec,
    PoolSpec,
    PowerState,
    SeedSpec,
    ShareSpec,
    Spec,
    WaitSpec,
)

__all__ = [
    "Accel",
    "BootSpec",
    "CloudInitSpec",
    "DesiredState",
    "DevicesSpec",
    "DiskBus",
    "DiskRecord",
    "DiskSpec",
    "DiskState",
    "FileRef",
    "Firmware",
    "GuestRecord",
    "GuestSpec",
    "GuestState",
    "HostFacts",
    "HostSpec",
    "ImageFacts",
    "ImageSpec",
    "ImageUpload",
    "LiveGuest",
    "LiveNetwork",
    "LivePool",
    "LiveState",
    "LockHolder",
    "NetworkMode",
    "NetworkSpec",
    "NicKind",
    "NicSpec",
    "OwnedGuest",
    "OwnedState",
    "Owner",
    "PoolSpec",
    "PowerState",
    "SeedSpec",
    "ShareSpec",
    "Spec",
    "VolumeInfo",
    "VolumeRef",
    "WaitSpec",
]
