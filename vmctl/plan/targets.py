"""`--target`: the desired state narrowed to some guests and the images, networks and pools they need."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

from vmctl.errors import PlanError
from vmctl.model import DesiredState, GuestSpec


def chosen_guests(desired: DesiredState, targets: Collection[str]) -> tuple[GuestSpec, ...]:
    """The guests a target names: by domain name, by instance name (web-2), or all instances (web)."""
    chosen = [g for g in desired.guests if {g.name, g.hostname, g.guest} & set(targets)]
    known = {n for g in desired.guests for n in (g.name, g.hostname, g.guest)}
    unknown = sorted(set(targets) - known)
    if unknown:
        names = ", ".join(sorted({g.hostname for g in desired.guests})) or "none"
        raise PlanError(f"--target: no guest named {', '.join(unknown)} in the spec", hint=f"guests: {names}")
    return tuple(chosen)


def narrowed(desired: DesiredState, targets: Collection[str]) -> DesiredState:
    """Only the targeted guests, and the images, networks and pools they need."""
    guests = chosen_guests(desired, targets)
    images = {(d.image, d.image_sha256) for g in guests for d in g.disks if d.image}
    boot = {f.volume for g in guests if g.boot for f in (g.boot.kernel, g.boot.initrd) if f}
    uploads = tuple(u for u in desired.uploads if (u.name, u.sha256) in images or u.volume in boot)
    networks = {n.source for g in guests for n in g.nics if n.kind == "network"}
    pools = {g.pool for g in guests} | {d.pool for g in guests for d in g.disks}
    pools |= {g.seed.pool for g in guests if g.seed} | {u.pool for u in uploads}
    return replace(
        desired,
        guests=guests,
        uploads=uploads,
        networks=tuple(n for n in desired.networks if n.libvirt_name in networks),
        pools=tuple(p for p in desired.pools if p.name in pools),
        moves=tuple(m for m in desired.moves if m.new in {g.name for g in guests}),
    )
