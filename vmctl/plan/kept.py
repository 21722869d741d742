"""What a guest keeps of what it has: its volumes' names (after a rename, they keep the old domain's
name), the fields its `ignore_changes` names, and the view of a domain about to be renamed.

All pure: the desired guest is adjusted before it is compared, so the comparison, the steps and
apply's definition of the domain all follow from one adjusted GuestSpec.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from vmctl.model import GuestSpec, LiveGuest, VolumeRef
from vmctl.plan.changes import Effect, FieldChange

# ignore_changes names a spec field; these are the plan's paths each one covers.
_COVERS = {"cloud_init": ("cloud_init", "seed")}


def kept_volumes(desired: GuestSpec, live: LiveGuest) -> GuestSpec:
    """A disk keeps the volume the guest owns for it, whatever the domain is called now; so does a
    seed of the same content, and a NIC its MAC when vmctl made it up (from the guest's name).
    Volumes and MACs are derived from the domain's name when made: a rename keeps them."""
    claims = set(live.record.claims)
    have = {d.name: d for d in live.config.disks}

    def kept(disk: Any) -> Any:
        old = have.get(disk.name)
        owned = old is not None and old.pool == disk.pool and VolumeRef(old.pool, old.volume) in claims
        return replace(disk, volume=old.volume) if owned and old is not None and old.volume != disk.volume else disk

    disks = tuple(kept(d) for d in desired.disks)
    seed, old_seed = desired.seed, live.config.seed
    same_content = (
        seed is not None
        and old_seed is not None
        and VolumeRef(old_seed.pool, old_seed.volume) in claims
        and (seed.pool, _content(seed.volume)) == (old_seed.pool, _content(old_seed.volume))
    )
    if same_content and seed is not None and old_seed is not None:
        seed = replace(seed, volume=old_seed.volume)
    macs = {n.name: n.mac for n in live.config.nics}
    nics = tuple(
        replace(n, mac=macs[n.name]) if n.derived_mac and n.name in macs and macs[n.name] != n.mac else n
        for n in desired.nics
    )
    if disks == desired.disks and seed == desired.seed and nics == desired.nics:
        return desired
    return replace(desired, disks=disks, seed=seed, nics=nics)


def _content(seed_volume: str) -> str:
    return seed_volume.rsplit("-seed-", 1)[-1]


def with_ignored(desired: GuestSpec, live: LiveGuest) -> GuestSpec:
    """The desired guest with every field its ignore_changes names taken from what the guest has."""
    current = live.current
    adopted: dict[str, Any] = {}
    for name in desired.ignore_changes:
        if name == "cloud_init":
            adopted.update(seed=current.seed, cloud_init=live.record.cloud_init)
        elif hasattr(current, name):
            adopted[name] = getattr(current, name)
    return replace(desired, **adopted) if adopted else desired


def ignored_fields(desired: GuestSpec, fields: list[FieldChange]) -> tuple[FieldChange, ...]:
    """The differences (of the unadjusted comparison) that ignore_changes covers, shown as ignored."""
    paths = {p for name in desired.ignore_changes for p in _COVERS.get(name, (name,))}
    return tuple(
        replace(f, effect=Effect.IGNORED, reason="ignore_changes", destructive=False)
        for f in fields
        if f.path.split(".")[0] in paths
    )


def renamed_view(old: LiveGuest, desired: GuestSpec) -> LiveGuest:
    """The domain `old` as the plan compares it once renamed for `desired`: its record says the new
    guest and host name (so it is not taken for another guest's domain)."""
    record = replace(old.record, guest=desired.guest, hostname=desired.hostname)
    return replace(old, name=desired.name, record=record)
