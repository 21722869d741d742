"""The planner: (desired state, live state) -> Plan. Pure: no I/O, no libvirt.

Order of changes is the order apply follows: pools, images, networks, guests (with their volumes),
then deletions of what the spec no longer has.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

from vmctl.cloudinit.diff import SENSITIVE, mask, mask_secrets, mask_text
from vmctl.errors import PlanError
from vmctl.model import (
    DesiredState,
    GuestSpec,
    LiveGuest,
    LiveState,
    Owner,
    VolumeRef,
)
from vmctl.plan.adopt import adoption_view
from vmctl.plan.changes import (
    Action,
    Change,
    Effect,
    FieldChange,
    GuestSteps,
    Kind,
    Plan,
    Power,
    Unit,
    VolumeStep,
    VolumeWork,
)
from vmctl.plan.expiry import EXPIRY_REASON, expiry_change
from vmctl.plan.guest import GuestDiff, PlannedVolume, as_config, diff_guest, disk_summary, disk_targets
from vmctl.plan.kept import ignored_fields, kept_volumes, renamed_view, with_ignored
from vmctl.plan.network import network_changes
from vmctl.plan.targets import narrowed


def make_plan(
    desired: DesiredState, live: LiveState, uri: str = "", targets: Collection[str] = (), *, host: str | None = None
) -> Plan:
    """Every change needed to make `live` look like `desired`; raises PlanError if a guard forbids it.

    With `targets`, only those guests and what they need: nothing else is compared, nothing deleted.
    """
    scope = narrowed(desired, targets) if targets else desired
    renames = _renames(scope, live)
    conflicts = _conflicts(scope, live)
    changes = [
        *_pool_changes(scope, live, conflicts),
        *_upload_changes(scope, live),
        *network_changes(scope, live),
    ]
    ignored: list[Change] = []
    for guest in scope.guests:
        changes.extend(_guest_changes(guest, live, renames.get(guest.name), ignored, scope))
    if not targets:
        changes.extend(_deletions(desired, live, {old.name for old in renames.values()}))
    _check_guards(changes, conflicts)
    secrets = desired.secrets
    return Plan(
        desired.project,
        desired.workspace,
        uri,
        tuple(_masked(c, secrets) for c in changes),
        desired,
        tuple(sorted(targets)),
        tuple(_masked(c, secrets) for c in ignored),
        host=host,
    )


def _masked(change: Change, secrets: tuple[str, ...]) -> Change:
    """Sensitive variables' values, wherever they landed, never shown (text, JSON, saved plans)."""
    if not secrets:
        return change
    fields = tuple(
        replace(
            f,
            before=mask_secrets(f.before, secrets),
            after=mask_secrets(f.after, secrets),
            reason=mask_text(f.reason, secrets),
            sensitive=f.sensitive or SENSITIVE in (mask_secrets(f.before, secrets), mask_secrets(f.after, secrets)),
        )
        for f in change.fields
    )
    return replace(change, fields=fields, notes=tuple(mask_text(n, secrets) for n in change.notes))


def _renames(desired: DesiredState, live: LiveState) -> dict[str, LiveGuest]:
    """New domain name -> the domain `moved:` renames to it (when it exists and the new one does not)."""
    found = {}
    for move in desired.moves:
        old = live.guest(move.old)
        if old is not None and live.guest(move.new) is None:
            found[move.new] = old
    return found


# -- conflicts and guards ---------------------------------------------------------------------------


