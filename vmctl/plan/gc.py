"""What `vmctl gc` removes: expired objects of every project and workspace, as destroy would (pure).

An object has expired when the expiry in its ownership record has passed. Nothing without an
expiry, nothing foreign (no record) and no guest with prevent_destroy is ever in a gc plan. A
workspace's networks and pools go only once none of its guests is left, as with destroy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from vmctl.model import OwnedGuest, OwnedState, Owner
from vmctl.plan.changes import Change, Plan
from vmctl.plan.destroy import guest_deletion, image_deletions, network_deletions, pool_deletions

GC_SCOPE = "every project and workspace"


@dataclass(frozen=True, slots=True)
class Workspace:
    """One project and workspace on the host, as its ownership records tell."""

    owner: Owner
    guests: int
    networks: int
    created: str  # the earliest creation recorded; "" if none is
    expires: str  # the latest expiry recorded; "" when something of it never expires

    def expired(self, now: str) -> bool:
        return bool(self.expires) and self.expires <= now


def workspaces(owned: OwnedState) -> list[Workspace]:
    """Every project and workspace that owns a guest or a network, in name order."""
    scopes: dict[tuple[str, str], list[Owner]] = {}
    counts: dict[tuple[str, str], list[int]] = {}
    for owner, slot in [(g.record.owner, 0) for g in owned.guests] + [(n.owner, 1) for n in owned.networks if n.owner]:
        key = (owner.project, owner.workspace or "")
        scopes.setdefault(key, []).append(owner)
        counts.setdefault(key, [0, 0])[slot] += 1
    return [_summary(scopes[key], counts[key]) for key in sorted(scopes)]


def _summary(owners: list[Owner], counts: list[int]) -> Workspace:
    created = min((o.created for o in owners if o.created), default="")
    expires = "" if any(not o.expires for o in owners) else max(o.expires for o in owners)
    return Workspace(owners[0].scope, counts[0], counts[1], created, expires)


def expired_scopes(owned: OwnedState, now: str) -> list[Owner]:
    """The projects and workspaces with something expired: what gc reads closely, under their locks."""
    found = {g.record.owner.scope for g in owned.guests if g.record.owner.expired(now)}
    found |= {n.owner.scope for n in owned.networks if n.owner and n.owner.expired(now)}
    return sorted(found, key=lambda o: (o.project, o.workspace or ""))


def protected(owned: OwnedState, now: str) -> list[str]:
    """Expired guests gc keeps because they have prevent_destroy."""
    return [g.name for g in owned.guests if g.record.owner.expired(now) and g.record.prevent_destroy]


def gc_plan(states: Sequence[tuple[Owner, OwnedState]], now: str, uri: str, images: bool = False) -> Plan:
    """For each scope read (its owner and what it owns), the removal of what has expired."""
    changes: list[Change] = []
    for owner, live in states:
        changes.extend(_scope_removal(owner, live, now, images))
    return Plan("", None, uri, tuple(changes), scope=GC_SCOPE)


def _scope_removal(owner: Owner, live: OwnedState, now: str, images: bool) -> list[Change]:
    targets = [g for g in live.guests if _removable(g, now)]
    remaining = [g for g in live.guests if not _removable(g, now)]
    changes: list[Change] = []
    for guest in targets:
        changes.extend(_noted(c, guest) for c in guest_deletion(guest))
    if images:
        changes.extend(image_deletions(targets, remaining, live, owner, ()))
    if remaining:
        return changes
    expired = [n for n in live.networks if owner.same_scope(n.owner) and n.owner and n.owner.expired(now)]
    kept = [n for n in live.networks if owner.same_scope(n.owner) and n not in expired]
    changes.extend(network_deletions(OwnedState(networks=tuple(expired)), owner))
    if not kept:
        changes.extend(pool_deletions(live, owner))
    return changes


def _removable(guest: OwnedGuest, now: str) -> bool:
    return guest.record.owner.expired(now) and not guest.record.prevent_destroy


def _noted(change: Change, guest: OwnedGuest) -> Change:
    owner = guest.record.owner
    if change.guest is not None:  # its volumes: the guest's change says whose and why
        return change
    where = f"project {owner.project}" + (f", workspace {owner.workspace}" if owner.workspace else "")
    return replace(change, notes=(*change.notes, f"{where}: expired at {owner.expires}"))
