"""The planner: (desired state, live state) -> Plan. Pure: no I/O, no libvirt.

Order of changes is the order apply follows: pools, images, networks, guests (with their volumes),
then deletions of what the spec no longer has.
"""

from __future__ import annotations

from vmctl.cloudinit.diff import mask
from vmctl.errors import PlanError
from vmctl.model.types import DesiredState, GuestSpec, LiveGuest, LiveState, NetworkSpec, Owner, VolumeRef
from vmctl.plan.changes import Action, Change, Effect, FieldChange, Plan
from vmctl.plan.guest import GuestDiff, VolumeOp, diff_guest


def make_plan(desired: DesiredState, live: LiveState, uri: str = "") -> Plan:
    """Every change needed to make `live` look like `desired`; raises PlanError if a guard forbids it."""
    conflicts = _conflicts(desired, live)
    changes = [
        *_pool_changes(desired, live, conflicts),
        *_upload_changes(desired, live),
        *_network_changes(desired, live, conflicts),
    ]
    for guest in desired.guests:
        changes.extend(_guest_changes(guest, live))
    changes.extend(_deletions(desired, live))
    _check_guards(changes, conflicts)
    return Plan(desired.project, desired.workspace, uri, tuple(changes), desired)


# -- conflicts and guards ---------------------------------------------------------------------------


def _conflicts(desired: DesiredState, live: LiveState) -> list[str]:
    found = []
    for guest in desired.guests:
        if live.guest(guest.name) is None and guest.name in live.other_domains:
            who = live.other_domains[guest.name]
            found.append(f"guest {guest.name}: a domain with that name exists and is {who}; vmctl will not touch it")
    for net in desired.networks:
        existing = live.network(net.libvirt_name)
        if existing and not _ours(existing.owner, desired):
            found.append(f"network {net.libvirt_name}: exists and is not this project's; vmctl will not touch it")
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


def _ours(owner: Owner | None, desired: DesiredState) -> bool:
    return desired.owner.same_scope(owner)


def _check_guards(changes: list[Change], conflicts: list[str]) -> None:
    problems = list(conflicts)
    hint = None
    for change in changes:
        protected = change.kind == "guest" and _protected(change)
        if protected and change.action in (Action.REPLACE, Action.DELETE):
            problems.append(
                f"guest {change.name}: prevent_destroy is set, but this plan would {change.action.label} it"
            )
            hint = _unprotect_hint(change)
    if problems:
        raise PlanError("the plan is refused", problems, hint)


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
            changes.append(Change("pool", pool.name, Action.CREATE, fields))
        elif not existing.active and existing.path == pool.path:
            fields = (FieldChange("active", False, True, Effect.LIVE, "start the pool"),)
            changes.append(Change("pool", pool.name, Action.UPDATE, fields))
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
            FieldChange("size", None, upload.size, Effect.CREATE, "bytes to upload", unit="bytes"),
        )
        changes.append(Change("image", upload.volume, Action.CREATE, fields, pool=upload.pool))
    return changes


def _network_summary(net: NetworkSpec) -> tuple[FieldChange, ...]:
    return (
        FieldChange("mode", None, net.mode, Effect.CREATE),
        FieldChange("ipv4", None, net.ipv4, Effect.CREATE),
        FieldChange("dhcp", None, net.dhcp, Effect.CREATE),
    )


def _network_changes(desired: DesiredState, live: LiveState, conflicts: list[str]) -> list[Change]:
    changes = []
    for net in desired.networks:
        existing = live.network(net.libvirt_name)
        if existing is None:
            changes.append(Change("network", net.libvirt_name, Action.CREATE, _network_summary(net)))
            continue
        if not _ours(existing.owner, desired):
            continue  # reported as a conflict
        fields = [
            FieldChange(
                name,
                getattr(existing.spec, name),
                getattr(net, name),
                Effect.REPLACE,
                "the network is recreated; guests on it lose their link until restarted",
            )
            for name in ("mode", "ipv4", "dhcp")
            if getattr(existing.spec, name) != getattr(net, name)
        ]
        if fields:
            changes.append(Change("network", net.libvirt_name, Action.REPLACE, tuple(fields)))
        elif not existing.active or not existing.autostart:
            fields = [FieldChange("active", existing.active, True, Effect.LIVE, "start the network and autostart it")]
            changes.append(Change("network", net.libvirt_name, Action.UPDATE, tuple(fields)))
    return changes


# -- guests ----------------------------------------------------------------------------------------------


def _guest_changes(desired: GuestSpec, live: LiveState) -> list[Change]:
    current = live.guest(desired.name)
    if current is None:
        if desired.name in live.other_domains:
            return []  # reported as a conflict
        return _created(desired, None)
    if current.record.creating:
        return _created(desired, current)
    diff = diff_guest(desired, current)
    if not diff.fields and not diff.volumes:
        return []
    action = _guest_action(diff)
    change = Change("guest", desired.name, action, tuple(diff.fields), tuple(diff.notes), desired=desired, live=current)
    return [change, *_volume_changes(diff.volumes, desired.name)]