def _conflicts(desired: DesiredState, live: LiveState) -> list[str]:
    found = [
        f"guest {m.new}: moved from {m.old}, but both exist; vmctl will not merge them"
        for m in desired.moves
        if live.guest(m.old) is not None and live.guest(m.new) is not None
    ]
    for guest in desired.guests:
        if guest.adopt and guest.name in live.adoptable:
            continue
        if live.guest(guest.name) is None and guest.name in live.other_domains:
            who = live.other_domains[guest.name]
            found.append(f"guest {guest.name}: a domain with that name exists and is {who}; vmctl will not touch it")
    for net in desired.networks:
        existing = live.network(net.libvirt_name)
        if existing and not _ours(existing.owner, desired):
            found.append(f"network {net.libvirt_name}: exists and is not this project's; vmctl will not touch it")
    found.extend(_missing_volumes(desired, live))
    for pool in desired.pools:
        live_pool = live.pool(pool.name)
        if live_pool and live_pool.path != pool.path:
            found.append(f"pool {pool.name}: exists at {live_pool.path}, the spec says {pool.path}")
        same_dir = [p.name for p in live.pools if p.path == pool.path and p.name != pool.name]
        if live_pool is None and same_dir:
            found.append(
                f"pool {pool.name}: libvirt pool {same_dir[0]} already uses {pool.path}; name that pool in the spec"
            )
    return found


def _missing_volumes(desired: DesiredState, live: LiveState) -> list[str]:
    """A disk on an existing volume needs it to exist: vmctl never makes one it does not own."""
    found = []
    for guest in desired.guests:
        for disk in guest.disks:
            if disk.source == "volume" and (disk.pool, disk.volume) not in live.volumes:
                found.append(f"guest {guest.name}: disk {disk.name}: no volume {disk.volume} in pool {disk.pool}")
    return found


def _ours(owner: Owner | None, desired: DesiredState) -> bool:
    return desired.owner.same_scope(owner)


def _check_guards(changes: list[Change], conflicts: list[str]) -> None:
    problems = list(conflicts)
    hint = None
    for change in changes:
        protected = change.kind is Kind.GUEST and _protected(change)
        if protected and change.action in (Action.REPLACE, Action.DELETE):
            problems.append(
                f"guest {change.name}: prevent_destroy is set, but this plan would {change.action.label} it"
            )
            hint = _unprotect_hint(change)
    if problems:
        raise PlanError("the plan is refused", reasons=problems, hint=hint)


def _unprotect_hint(change: Change) -> str:
    if change.action is Action.DELETE:
        return "to delete it, keep the guest in the spec with prevent_destroy: false, apply, then remove it"
    return "set prevent_destroy: false and apply first, or change the spec so nothing is destroyed"


def _protected(change: Change) -> bool:
    live_flag = change.live is not None and change.live.record.prevent_destroy
    desired_flag = change.desired is not None and change.desired.prevent_destroy
    return live_flag or desired_flag


# -- pools, images, networks ---------------------------------------------------------------------------


def _pool_changes(desired: DesiredState, live: LiveState, conflicts: list[str]) -> list[Change]:
    changes = []
    for pool in desired.pools:
        existing = live.pool(pool.name)
        if existing is None:
            fields = (FieldChange("path", None, pool.path, Effect.CREATE, "directory pool"),)
            changes.append(Change(Kind.POOL, pool.name, Action.CREATE, fields))
        elif not existing.active and existing.path == pool.path:
            fields = (FieldChange("active", False, True, Effect.LIVE, "start the pool"),)
            changes.append(Change(Kind.POOL, pool.name, Action.UPDATE, fields))
    return changes


def _upload_changes(desired: DesiredState, live: LiveState) -> list[Change]:
    changes = []
    for upload in desired.uploads:
        if (upload.pool, upload.volume) in live.volumes:
            continue
        source = str(upload.source or upload.url)
        fields = (
            FieldChange(
                "source", None, source, Effect.CREATE, f"uploaded once; shared by every guest that uses {upload.name}"
            ),
            FieldChange("size", None, upload.size, Effect.CREATE, "bytes to upload", unit=Unit.BYTES),
        )
        changes.append(Change(Kind.IMAGE, upload.volume, Action.CREATE, fields, pool=upload.pool))
    return changes


# -- guests ----------------------------------------------------------------------------------------------


