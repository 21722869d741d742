"""Compare one guest's spec with its live domain, field by field, and say how each change is made.

This is the effects table of the plan: which changes happen live, which need a restart, and which
replace the guest (losing the data of the replaced disks). Where a field changes live on a running
guest, the request that does it (a DeviceStep) is decided in the same place as the field's effect,
so the plan cannot say one thing and apply do another.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from vmctl.cloudinit.diff import cloud_init_diff
from vmctl.libvirtxml.domain import SEED_TARGET, assign_targets
from vmctl.model import DiskSpec, DiskState, GuestSpec, GuestState, LiveGuest, NicSpec, VolumeRef
from vmctl.plan.changes import DeviceStep, DeviceWork, Effect, FieldChange, Unit, VolumeStep, VolumeWork

_RESTART_REASONS = {
    "accel": "the accelerator is chosen when QEMU starts",
    "machine": "the machine type is fixed while the guest runs",
    "firmware": "firmware is chosen at boot",
    "cpu_model": "the CPU model is fixed while the guest runs",
    "max_cpus": "the vCPU hot-plug ceiling is fixed at boot",
    "max_memory": "the memory (balloon) ceiling is fixed at boot",
}
_LIVE_REASONS = {
    "autostart": "autostart flag",
    "prevent_destroy": "vmctl metadata only",
}


@dataclass(frozen=True, slots=True)
class PlannedVolume:
    """A volume operation with what the plan shows of it."""

    step: VolumeStep
    reason: str = ""
    before: int | None = None  # the size it has now, for a grow


@dataclass
class GuestDiff:
    """The outcome of comparing one guest: field changes, notes, volume operations and live requests."""

    running: bool
    fields: list[FieldChange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    volumes: list[PlannedVolume] = field(default_factory=list)
    devices: list[DeviceStep] = field(default_factory=list)

    def add(self, change: FieldChange, *requests: DeviceStep) -> None:
        """A field change, and the live requests that carry it out when it is live on a running guest."""
        self.fields.append(change)
        if self.running and change.effect is Effect.LIVE:
            self.devices.extend(requests)

    def volume(self, work: VolumeWork, ref: VolumeRef, size: int | None = None, **shown: Any) -> None:
        disk, target = shown.pop("disk", None), shown.pop("target", None)
        self.volumes.append(PlannedVolume(VolumeStep(work, ref, size, disk, target), **shown))


def same_machine(desired: str, live: str) -> bool:
    """'q35' matches whatever versioned q35 libvirt expanded it to; a pinned version must match exactly."""
    if desired == live:
        return True
    aliases = {"q35": r"pc-q35-[0-9.]+", "pc": r"pc-i440fx-[0-9.]+", "i440fx": r"pc-i440fx-[0-9.]+"}
    pattern = aliases.get(desired)
    return bool(pattern and re.fullmatch(pattern, live))


def diff_guest(desired: GuestSpec, live: LiveGuest) -> GuestDiff:
    """Every difference between `desired` and `live`, with its effect."""
    out = GuestDiff(running=live.running is not None)
    current = live.current
    if live.record.guest != desired.guest:
        _identity_changed(out, desired, live)
        return out
    _scalars(out, desired, current)
    _disks(out, desired, live, disk_targets(desired, live))
    _nics(out, desired, current)
    _shares(out, desired, current)
    _devices(out, desired, current)
    _boot(out, desired, current)
    _seed(out, desired, live)
    _unmodelled(out, current)
    _leftover_volumes(out, desired, live)
    _record(out, desired, live)
    if live.running is not None:
        _config_drift(out, desired, live)
        _pending_restart_note(out, desired, live)
    else:
        out.fields = [as_config(f) for f in out.fields]
    out.devices.sort(key=lambda step: _REQUEST_ORDER.index(step.work))
    return out


# Live requests go in this order: a controller before its disk, every unplug before a plug (a NIC
# whose MAC changes is unplugged, then plugged back), seed and memory last.
_REQUEST_ORDER = [
    DeviceWork.ADD_SCSI_CONTROLLER,
    DeviceWork.ATTACH_DISK,
    DeviceWork.DETACH_DISK,
    DeviceWork.DETACH_NIC,
    DeviceWork.ATTACH_NIC,
    DeviceWork.MOVE_NIC,
    DeviceWork.SWAP_SEED,
    DeviceWork.BALLOON,
    DeviceWork.PLUG_VCPUS,
    DeviceWork.ONLINE_VCPUS,
]


def disk_targets(desired: GuestSpec, live: LiveGuest | None) -> dict[str, str]:
    """The target device of every desired disk: a disk keeps the one it has; a new disk takes the first
    one free in both the running guest and its config (a hot-plugged disk must keep its target there)."""
    if live is None:
        return assign_targets(desired.disks, {})
    have = {**live.config.targets, **live.current.targets}
    taken = set(have.values()) | set(live.config.targets.values())
    # A CD-ROM drive adopted on the seed's target moves over when the guest gets a seed (both at a restart).
    kept = {
        name: target
        for name, target in have.items()
        if desired.disk(name) is not None and not (desired.seed and target == SEED_TARGET)
    }
    return assign_targets(desired.disks, kept, taken)


def _identity_changed(out: GuestDiff, desired: GuestSpec, live: LiveGuest) -> None:
    reason = f"domain {live.name} was made for guest '{live.record.guest}', the spec now gives it to '{desired.guest}'"
    out.fields.append(FieldChange("guest", live.record.guest, desired.guest, Effect.REPLACE, reason, destructive=True))
    for claim in live.record.claims:
        out.volume(VolumeWork.DELETE, claim, reason="the guest is replaced")
    for disk in desired.disks:
        out.volume(VolumeWork.CREATE, VolumeRef(disk.pool, disk.volume), disk.size, disk=disk.name)


def as_config(change: FieldChange) -> FieldChange:
    """On a stopped guest, live and restart changes are simply written to its config."""
    if change.effect in (Effect.LIVE, Effect.RESTART) and change.path not in ("state", "volumes", "metadata"):
        return replace(change, effect=Effect.CONFIG, reason="the guest is stopped: written to its config")
    return change


def _scalars(out: GuestDiff, desired: GuestSpec, current: GuestState) -> None:
    for name, reason in _RESTART_REASONS.items():
        before, after = getattr(current, name), getattr(desired, name)
        equal = same_machine(after, before) if name == "machine" else before == after
        if not equal:
            out.fields.append(FieldChange(name, before, after, Effect.RESTART, reason, unit=_unit(name)))
    _cpus(out, desired, current)
    _memory(out, desired, current)
    if desired.state != current.state:
        reason = "start the guest" if desired.state == "running" else "shut the guest down"
        out.fields.append(FieldChange("state", current.state, desired.state, Effect.LIVE, reason))
    for name, reason in _LIVE_REASONS.items():
        before, after = getattr(current, name), getattr(desired, name)
        if before != after:
            out.fields.append(FieldChange(name, before, after, Effect.LIVE, reason))


def _unit(name: str) -> Unit | None:
    return Unit.BYTES if name in ("memory", "max_memory") else None


def _cpus(out: GuestDiff, desired: GuestSpec, current: GuestState) -> None:
    if desired.cpus == current.cpus:
        return
    if desired.cpus < current.cpus:
        effect, reason = Effect.RESTART, "vCPU unplug is unreliable: fewer vCPUs take a restart"
    elif desired.cpus <= current.max_cpus:
        effect, reason = Effect.LIVE, "vCPU hot-plug, then onlined in the guest by its agent"
    else:
        effect, reason = Effect.RESTART, f"above the running guest's max_cpus ({current.max_cpus})"
    plug = [DeviceStep(DeviceWork.PLUG_VCPUS, amount=desired.cpus)]
    if current.devices.agent:
        plug.append(DeviceStep(DeviceWork.ONLINE_VCPUS, amount=desired.cpus))
    out.add(FieldChange("cpus", current.cpus, desired.cpus, effect, reason), *plug)


def _memory(out: GuestDiff, desired: GuestSpec, current: GuestState) -> None:
    if desired.memory == current.memory:
        return
    if not (desired.devices.balloon and current.devices.balloon):
        effect, reason = Effect.RESTART, "no memory balloon device"
    elif desired.memory <= current.max_memory:
        effect, reason = Effect.LIVE, "memory balloon"
    else:
        effect, reason = Effect.RESTART, "above the running guest's max_memory"
    balloon = DeviceStep(DeviceWork.BALLOON, amount=desired.memory)
    out.add(FieldChange("memory", current.memory, desired.memory, effect, reason, unit=Unit.BYTES), balloon)


def disk_summary(disk: DiskSpec | DiskState | None) -> dict[str, Any] | None:
    """A disk as the plan shows it: its size, bus and image, or the existing volume or file it is on;
    a CD-ROM drive by what is in it."""
    if disk is None:
        return None
    if disk.cdrom:
        media = disk.path if isinstance(disk, DiskState) and disk.path else disk.volume
        return {"cdrom": media, "bus": disk.bus}
    summary: dict[str, Any] = {"size": disk.size, "bus": disk.bus}
    if disk.image:
        summary["image"] = disk.image
    if isinstance(disk, DiskSpec) and disk.source == "volume":
        summary["volume"] = f"{disk.pool}/{disk.volume}"
    if isinstance(disk, DiskSpec) and disk.source == "path":
        summary["file"] = disk.volume
    return summary


def _disks(out: GuestDiff, desired: GuestSpec, live: LiveGuest, targets: dict[str, str]) -> None:
    current = live.current
    claimed = set(live.record.claims)
    wanted = {d.name: d for d in desired.disks}
    have = {d.name: d for d in current.disks}
    in_config = {d.name for d in live.config.disks}
    needs_controller = not current.scsi_controller
    for name in sorted(wanted.keys() - have.keys()):
        disk = wanted[name]
        if disk.cdrom:
            out.fields.append(
                FieldChange(f"disks.{name}", None, disk_summary(disk), Effect.RESTART, _CDROM, unit=Unit.DISK)
            )
            continue
        reason = "new disk, hot-plugged" + (f" (a copy-on-write overlay of {disk.image})" if disk.image else "")
        plug = [DeviceStep(DeviceWork.ATTACH_DISK, name, targets[name])]
        if disk.bus == "scsi" and needs_controller:
            plug.insert(0, DeviceStep(DeviceWork.ADD_SCSI_CONTROLLER))
            needs_controller = False
        if not disk.owned:
            reason = "hot-plugged; not vmctl's, so never deleted"
        out.add(FieldChange(f"disks.{name}", None, disk_summary(disk), Effect.LIVE, reason, unit=Unit.DISK), *plug)
        if disk.owned:
            out.volume(VolumeWork.CREATE, VolumeRef(disk.pool, disk.volume), disk.size, disk=name)
    for name in sorted(have.keys() - wanted.keys()):
        _disk_removed(out, have[name], claimed, pending=name not in in_config)
    for name in sorted(wanted.keys() & have.keys()):
        _disk_changed(out, wanted[name], have[name])


_CDROM = "a CD-ROM drive is added or removed at a restart (SATA and IDE have no hot-plug); its media stays"


def _disk_removed(out: GuestDiff, disk: DiskState, claimed: set[VolumeRef], pending: bool) -> None:
    if disk.cdrom:
        out.fields.append(
            FieldChange(f"disks.{disk.name}", disk_summary(disk), None, Effect.RESTART, _CDROM, unit=Unit.DISK)
        )
        return
    ref = VolumeRef(disk.pool, disk.volume)
    owned = ref in claimed
    reason = "hot-unplug pending: the guest has not released it yet" if pending else "hot-unplugged"
    reason += "; its volume is deleted once released" if owned else "; its volume is not vmctl's and stays"
    change = FieldChange(
        f"disks.{disk.name}", disk_summary(disk), None, Effect.LIVE, reason, destructive=owned, unit=Unit.DISK
    )
    out.add(change, DeviceStep(DeviceWork.DETACH_DISK, disk.name, disk.target))
    if owned:
        out.volume(VolumeWork.DELETE, ref, reason="disk removed from the spec")


def _existing_disk_changed(out: GuestDiff, want: DiskSpec, have: DiskState) -> None:
    """A disk on a volume or file vmctl does not own: never recreated; another source is a restart."""
    path = f"disks.{want.name}"
    if not have.uses(want) or want.bus != have.bus or want.cdrom != have.cdrom:
        reason = "the disk is connected to its new source or bus at a restart; neither volume is deleted"
        before, after = _source_summary(have), _source_summary(want)
        out.fields.append(FieldChange(f"{path}.source", before, after, Effect.RESTART, reason))
    elif want.size is not None and have.size is not None and want.size > have.size:
        reason = "volume grown and the guest's block device resized live; grow the filesystem in the guest"
        out.fields.append(FieldChange(f"{path}.size", have.size, want.size, Effect.LIVE, reason, unit=Unit.BYTES))
        live_target = have.target if out.running else None
        work = VolumeWork.GROW_LIVE if live_target else VolumeWork.GROW
        out.volume(
            work, VolumeRef(want.pool, want.volume), want.size, disk=want.name, target=live_target, before=have.size
        )


def _source_summary(disk: DiskSpec | DiskState) -> str:
    where = (f"{disk.pool}/{disk.volume}" if disk.pool else disk.volume) or "(empty)"
    return f"{where} ({'CD-ROM on ' if disk.cdrom else ''}{disk.bus})"


def _disk_changed(out: GuestDiff, want: DiskSpec, have: DiskState) -> None:
    if not want.owned:
        _existing_disk_changed(out, want, have)
        return
    path = f"disks.{want.name}"
    ref = VolumeRef(want.pool, want.volume)
    recreate = _disk_recreate_reasons(want, have)
    for field_name, before, after, reason in recreate:
        unit = Unit.BYTES if field_name == "size" else None
        out.fields.append(
            FieldChange(f"{path}.{field_name}", before, after, Effect.REPLACE, reason, destructive=True, unit=unit)
        )
    if recreate:
        out.volume(VolumeWork.RECREATE, ref, want.size, disk=want.name, reason=recreate[0][3])
        return
    if have.size is None:
        reason = "its volume is missing: created anew"
        out.fields.append(FieldChange(f"{path}.volume", None, want.volume, Effect.REPLACE, reason, destructive=True))
        out.volume(VolumeWork.RECREATE, ref, want.size, disk=want.name, reason=reason)
    elif want.size is not None and want.size > have.size:
        reason = "volume grown and the guest's block device resized live; grow the filesystem in the guest"
        out.fields.append(FieldChange(f"{path}.size", have.size, want.size, Effect.LIVE, reason, unit=Unit.BYTES))
        # QEMU owns the image of a running guest: it must do the resize itself.
        live_target = have.target if out.running else None
        work = VolumeWork.GROW_LIVE if live_target else VolumeWork.GROW
        out.volume(work, ref, want.size, disk=want.name, target=live_target, before=have.size)


def _disk_recreate_reasons(want: DiskSpec, have: DiskState) -> list[tuple[str, Any, Any, str]]:
    lost = f"disk {want.name} is recreated: its data is lost"
    reasons: list[tuple[str, Any, Any, str]] = []
    if (want.image, want.image_sha256) != (have.image, have.image_sha256):
        before = f"{have.image} ({(have.image_sha256 or '')[:12]})" if have.image else None
        after = f"{want.image} ({(want.image_sha256 or '')[:12]})" if want.image else None
        reasons.append(("image", before, after, f"new image content; {lost}"))
    if want.bus != have.bus:
        reasons.append(("bus", have.bus, want.bus, f"the bus of an existing disk cannot change; {lost}"))
    if (want.pool, want.volume) != (have.pool, have.volume):
        reasons.append(("volume", f"{have.pool}/{have.volume}", f"{want.pool}/{want.volume}", lost))
    if want.size is not None and have.size is not None and want.size < have.size:
        reasons.append(("size", have.size, want.size, f"disks cannot shrink; {lost}"))
    return reasons


def _nic_summary(nic: NicSpec | None) -> dict[str, Any] | None:
    if nic is None:
        return None
    return {"kind": nic.kind, "source": nic.source, "mac": nic.mac, "model": nic.model}


def _nics(out: GuestDiff, desired: GuestSpec, current: GuestState) -> None:
    wanted = {n.name: n for n in desired.nics}
    have = {n.name: n for n in current.nics}
    for name in sorted(wanted.keys() - have.keys()):
        nic = _nic_summary(wanted[name])
        plug = DeviceStep(DeviceWork.ATTACH_NIC, name)
        out.add(FieldChange(f"nics.{name}", None, nic, Effect.LIVE, "new NIC, hot-plugged", unit=Unit.NIC), plug)
    for name in sorted(have.keys() - wanted.keys()):
        nic = _nic_summary(have[name])
        unplug = DeviceStep(DeviceWork.DETACH_NIC, name)
        out.add(FieldChange(f"nics.{name}", nic, None, Effect.LIVE, "hot-unplugged", unit=Unit.NIC), unplug)
    for name in sorted(wanted.keys() & have.keys()):
        _nic_changed(out, wanted[name], have[name])


def _nic_changed(out: GuestDiff, want: NicSpec, have: NicSpec) -> None:
    path = f"nics.{want.name}"
    moved = (want.kind, want.source) != (have.kind, have.source)
    if want.mac != have.mac:
        replug = (DeviceStep(DeviceWork.DETACH_NIC, want.name), DeviceStep(DeviceWork.ATTACH_NIC, want.name))
        out.add(FieldChange(f"{path}.mac", have.mac, want.mac, Effect.LIVE, "unplugged and plugged back"), *replug)
    if moved:
        before, after = f"{have.kind} {have.source}".strip(), f"{want.kind} {want.source}".strip()
        # A NIC plugged back with its new MAC is already on the new source.
        move = () if want.mac != have.mac else (DeviceStep(DeviceWork.MOVE_NIC, want.name),)
        out.add(FieldChange(f"{path}.source", before, after, Effect.LIVE, "moved to the new source live"), *move)
    if want.model != have.model:
        reason = "a NIC's model is fixed while the guest runs"
        out.fields.append(FieldChange(f"{path}.model", have.model, want.model, Effect.RESTART, reason))


def _shares(out: GuestDiff, desired: GuestSpec, current: GuestState) -> None:
    wanted = {s.name: s for s in desired.shares}
    have = {s.name: s for s in current.shares}
    reason = "virtiofs shares change at a restart"
    for name in sorted(wanted.keys() | have.keys()):
        before, after = have.get(name), wanted.get(name)
        if before != after:
            summarize: Callable[[Any], Any] = lambda s: s and {"source": s.source, "readonly": s.readonly}  # noqa: E731
            out.fields.append(
                FieldChange(f"shares.{name}", summarize(before), summarize(after), Effect.RESTART, reason)
            )


def _devices(out: GuestDiff, desired: GuestSpec, current: GuestState) -> None:
    for name in ("rng", "balloon", "agent", "vsock", "console"):
        before, after = getattr(current.devices, name), getattr(desired.devices, name)
        if before != after:
            reason = "devices other than disks and NICs change at a restart"
            out.fields.append(FieldChange(f"devices.{name}", before, after, Effect.RESTART, reason))


def _boot(out: GuestDiff, desired: GuestSpec, current: GuestState) -> None:
    want, have = desired.boot, current.boot
    parts = {
        "kernel": (have and have.kernel.volume, want and want.kernel.volume),
        "initrd": (have and have.initrd and have.initrd.volume, want and want.initrd and want.initrd.volume),
        "cmdline": (have and have.cmdline, want and want.cmdline),
    }
    for name, (before, after) in parts.items():
        if (before or None) != (after or None):
            out.fields.append(FieldChange(f"boot.{name}", before, after, Effect.RESTART, "read at boot"))


def _seed(out: GuestDiff, desired: GuestSpec, live: LiveGuest) -> None:
    want, have = desired.seed, live.current.seed
    if want == have:
        return
    if want and have:
        effect = Effect.LIVE
        reason = "new seed media swapped in live; cloud-init runs it as a new instance at the next boot"
    else:
        effect = Effect.RESTART
        reason = "the seed CD-ROM is added or removed at a restart (SATA has no hot-plug)"
    content = cloud_init_diff(live.record.cloud_init, desired.cloud_init)
    fields = [
        FieldChange(path, before, after, effect, reason, sensitive=sensitive)
        for path, before, after, sensitive in content
    ]
    if not fields:
        reason += " (what changed is marked sensitive)" if want and have else ""
        fields.append(FieldChange("seed", have and have.volume, want and want.volume, effect, reason))
    out.add(fields[0], DeviceStep(DeviceWork.SWAP_SEED))  # one swap carries every content change
    out.fields.extend(fields[1:])
    if want:
        out.volume(VolumeWork.CREATE, VolumeRef(want.pool, want.volume))
    if have and VolumeRef(have.pool, have.volume) in live.record.claims:
        out.volume(VolumeWork.DELETE, VolumeRef(have.pool, have.volume), reason="replaced by the new seed")


def _unmodelled(out: GuestDiff, current: GuestState) -> None:
    """What the domain has that the spec cannot express goes when vmctl next defines the domain."""
    reason = "vmctl does not model it: gone once the domain is redefined and restarted"
    for element in current.unmodelled:
        out.fields.append(FieldChange("unmodelled", element, None, Effect.RESTART, reason))


def _leftover_volumes(out: GuestDiff, desired: GuestSpec, live: LiveGuest) -> None:
    """Volumes the guest claims but neither the spec nor the domain uses: leftovers of an interrupted apply."""
    used = {VolumeRef(d.pool, d.volume) for g in (desired, live.config, live.current) for d in g.disks}
    used |= {VolumeRef(s.pool, s.volume) for s in (desired.seed, live.config.seed, live.current.seed) if s}
    handled = {op.step.ref for op in out.volumes}
    leftovers = [c for c in live.record.claims if c not in used and c not in handled]
    for claim in leftovers:
        out.volume(VolumeWork.DELETE, claim, reason="left over from an interrupted apply")
    if leftovers:
        names = sorted(c.name for c in leftovers)
        reason = "claimed by the guest but used by nothing: left over from an interrupted apply"
        out.fields.append(FieldChange("volumes", names, None, Effect.LIVE, reason, destructive=True))


def _record(out: GuestDiff, desired: GuestSpec, live: LiveGuest) -> None:
    """vmctl's own record must say what apply would write: else destroy could miss a volume."""
    record = live.record
    wanted_claims = [VolumeRef(d.pool, d.volume) for d in desired.disks if d.owned]
    if desired.seed:
        wanted_claims.append(VolumeRef(desired.seed.pool, desired.seed.volume))
    handled = {op.step.ref for op in out.volumes}
    unclaimed = [r.name for r in wanted_claims if r not in record.claims and r not in handled]
    if unclaimed or record.hostname != desired.hostname or record.pool != desired.pool:
        reason = "vmctl's record of this guest is out of date: rewritten"
        before = {"claims": sorted(r.name for r in record.claims), "hostname": record.hostname}
        after = {"claims": sorted(r.name for r in wanted_claims), "hostname": desired.hostname}
        out.fields.append(FieldChange("metadata", before, after, Effect.LIVE, reason))


