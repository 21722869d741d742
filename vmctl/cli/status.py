"""`vmctl status`: per guest, its state, drift from the spec, IP addresses, and whether it is ready."""

from functools import partial
from typing import TYPE_CHECKING, Any

import typer

from vmctl.cli.console import Output
from vmctl.cli.options import (
    Connect,
    Hosts,
    Json,
    NoColor,
    Paths,
    VarFiles,
    Vars,
    Workspace,
    global_options,
    var_inputs,
)

_PROBES = 8  # running guests asked at once, per host

if TYPE_CHECKING:
    from vmctl.cli.session import Session
    from vmctl.model import LiveGuest, LiveState
    from vmctl.plan.changes import Change, Plan


def status(
    ctx: typer.Context,
    paths: Paths = None,
    connect: Connect = None,
    workspace: Workspace = None,
    as_json: Json = False,
    no_color: NoColor = False,
    variables: Vars = None,
    var_files: VarFiles = None,
    hosts: Hosts = None,
) -> None:
    """Per guest: its host, state, drift from the spec, IP addresses, and whether it is ready."""
    from vmctl.cli.session import close_all, in_parallel, open_sessions, plan_sessions

    given = global_options(ctx, connect, workspace, no_color)
    inputs = var_inputs(variables, var_files)
    sessions = open_sessions(
        paths or [], given.workspace, given.uri, hosts or [], connect_given=bool(given.connect), inputs=inputs
    )
    try:
        planned = plan_sessions(sessions)
        work = [
            partial(_host_rows, session, plan, live) for session, (plan, live) in zip(sessions, planned, strict=True)
        ]
        rows = [row for host_rows in in_parallel(work) for row in host_rows]
    finally:
        close_all(sessions)
    spec = sessions[0].spec
    if as_json:
        given.output().json({"project": spec.project, "workspace": spec.workspace, "guests": rows})
    else:
        _status_table(rows, given.output())


def _host_rows(session: "Session", plan: "Plan", live: "LiveState") -> list[dict[str, Any]]:
    """The host's guests' rows; the running ones are asked for addresses and readiness together, so a
    guest whose agent is slow to answer does not hold up the others."""
    from concurrent.futures import ThreadPoolExecutor

    host = session.host_name or session.uri
    changes = {c.name: c for c in plan.guest_changes()}
    rows = [
        {"host": host, **_guest_status(session, name, changes.get(name), live.guest(name))}
        for name in _guest_names(session, live)
    ]
    running = [row for row in rows if row["state"] == "running"]
    if running:
        with ThreadPoolExecutor(min(len(running), _PROBES)) as pool:
            for row, probed in zip(running, pool.map(partial(_probe, session), running), strict=True):
                row.update(probed)
    return rows


def _guest_names(session: "Session", live: "LiveState") -> list[str]:
    """The spec's guests in its order, then guests of this project the spec no longer has."""
    names = [g.name for g in session.desired.guests]
    in_spec = set(names)
    return names + [g.name for g in live.guests if g.name not in in_spec]


def _guest_status(session: "Session", name: str, change: "Change | None", read: "LiveGuest | None") -> dict[str, Any]:
    """One guest's row, but for a running guest's addresses and readiness. `read`: the guest as the plan
    read it, just now; a domain of that name that is not this project's own is asked for."""
    row: dict[str, Any] = {"name": name, "state": "absent", "drift": change is not None, "ips": [], "ready": False}
    if read is not None:
        active = read.running is not None
    elif session.backend.domain_exists(name):
        active = session.backend.is_active(name)
    else:
        return row
    row["state"] = "running" if active else "stopped"
    if change is not None:
        row["pending"] = change.action.label
    return row


def _probe(session: "Session", row: dict[str, Any]) -> dict[str, Any]:
    """A running guest's addresses, and whether it is ready."""
    addresses = session.backend.addresses(row["name"])
    return {"ips": sorted({ip for ips in addresses.values() for ip in ips}), "ready": _ready(session, row["name"])}


def _ready(session: "Session", name: str) -> bool:
    """The guest agent answers, and cloud-init has finished if the spec waits for it."""
    from vmctl.apply.waiting import cloud_init_done
    from vmctl.errors import VmctlError

    guest = session.desired.guest(name)
    try:
        session.backend.agent(name, "guest-ping", timeout=2)
        return not (guest and guest.wait.cloud_init) or cloud_init_done(session.backend, name)
    except VmctlError:  # HypervisorError included: no agent yet
        return False


def _status_table(rows: list[dict[str, Any]], out: Output) -> None:
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("GUEST", "HOST", "STATE", "DRIFT", "READY", "IP ADDRESSES"):
        table.add_column(column)
    for row in rows:
        drift = f"yes ({row['pending']})" if row.get("pending") else ("yes" if row["drift"] else "no")
        ready = "yes" if row["ready"] else "no" if row["state"] == "running" else "-"
        table.add_row(row["name"], row["host"], row["state"], drift, ready, ", ".join(row["ips"]) or "-")
    out.out.print(table)