def _guest_changes(
    desired: GuestSpec, live: LiveState, renamed: LiveGuest | None, ignored: list[Change], state: DesiredState
) -> list[Change]:
    current = live.guest(desired.name)
    if current is None and renamed is not None:
        return _renamed(desired, renamed, ignored)
    foreign = live.adoptable.get(desired.name)
    if current is None and desired.adopt and foreign is not None:
        return _adopted(desired, adoption_view(desired, foreign, state.owner), ignored)
    if current is None:
        if desired.name in live.other_domains:
            return []  # reported as a conflict
        return _created(desired, None, state.expires)
    if current.record.creating:
        return _created(desired, current, state.expires)
    desired = _adjusted(desired, current, ignored)
    diff = diff_guest(desired, current)
    expiry = expiry_change(current.record.owner, state)
    if expiry:
        diff.fields.append(expiry)
    if not diff.fields and not diff.volumes:
        return []
    action = _guest_action(diff)
    steps = _update_steps(diff, action, desired, current)
    return _guest_change(desired, action, diff, steps, current)


def _adjusted(desired: GuestSpec, current: LiveGuest, ignored: list[Change]) -> GuestSpec:
    """The guest as compared: its volumes keep their names, ignored fields keep what the guest has
    (those differences are collected in `ignored`, to be shown)."""
    kept = kept_volumes(desired, current)
    if not desired.ignore_changes:
        return kept
    fields = ignored_fields(desired, diff_guest(kept, current).fields)
    if fields:
        ignored.append(Change(Kind.GUEST, desired.name, Action.UPDATE, fields))
    return kept_volumes(with_ignored(desired, current), current)


def _renamed(desired: GuestSpec, old: LiveGuest, ignored: list[Change]) -> list[Change]:
    """`moved:` renames a domain; libvirt renames only a stopped one, so a running guest is stopped,
    renamed, written with every other change as config, and started again (with --allow-restart)."""
    view = renamed_view(old, desired)
    desired = _adjusted(desired, view, ignored)
    diff = diff_guest(desired, view)
    running = old.running is not None
    diff.fields = [as_config(f) for f in diff.fields]
    diff.devices = []
    diff.volumes = [
        replace(v, step=replace(v.step, work=VolumeWork.GROW, target=None))
        if v.step.work is VolumeWork.GROW_LIVE
        else v
        for v in diff.volumes
    ]
    if running:
        name = FieldChange("name", old.name, desired.name, Effect.RESTART, "libvirt renames only a stopped domain")
    else:
        name = FieldChange("name", old.name, desired.name, Effect.CONFIG, "renamed; its disks, MACs and data stay")
    diff.fields.insert(0, name)
    action = _guest_action(diff)
    steps = replace(
        _update_steps(diff, action, desired, view),
        write_config=True,
        write_record=False,
        rename_from=old.name,
        power=Power.RESTART if running else Power.KEEP,
    )
    stopped = replace(view, running=None)  # as apply finds it once renamed
    return _guest_change(desired, action, diff, steps, stopped)


def _adopted(desired: GuestSpec, view: LiveGuest, ignored: list[Change]) -> list[Change]:
    """Take a domain over: its record is written; whatever else the spec changes is planned as an update."""
    desired = _adjusted(desired, view, ignored)
    diff = diff_guest(desired, view)
    steps = replace(_update_steps(diff, _guest_action(diff), desired, view), adopt=True)
    if not diff.fields:
        steps = replace(steps, write_record=False)  # the adoption writes the record
    note = "an existing domain: vmctl's record is written into it; the guest is not restarted"
    return _guest_change(desired, Action.ADOPT, diff, steps, view, note)


def _guest_change(
    desired: GuestSpec, action: Action, diff: GuestDiff, steps: GuestSteps, live: LiveGuest, *notes: str
) -> list[Change]:
    """A guest's change as its diff and the planned steps make it, followed by its volumes' changes."""
    change = Change(
        Kind.GUEST,
        desired.name,
        action,
        tuple(diff.fields),
        (*notes, *diff.notes),
        steps=steps,
        desired=desired,
        live=live,
    )
    return [change, *_volume_changes(diff.volumes, desired.name)]


