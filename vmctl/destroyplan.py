"""What `vmctl destroy` removes: this project's and workspace's objects, and nothing else (pure)."""

from __future__ import annotations

from collections.abc import Collection

from vmctl.errors import PlanError
from vmctl.model import LiveGuest, LiveState, Owner, VolumeRef
from vmctl.plan import Action, Change, Effect, FieldChange, Plan


def destroy_plan(live: LiveState, owner: Owner, uri: str, only: Collection[str] = (), images: bool = False) -> Plan:
    """Guests (all, or those named), their volumes; networks and pools once nothing of ours needs them."""
    targets = [g for g in live.guests if not only or g.name in only or g.record.hostname in only]
    _refuse_protected(targets)
    changes: list[Change] = []
    for guest in targets:
        changes.extend(_guest_deletion(guest))
    remaining = [g for g in live.guests if g not in targets]
    if not remaining:
        changes.extend(_network_deletions(live, owner))
    if images:
        changes.extend(_image_deletions(targets, remaining, live))
    if not remaining:
        changes.extend(_pool_deletions(live, owner))
    return Plan(owner.project, owner.workspace, uri, tuple(changes))


def unknown_guests(live: LiveState, only: Collection[str]) -> list[str]:
    known = {g.name for g in live.guests} | {g.record.hostname for g in live.guests}
    return [name for name in only if name not in known]


def _refuse_protected(targets: list[LiveGuest]) -> None:
    protected = [g.name for g in targets if g.record.prevent_destroy]
    if protected:
        raise PlanError(
            "destroy is refused",
            [f"guest {name}: prevent_destroy is set" for name in protected],
            "set prevent_destroy: false in the spec and apply first",
        )


def _guest_deletion(guest: LiveGuest) -> list[Change]:
    destroys = bool(guest.record.claims)
    fields = (FieldChange("state", guest.current.state, None, Effect.DELETE, "destroyed", destructive=destroys),)
    changes = [Change("guest", guest.name, Action.DELETE, fields, live=guest)]
    for ref in guest.record.claims:
        field = FieldChange("data", None, None, Effect.DELETE, "its guest is destroyed", destructive=True)
        changes.append(Change("volume", ref.name, Action.DELETE, (field,), guest=guest.name, pool=ref.pool))
    return changes


def _network_deletions(live: LiveState, owner: Owner) -> list[Change]:
    changes = []
    for net in live.networks:
        if net.owner and (net.owner.project, net.owner.workspace) == (owner.project, owner.workspace):
            field = FieldChange("network", net.spec.ipv4, None, Effect.DELETE, "made by vmctl for this project")
            changes.append(Change("network", net.spec.libvirt_name, Action.DELETE, (field,)))
    return changes


def _pool_deletions(live: LiveState, owner: Owner) -> list[Change]:
    changes = []
    for pool in live.pools:
        if pool.owner and (pool.owner.project, pool.owner.workspace) == (owner.project, owner.workspace):
            field = FieldChange("path", pool.path, None, Effect.DELETE, "made by vmctl; removed only if empty")
            changes.append(Change("pool", pool.name, Action.DELETE, (field,)))
    return changes


def _image_deletions(targets: list[LiveGuest], remaining: list[LiveGuest], live: LiveState) -> list[Change]:
    def images_of(guests: list[LiveGuest]) -> set[VolumeRef]:
        refs = {d.image_volume for g in guests for d in g.record.disks if d.image_volume}
        for guest in guests:
            boot = guest.config.boot
            for file in (boot.kernel, boot.initrd) if boot else ():
                if file is not None:
                    refs.add(VolumeRef(guest.config.pool, file.volume))
        return refs

    changes = []
    for ref in sorted(images_of(targets) - images_of(remaining), key=lambda r: (r.pool, r.name)):
        if (ref.pool, ref.name) not in live.volumes:
            continue
        field = FieldChange("data", None, None, Effect.DELETE, "--images: kept if another guest still uses it")
        changes.append(Change("image", ref.name, Action.DELETE, (field,), pool=ref.pool))
    return changes
