"""One spec over several hosts: what one host's plan means for another's. Pure.

Each host is planned on its own (`make_plan`); a guest the spec has moved to another host then
shows as deleted on one and created on the other. Here that pair is named for what it is, a move,
which is a replace (the guest is made anew there; its disks' data is not carried over), refused by
`prevent_destroy`, and refused when --host leaves out one of the two hosts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from vmctl.errors import PlanError
from vmctl.plan.changes import Action, Change, Kind, Plan

MOVE = "a move is a replace: the guest is made anew there, its disks' data is not carried over"


def across_hosts(
    plans: Sequence[Plan], placement: Mapping[str, str], elsewhere: Mapping[str | None, Mapping[str, str]] | None = None
) -> list[Plan]:
    """The per-host plans, with every move between them named on both sides; raises PlanError
    when a move cannot be planned as a whole or is forbidden, or when a plan would make a second
    guest of one the record of puts on its host while another host has it (`elsewhere`: per host,
    the guests found there whose record puts them on another host)."""
    by_host = {p.host: p for p in plans}
    moves: dict[str, tuple[str, str]] = {}  # guest -> (from host, to host)
    problems = _second_copies(plans, elsewhere or {})
    for plan in plans:
        for change in plan.guest_changes():
            to = placement.get(change.name)
            if change.action is not Action.DELETE or plan.host is None or to is None or to == plan.host:
                continue
            moves[change.name] = (plan.host, to)
            if to not in by_host:
                problems.append(
                    f"guest {change.name}: the spec moves it from host {plan.host} to host {to}, "
                    f"which --host leaves out"
                )
            elif _protected_there(by_host[to], change.name):
                problems.append(
                    f"guest {change.name}: prevent_destroy is set, but moving it from host "
                    f"{plan.host} to host {to} replaces it"
                )
    if problems:
        raise PlanError(
            "the plan is refused",
            reasons=problems,
            hint="plan the hosts of a move together; a guest with prevent_destroy stays where it is"
            + (f"; {_SECOND_COPY_HINT}" if any("second one" in p for p in problems) else ""),
        )
    return [_noted(plan, moves) for plan in plans]


_SECOND_COPY_HINT = (
    "a guest is found on a host its record does not name when it was moved outside vmctl (move it "
    "back) or when two hosts of the spec are one hypervisor (name it once in hosts:)"
)


def _second_copies(plans: Sequence[Plan], elsewhere: Mapping[str | None, Mapping[str, str]]) -> list[str]:
    """A guest that one host's plan creates while another host has it, recorded for the first."""
    held: dict[tuple[str, str | None], str | None] = {
        (guest, recorded): found for found, guests in elsewhere.items() for guest, recorded in guests.items()
    }
    return [
        f"guest {change.name}: host {held[(change.name, plan.host)]} has it, and its record puts it on "
        f"host {plan.host}: vmctl will not make a second one there"
        for plan in plans
        for change in plan.guest_changes()
        if change.action is Action.CREATE and (change.name, plan.host) in held
    ]


def _protected_there(plan: Plan, guest: str) -> bool:
    created = next((c for c in plan.guest_changes() if c.name == guest), None)
    return created is not None and created.desired is not None and created.desired.prevent_destroy


def _noted(plan: Plan, moves: Mapping[str, tuple[str, str]]) -> Plan:
    changes = tuple(_note_move(c, plan.host, moves) for c in plan.changes)
    return replace(plan, changes=changes)


def _note_move(change: Change, host: str | None, moves: Mapping[str, tuple[str, str]]) -> Change:
    if change.kind is not Kind.GUEST or change.name not in moves:
        return change
    source, to = moves[change.name]
    if host == source and change.action is Action.DELETE:
        return replace(change, notes=(*change.notes, f"moves to host {to}: {MOVE}"))
    if host == to and change.action is Action.CREATE:
        return replace(change, notes=(*change.notes, f"moves from host {source}: {MOVE}"))
    return change


def total(plans: Sequence[Plan]) -> Plan:
    """All hosts' changes as one plan, for counting (each change keeps its plan's host in `hosts`).

    Every host's plan has the same --target list (see `vmctl.cli.session.plan_session`)."""
    first = plans[0]
    changes = tuple(c for p in plans for c in p.changes)
    ignored = tuple(c for p in plans for c in p.ignored)
    return Plan(first.project, first.workspace, "", changes, targets=first.targets, ignored=ignored)


def moved(plans: Sequence[Plan]) -> int:
    """How many guests move between hosts."""
    return sum(
        1
        for p in plans
        for c in p.guest_changes()
        if c.action is Action.DELETE and any(n.startswith("moves to host") for n in c.notes)
    )
