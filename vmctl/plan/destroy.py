"""What `vmctl destroy` removes: this project's and workspace's objects, and nothing else (pure)."""

from __future__ import annotations

from collections.abc import Collection

from vmctl.errors import PlanError
from vmctl.model import ImageSpec, OwnedGuest, OwnedState, Owner, VolumeRef, naming
from vmctl.plan.changes import (
    Action,
    Change,
    Effect,
    FieldChange,
    GuestSteps,
    Kind,
    Plan,
    Power,
    VolumeStep,
    VolumeWork,
)


def destroy_plan(
    live: OwnedState,
    owner: Owner,
    uri: str,
    only: Collection[str] = (),
    images: bool = False,
    spec_images: Collection[ImageSpec] = (),
) -> Plan:
    """Guests (all, or those named), their volumes; networks and pools once nothing of ours needs them.

    With `images`, the base images of the guests destroyed, and every copy of the spec's images (and
    kernels, initrds) left in a pool vmctl made for this project: a guest destroyed earlier without
    --images leaves them there, and this is how they go. Apply keeps any image someone still uses.
    """
    chosen = {g.name for g in live.guests if not only or g.name in only or g.record.hostname in only}
    targets = [g for g in live.guests if g.name in chosen]
    remaining = [g for g in live.guests if g.name not in chosen]
    _refuse_protected(targets)
    changes: list[Change] = []
    for guest in targets:
        changes.extend(guest_deletion(guest))
    if not remaining:
        changes.extend(network_deletions(live, owner))
    if images:
        changes.extend(image_deletions(targets, remaining, live, owner, spec_images))
    if not remaining:
        changes.extend(pool_deletions(live, owner))
    return Plan(owner.project, owner.workspace, uri, tuple(changes))


def unknown_guests(live: OwnedState, only: Collection[str]) -> list[str]:
    known = {g.name for g in live.guests} | {g.record.hostname for g in live.guests}
    return [name for name in only if name not in known]


def _refuse_protected(targets: list[OwnedGuest]) -> None:
    protected = [g.name for g in targets if g.record.prevent_destroy]
    if protected:
        raise PlanError(
            "destroy is refused",
            reasons=[f"guest {name}: prevent_destroy is set" for name in protected],
            hint="set prevent_destroy: false in the spec and apply first",
        )


def guest_deletion(guest: OwnedGuest) -> list[Change]:
    destroys = bool(guest.record.claims)
    state = "running" if guest.active else "stopped"
    fields = (FieldChange("state", state, None, Effect.DELETE, "destroyed", destructive=destroys),)
    steps = GuestSteps(power=Power.SHUT_DOWN if guest.active else Power.KEEP)
    changes = [Change(Kind.GUEST, guest.name, Action.DELETE, fields, steps=steps)]
    for ref in guest.record.claims:
        field = FieldChange("data", None, None, Effect.DELETE, "its guest is destroyed", destructive=True)
        step = VolumeStep(VolumeWork.DELETE, ref)
        changes.append(
            Change(Kind.VOLUME, ref.name, Action.DELETE, (field,), guest=guest.name, pool=ref.pool, volume=step)
        )
    return changes


def network_deletions(live: OwnedState, owner: Owner) -> list[Change]:
    changes = []
    for net in live.networks:
        if owner.same_scope(net.owner):
            field = FieldChange("network", net.spec.ipv4, None, Effect.DELETE, "made by vmctl for this project")
            changes.append(Change(Kind.NETWORK, net.spec.libvirt_name, Action.DELETE, (field,)))
    return changes


def pool_deletions(live: OwnedState, owner: Owner) -> list[Change]:
    changes = []
    for pool in live.pools:
        if owner.same_scope(pool.owner):
            field = FieldChange("path", pool.path, None, Effect.DELETE, "made by vmctl; removed only if empty")
            changes.append(Change(Kind.POOL, pool.name, Action.DELETE, (field,)))
    return changes


def image_deletions(
    targets: list[OwnedGuest],
    remaining: list[OwnedGuest],
    live: OwnedState,
    owner: Owner,
    spec_images: Collection[ImageSpec],
) -> list[Change]:
    def images_of(guests: list[OwnedGuest]) -> set[VolumeRef]:
        disks = {d.image_volume for g in guests for d in g.record.disks if d.image_volume}
        return disks | {ref for g in guests for ref in g.boot_volumes}

    candidates = images_of(targets) | _left_in_own_pools(live, owner, spec_images)
    changes = []
    for ref in sorted(candidates - images_of(remaining), key=lambda r: (r.pool, r.name)):
        if (ref.pool, ref.name) not in live.volumes:
            continue
        field = FieldChange("data", None, None, Effect.DELETE, "--images: kept if another guest still uses it")
        changes.append(Change(Kind.IMAGE, ref.name, Action.DELETE, (field,), pool=ref.pool))
    return changes


def _left_in_own_pools(live: OwnedState, owner: Owner, spec_images: Collection[ImageSpec]) -> set[VolumeRef]:
    """Copies of the spec's images, kernels and initrds in the pools vmctl made for this project."""
    own = {p.name for p in live.pools if owner.same_scope(p.owner)}
    return {
        VolumeRef(pool, name)
        for pool, name in live.volumes
        if pool in own
        and (naming.is_boot_volume(name) or any(naming.is_image_volume(name, i.name, i.format) for i in spec_images))
    }