# Fields that live in vmctl's record or in libvirt's flags, not in the domain's definition.
_NOT_IN_CONFIG = {"state", "autostart", "prevent_destroy", "metadata", "volumes", "expires"}
_IN_RECORD = {"prevent_destroy", "metadata", "volumes", "expires"}


def _update_steps(diff: GuestDiff, action: Action, desired: GuestSpec, live: LiveGuest) -> GuestSteps:
    """How apply carries out an update or a replace: every choice made here, none left to apply."""
    top = {f.path.split(".")[0] for f in diff.fields if not _grown_disk(f)}
    write_config = action is Action.REPLACE or bool(top - _NOT_IN_CONFIG)
    made = {v.step.ref for v in diff.volumes if v.step.work in (VolumeWork.CREATE, VolumeWork.RECREATE)}
    devices = () if action is Action.REPLACE else tuple(diff.devices)
    return GuestSteps(
        devices=devices,
        targets=disk_targets(desired, live),
        claim_first=bool(made - set(live.record.claims)),
        write_config=write_config,
        write_record=not write_config and bool(top & _IN_RECORD),
        autostart=desired.autostart if desired.autostart != live.config.autostart else None,
        power=_power(diff, action, desired, live),
        verify=bool(devices),
    )


def _grown_disk(change: FieldChange) -> bool:
    """A disk grows in its volume (or by QEMU's resize): its definition does not hold its size."""
    parts = change.path.split(".")
    return parts[0] == "disks" and parts[-1] == "size" and change.effect is not Effect.REPLACE


def _power(diff: GuestDiff, action: Action, desired: GuestSpec, live: LiveGuest) -> Power:
    if live.running is None or action is Action.REPLACE:
        return Power.KEEP  # a replace stops the guest first and starts it as `state` says
    if any(f.effect is Effect.RESTART for f in diff.fields):
        return Power.RESTART
    if desired.seed != live.current.seed:
        return Power.REBOOT_FOR_SEED
    return Power.KEEP


def _guest_action(diff: GuestDiff) -> Action:
    effects = {f.effect for f in diff.fields}
    if Effect.REPLACE in effects:
        return Action.REPLACE
    if Effect.RESTART in effects:
        return Action.UPDATE_RESTART
    return Action.UPDATE


def _created(desired: GuestSpec, resumed: LiveGuest | None, expires: str) -> list[Change]:
    notes = ("an earlier apply was interrupted while creating it: its volumes are made anew",) if resumed else ()
    steps = GuestSteps(
        targets=disk_targets(desired, None),
        write_config=True,
        autostart=True if desired.autostart else None,
    )
    change = Change(
        Kind.GUEST,
        desired.name,
        Action.CREATE,
        _creation_fields(desired, expires),
        notes,
        steps=steps,
        desired=desired,
        live=resumed,
    )
    volumes = [
        PlannedVolume(VolumeStep(VolumeWork.CREATE, VolumeRef(d.pool, d.volume), d.size, d.name))
        for d in desired.disks
        if d.owned
    ]
    if desired.seed:
        volumes.append(PlannedVolume(VolumeStep(VolumeWork.CREATE, VolumeRef(desired.seed.pool, desired.seed.volume))))
    return [change, *_volume_changes(volumes, desired.name)]


def _creation_fields(guest: GuestSpec, expires: str) -> tuple[FieldChange, ...]:
    def field(path: str, value: object, unit: Unit | None = None, sensitive: bool = False) -> FieldChange:
        return FieldChange(path, None, value, Effect.CREATE, unit=unit, sensitive=sensitive)

    fields = [
        field("accel", guest.accel),
        field("machine", guest.machine),
        field("firmware", guest.firmware),
        field("cpus", guest.cpus),
        field("max_cpus", guest.max_cpus),
        field("memory", guest.memory, Unit.BYTES),
        field("max_memory", guest.max_memory, Unit.BYTES),
        field("state", guest.state),
    ]
    if guest.autostart:
        fields.append(field("autostart", True))
    for disk in guest.disks:
        fields.append(field(f"disks.{disk.name}", disk_summary(disk), Unit.DISK))
    for nic in guest.nics:
        fields.append(
            field(
                f"nics.{nic.name}",
                {"kind": nic.kind, "source": nic.source, "mac": nic.mac, "model": nic.model},
                Unit.NIC,
            )
        )
    for share in guest.shares:
        fields.append(field(f"shares.{share.name}", {"source": share.source, "readonly": share.readonly}))
    if guest.cloud_init is not None:
        fields.extend(_cloud_init_fields(guest))
    if expires:
        fields.append(FieldChange("expires", None, expires, Effect.CREATE, EXPIRY_REASON))
    return tuple(fields)


