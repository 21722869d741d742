"""apply, destroy and status: plan, confirm, lock, execute, report. The CLI only parses arguments."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vmctl.apply.progress import LineReporter, LiveReporter, Reporter
from vmctl.cli.console import Output
from vmctl.errors import AbortedByUser, ApplyError, VmctlError
from vmctl.plan.changes import Plan


@dataclass(frozen=True, slots=True)
class RunOptions:
    """What the user asked apply or destroy to do, beyond the spec."""

    paths: Sequence[str]
    workspace: str | None
    uri_for: Callable[[str | None], str]
    yes: bool = False
    allow_restart: bool = False
    parallel: int = 4
    wait: bool = False
    lock_timeout: float = 300.0
    shutdown_timeout: float = 60.0
    as_json: bool = False


def show_plan(out: Output, plan: Plan, empty: str | None = None) -> None:
    """The plan in colour on a terminal, as plain text anywhere else (without loading rich)."""
    from vmctl.plan.render import render_text

    out.show(render_text(plan, markup=out.styled, empty=empty))


def _reporter(out: Output) -> Reporter:
    if out.interactive and out.color:
        return LiveReporter(out.out)
    return LineReporter()


def _confirm(out: Output, plan: Plan, question: str, yes: bool) -> None:
    if yes:
        return
    if not out.interactive:
        raise VmctlError(
            "not on a terminal, and --yes was not given: nothing was changed", hint="add --yes to apply without asking"
        )
    answer = input(f"{question} [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise AbortedByUser("nothing was changed")


def apply(opts: RunOptions, out: Output) -> None:
    """Plan, show, confirm, then carry out the plan under the lock."""
    from vmctl.apply.lock import apply_lock
    from vmctl.cli.session import open_session, plan_session
    from vmctl.plan import saved as savedplan

    saved = _saved_plan(opts.paths)
    paths = saved["spec_paths"] if saved else opts.paths
    workspace = saved["workspace"] if saved else opts.workspace
    uri_for = (lambda _c: saved["connection"]) if saved else opts.uri_for
    session = open_session(paths, workspace, uri_for)
    try:
        with apply_lock(session.uri, session.spec.project, workspace, opts.lock_timeout, _announce_wait(out)):
            plan, live = plan_session(session)
            if saved:
                savedplan.check_fresh(saved, opts.paths[0], session, live)
            show_plan(out, plan)
            if plan.empty:
                return
            _confirm(out, plan, "Apply these changes?", opts.yes or bool(saved))
            _execute(plan, session, live, opts, out)
    finally:
        session.backend.close()


def _announce_wait(out: Output) -> Callable[[], None]:
    return lambda: out.err.print("waiting for another vmctl to finish with this project and workspace…")


def _saved_plan(paths: Sequence[str]) -> dict[str, Any] | None:
    from vmctl.plan import saved as savedplan

    if len(paths) == 1 and paths[0].endswith(".json") and Path(paths[0]).is_file():
        return savedplan.load(paths[0])
    return None


def _execute(plan: Plan, session: Any, live: Any, opts: RunOptions, out: Output, verb: str = "Apply") -> None:
    from vmctl.apply.executor import execute
    from vmctl.apply.guest import ApplyContext, ApplyOptions

    options = ApplyOptions(opts.allow_restart, opts.wait, opts.shutdown_timeout)
    ctx = ApplyContext(session.backend, session.desired, session.host, session.pool_paths(live), options)
    reporter = _reporter(out)
    try:
        report = execute(plan, ctx, reporter, opts.parallel)
    except KeyboardInterrupt:
        reporter.close()
        out.error("interrupted: work in flight stops here", ["run the same command again: it finishes the job"])
        sys.stdout.flush()
        os._exit(130)  # worker threads may be inside libvirt calls; a re-run converges from any point
    reporter.close()
    _summary(report, out, verb)


def _summary(report: Any, out: Output, verb: str) -> None:
    done = [o for o in report.outcomes if o.ok]
    for outcome in done:
        for warning in outcome.warnings:
            out.say(f"[yellow]note[/]: {outcome.subject}: {warning}")
    if report.ok:
        out.say(f"[bold green]{verb} complete[/]: {len(done)} change(s) made.")
        return
    failed = report.failed
    raise ApplyError(
        f"{len(failed)} change(s) failed, {len(done)} succeeded",
        reasons=[line for o in failed for line in (f"{o.subject}: {o.summary}", *(f"  {d}" for d in o.details))],
        hint="fix the cause and run apply again: what succeeded is not redone",
    )


def destroy(opts: RunOptions, only: Sequence[str], images: bool, out: Output) -> None:
    """Remove what vmctl made for this project and workspace (or only the named guests)."""
    from vmctl.apply.lock import apply_lock
    from vmctl.cli.session import open_session
    from vmctl.plan.destroy import destroy_plan, unknown_guests

    session = open_session(opts.paths, opts.workspace, opts.uri_for, resolve=False)
    try:
        with apply_lock(session.uri, session.spec.project, opts.workspace, opts.lock_timeout, _announce_wait(out)):
            live = session.backend.read_owned(session.owner, boot_volumes=images)
            missing = unknown_guests(live, only)
            if missing:
                raise VmctlError(f"no guest of this project named {', '.join(missing)}")
            plan = destroy_plan(live, session.owner, session.uri, only, images)
            show_plan(out, plan, empty="Nothing to destroy.")
            if plan.empty:
                return
            _confirm(out, plan, "Destroy these?", opts.yes)
            _execute(plan, session, live, opts, out, "Destroy")
    finally:
        session.backend.close()


def status(opts: RunOptions, out: Output) -> None:
    """Per guest: state, drift from the spec, IP addresses, readiness."""
    from vmctl.cli.session import open_session, plan_session

    session = open_session(opts.paths, opts.workspace, opts.uri_for)
    try:
        plan, live = plan_session(session)
        rows = [_guest_status(session, plan, name) for name in _status_names(session, live)]
    finally:
        session.backend.close()
    if opts.as_json:
        out.json({"project": session.spec.project, "workspace": session.spec.workspace, "guests": rows})
        return
    _status_table(rows, out)


def _status_names(session: Any, live: Any) -> list[str]:
    names = [g.name for g in session.desired.guests]
    return names + [g.name for g in live.guests if g.name not in names]


def _guest_status(session: Any, plan: Plan, name: str) -> dict[str, Any]:
    from vmctl.apply.waiting import cloud_init_done
    from vmctl.errors import HypervisorError

    change = next((c for c in plan.guest_changes() if c.name == name), None)
    row: dict[str, Any] = {"name": name, "state": "absent", "drift": change is not None, "ips": [], "ready": False}
    if not session.backend.domain_exists(name):
        return row
    active = session.backend.is_active(name)
    row["state"] = "running" if active else "stopped"
    if change is not None:
        row["pending"] = change.action.label
    if not active:
        return row
    addresses = session.backend.addresses(name)
    row["ips"] = sorted({ip for ips in addresses.values() for ip in ips})
    guest = session.desired.guest(name)
    try:
        session.backend.agent(name, "guest-ping", timeout=2)
        row["ready"] = not (guest and guest.wait.cloud_init) or cloud_init_done(session.backend, name)
    except (HypervisorError, VmctlError):
        row["ready"] = False
    return row


def _status_table(rows: list[dict[str, Any]], out: Output) -> None:
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("GUEST", "STATE", "DRIFT", "READY", "IP ADDRESSES"):
        table.add_column(column)
    for row in rows:
        drift = f"yes ({row['pending']})" if row.get("pending") else ("yes" if row["drift"] else "no")
        ready = "yes" if row["ready"] else "no" if row["state"] == "running" else "-"
        table.add_row(row["name"], row["state"], drift, ready, ", ".join(row["ips"]) or "-")
    out.out.print(table)