def _guest_action(diff: GuestDiff) -> Action:
    effects = {f.effect for f in diff.fields}
    if Effect.REPLACE in effects:
        return Action.REPLACE
    if Effect.RESTART in effects:
        return Action.UPDATE_RESTART
    return Action.UPDATE


def _created(desired: GuestSpec, resumed: LiveGuest | None) -> list[Change]:
    notes = ("an earlier apply was interrupted while creating it: its volumes are made anew",) if resumed else ()
    change = Change(
        "guest", desired.name, Action.CREATE, _creation_fields(desired), notes, desired=desired, live=resumed
    )
    volumes = [VolumeOp(VolumeRef(d.pool, d.volume), "create", d.size) for d in desired.disks]
    if desired.seed:
        volumes.append(VolumeOp(VolumeRef(desired.seed.pool, desired.seed.volume), "create"))
    return [change, *_volume_changes(volumes, desired.name)]


def _creation_fields(guest: GuestSpec) -> tuple[FieldChange, ...]:
    def field(path: str, value: object, unit: str | None = None, sensitive: bool = False) -> FieldChange:
        return FieldChange(path, None, value, Effect.CREATE, unit=unit, sensitive=sensitive)

    fields = [
        field("accel", guest.accel),
        field("machine", guest.machine),
        field("firmware", guest.firmware),
        field("cpus", guest.cpus),
        field("max_cpus", guest.max_cpus),
        field("memory", guest.memory, "bytes"),
        field("max_memory", guest.max_memory, "bytes"),
        field("state", guest.state),
    ]
    if guest.autostart:
        fields.append(field("autostart", True))
    for disk in guest.disks:
        summary = {"size": disk.size, "bus": disk.bus, **({"image": disk.image} if disk.image else {})}
        fields.append(field(f"disks.{disk.name}", summary, "disk"))
    for nic in guest.nics:
        fields.append(
            field(
                f"nics.{nic.name}", {"kind": nic.kind, "source": nic.source, "mac": nic.mac, "model": nic.model}, "nic"
            )
        )
    for share in guest.shares:
        fields.append(field(f"shares.{share.name}", {"source": share.source, "readonly": share.readonly}))
    if guest.cloud_init is not None:
        fields.extend(_cloud_init_fields(guest))
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


def _volume_changes(ops: list[VolumeOp], guest: str) -> list[Change]:
    changes = []
    for op in ops:
        if op.op == "create":
            fields = (FieldChange("size", None, op.size, Effect.CREATE, op.reason, unit="bytes"),) if op.size else ()
            changes.append(Change("volume", op.ref.name, Action.CREATE, fields, guest=guest, pool=op.ref.pool))
        elif op.op == "grow":
            fields = (FieldChange("size", op.before, op.size, Effect.LIVE, "grown", unit="bytes"),)
            changes.append(Change("volume", op.ref.name, Action.UPDATE, fields, guest=guest, pool=op.ref.pool))
        elif op.op == "recreate":
            fields = (FieldChange("data", None, None, Effect.REPLACE, op.reason, destructive=True),)
            changes.append(Change("volume", op.ref.name, Action.REPLACE, fields, guest=guest, pool=op.ref.pool))
        else:
            fields = (FieldChange("data", None, None, Effect.DELETE, op.reason, destructive=True),)
            changes.append(Change("volume", op.ref.name, Action.DELETE, fields, guest=guest, pool=op.ref.pool))
    return changes


# -- deletions ---------------------------------------------------------------------------------------------


def _deletions(desired: DesiredState, live: LiveState) -> list[Change]:
    wanted = {g.name for g in desired.guests}
    changes: list[Change] = []
    for guest in live.guests:
        if guest.name in wanted:
            continue
        reason = "no longer in the spec; its volumes are deleted with it"
        destroys = bool(guest.record.claims)
        fields = (FieldChange("state", guest.current.state, None, Effect.DELETE, reason, destructive=destroys),)
        changes.append(Change("guest", guest.name, Action.DELETE, fields, live=guest))
        ops = [VolumeOp(c, "delete", reason="its guest is deleted") for c in guest.record.claims]
        changes.extend(_volume_changes(ops, guest.name))
    wanted_nets = {n.libvirt_name for n in desired.networks}
    for net in live.networks:
        if net.spec.libvirt_name not in wanted_nets and _ours(net.owner, desired):
            fields = (FieldChange("network", net.spec.ipv4, None, Effect.DELETE, "no longer in the spec"),)
            changes.append(Change("network", net.spec.libvirt_name, Action.DELETE, fields))
    return changes