def _cloud_init_fields(guest: GuestSpec) -> list[FieldChange]:
    assert guest.cloud_init is not None
    extra = guest.cloud_init.sensitive
    shown = []
    data = guest.cloud_init.user_data
    if isinstance(data, dict):
        for key, value in data.items():
            masked = mask(value, f"cloud_init.user_data.{key}", extra)
            sensitive = masked != value
            shown.append(FieldChange(f"cloud_init.user_data.{key}", None, masked, Effect.CREATE, sensitive=sensitive))
    elif data is not None:
        shown.append(
            FieldChange("cloud_init.user_data", None, f"({len(str(data).splitlines())} lines of text)", Effect.CREATE)
        )
    return shown


_VOLUME_ACTIONS = {
    VolumeWork.CREATE: Action.CREATE,
    VolumeWork.GROW: Action.UPDATE,
    VolumeWork.GROW_LIVE: Action.UPDATE,
    VolumeWork.RECREATE: Action.REPLACE,
    VolumeWork.DELETE: Action.DELETE,
}


def _volume_changes(planned: list[PlannedVolume], guest: str) -> list[Change]:
    return [_volume_change(p, guest) for p in planned]


def _volume_change(planned: PlannedVolume, guest: str) -> Change:
    step, reason = planned.step, planned.reason
    if step.work is VolumeWork.CREATE:
        fields = (FieldChange("size", None, step.size, Effect.CREATE, reason, unit=Unit.BYTES),) if step.size else ()
    elif step.work in (VolumeWork.GROW, VolumeWork.GROW_LIVE):
        fields = (FieldChange("size", planned.before, step.size, Effect.LIVE, "grown", unit=Unit.BYTES),)
    elif step.work is VolumeWork.RECREATE:
        fields = (FieldChange("data", None, None, Effect.REPLACE, reason, destructive=True),)
    else:
        fields = (FieldChange("data", None, None, Effect.DELETE, reason, destructive=True),)
    action = _VOLUME_ACTIONS[step.work]
    return Change(Kind.VOLUME, step.ref.name, action, fields, guest=guest, pool=step.ref.pool, volume=step)


# -- deletions ---------------------------------------------------------------------------------------------


def _deletions(desired: DesiredState, live: LiveState, renamed: set[str]) -> list[Change]:
    wanted = {g.name for g in desired.guests} | renamed
    changes: list[Change] = []
    for guest in live.guests:
        if guest.name in wanted:
            continue
        reason = "no longer in the spec; its volumes are deleted with it"
        destroys = bool(guest.record.claims)
        fields = (FieldChange("state", guest.current.state, None, Effect.DELETE, reason, destructive=destroys),)
        steps = GuestSteps(power=Power.SHUT_DOWN if guest.running else Power.KEEP)
        changes.append(Change(Kind.GUEST, guest.name, Action.DELETE, fields, steps=steps, live=guest))
        ops = [PlannedVolume(VolumeStep(VolumeWork.DELETE, c), "its guest is deleted") for c in guest.record.claims]
        changes.extend(_volume_changes(ops, guest.name))
    wanted_nets = {n.libvirt_name for n in desired.networks}
    for net in live.networks:
        if net.spec.libvirt_name not in wanted_nets and _ours(net.owner, desired):
            fields = (FieldChange("network", net.spec.ipv4, None, Effect.DELETE, "no longer in the spec"),)
            changes.append(Change(Kind.NETWORK, net.spec.libvirt_name, Action.DELETE, fields))
    return changes