def _config_drift(out: GuestDiff, desired: GuestSpec, live: LiveGuest) -> None:
    """Fields right in the running guest but wrong in its persistent config: fixed in the config alone."""
    shown = {f.path.split(".")[0] for f in out.fields}
    for name in ("cpus", "memory", "autostart", *_RESTART_REASONS):
        if name in shown:
            continue
        before, after = getattr(live.config, name), getattr(desired, name)
        equal = same_machine(after, before) if name == "machine" else before == after
        if not equal:
            reason = "the persistent config differs from the running guest: written to the config"
            out.fields.append(FieldChange(name, before, after, Effect.CONFIG, reason, unit=_unit(name)))
    config_disks = {d.name for d in live.config.disks}
    for disk in desired.disks:
        if disk.name not in config_disks and live.current.disk(disk.name) is not None:
            reason = "attached to the running guest but missing from its config"
            out.fields.append(
                FieldChange(f"disks.{disk.name}", None, disk_summary(disk), Effect.CONFIG, reason, unit=Unit.DISK)
            )


def _pending_restart_note(out: GuestDiff, desired: GuestSpec, live: LiveGuest) -> None:
    restart = [f for f in out.fields if f.effect is Effect.RESTART]
    if restart and _restart_fields_in_config(restart, desired, live.config):
        out.notes.append("already written to the persistent config; waiting for a restart (apply --allow-restart)")


def _restart_fields_in_config(fields: list[FieldChange], desired: GuestSpec, config: GuestState) -> bool:
    for change in fields:
        name = change.path.split(".")[0]
        if name == "unmodelled":
            if config.unmodelled:
                return False
            continue
        if not hasattr(config, name):
            return False
        if getattr(config, name) != getattr(desired, name) and not (
            name == "machine" and same_machine(desired.machine, config.machine)
        ):
            return False
    return True
