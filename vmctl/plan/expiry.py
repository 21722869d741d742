"""Expiry in the plan: set or removed as the spec says, pushed forward only by apply.

An expiry is a lease on what apply made, not a property of it: `vmctl plan` shows one being set or
removed, never one merely moving on with the clock (a plan right after an apply stays empty), and
`vmctl apply`, whose desired state says `renew`, plans it pushed forward on every object it keeps.
"""

from __future__ import annotations

from vmctl.model import DesiredState, Owner
from vmctl.plan.changes import Effect, FieldChange

EXPIRY_REASON = "vmctl gc removes it once this time has passed"


def expiry_change(owner: Owner | None, desired: DesiredState) -> FieldChange | None:
    """Set or removed as the spec says; pushed forward only by apply (`renew`), so a plan stays empty."""
    before, after = owner.expires if owner else "", desired.expires
    if before == after or (before and after and not desired.renew):
        return None
    if not after:
        return FieldChange("expires", before, None, Effect.LIVE, "no expiry any more: gc leaves it alone")
    reason = "renewed by this apply" if before else EXPIRY_REASON
    return FieldChange("expires", before or None, after, Effect.LIVE, reason)
