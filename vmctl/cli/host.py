"""The commands that look across the whole host, every project and workspace, with no spec:
`vmctl gc` (remove what has expired) and `vmctl workspaces` (what is there, and until when).

The host is `--connect URI`, or `--host NAME`: one of the `hosts:` of a spec (`-f PATH`, default
./vmctl.yaml), read only for that host's URI."""

from __future__ import annotations

import time
from contextlib import ExitStack
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vmctl.cli.console import Output
from vmctl.cli.options import Connect, GlobalOptions, Json, NoColor, SpecPaths, global_options
from vmctl.errors import VmctlError

if TYPE_CHECKING:
    from vmctl.hypervisor import Hypervisor
    from vmctl.model import OwnedState, Owner

DryRun = Annotated[bool, typer.Option("--dry-run", help="Only show what has expired and would be removed.")]
GcImages = Annotated[
    bool, typer.Option("--images", help="Also delete base-image volumes the removed guests used and no guest uses.")
]
HostName = Annotated[
    str | None,
    typer.Option("--host", metavar="NAME", help="A host of the spec's hosts: (the spec from -f).", show_default=False),
]
GcParallel = Annotated[
    int, typer.Option("--parallel", "-p", min=1, max=64, metavar="N", help="Guests removed at once.")
]


def gc(
    ctx: typer.Context,
    connect: Connect = None,
    host: HostName = None,
    spec_paths: SpecPaths = None,
    dry_run: DryRun = False,
    images: GcImages = False,
    parallel: GcParallel = 4,
    no_color: NoColor = False,
) -> None:
    """Remove expired guests, volumes, networks and empty pools of every project and workspace.

    What has no expiry, what vmctl did not make and guests with prevent_destroy are never touched.
    It asks nothing (it is meant for cron and CI); --dry-run only shows.
    """
    from vmctl.hypervisor import connect as open_connection
    from vmctl.units import utc_timestamp

    given = global_options(ctx, connect, None, no_color)
    out = given.output()
    uri = _host_uri(given, connect, host, spec_paths)
    backend = open_connection(uri)
    try:
        now = utc_timestamp(time.time())
        _collect(backend, uri, now, images, parallel, dry_run, out)
    finally:
        backend.close()


def _collect(backend: Hypervisor, uri: str, now: str, images: bool, parallel: int, dry_run: bool, out: Output) -> None:
    """Read every record, lock each expired workspace (skipping one being applied), read it again, plan, act."""
    from vmctl.apply.lock import apply_lock
    from vmctl.cli.planning import show_plan
    from vmctl.errors import LockTimeout
    from vmctl.plan.gc import expired_scopes, gc_plan, protected

    everything = backend.read_owned(None)
    with ExitStack() as locks:
        states: list[tuple[Owner, OwnedState]] = []
        for scope in expired_scopes(everything, now):
            try:
                locks.enter_context(apply_lock([(uri, backend)], scope.project, scope.workspace, 0))
            except LockTimeout:
                out.say(f"[yellow]note[/]: {_where(scope)}: another vmctl is applying to it; left for the next gc")
                continue
            states.append((scope, backend.read_owned(scope, boot_volumes=images)))
        plan = gc_plan(states, now, uri, images)
        show_plan(out, plan, empty="Nothing has expired.")
        for name in protected(everything, now):
            out.say(f"[yellow]note[/]: guest {name} has expired but has prevent_destroy: kept")
        if dry_run or plan.empty:
            return
        _remove(backend, plan, states, parallel, out)


def _remove(backend: Hypervisor, plan: Any, states: list[tuple[Owner, OwnedState]], parallel: int, out: Output) -> None:
    from vmctl.apply.context import ApplyContext, ApplyOptions
    from vmctl.apply.executor import execute
    from vmctl.cli.changing import reporter_for, summarize
    from vmctl.model import DesiredState, HostFacts

    pool_paths = {p.name: p.path for _owner, live in states for p in live.pools}
    nobody = DesiredState("", None, (), (), (), ())
    ctx = ApplyContext(backend, nobody, HostFacts(log_dir=backend.log_dir()), pool_paths, ApplyOptions())
    reporter = reporter_for(out)
    report = execute(plan, ctx, reporter, parallel)
    reporter.close()
    summarize(report.outcomes, out, "Garbage collection")


def _where(owner: Owner) -> str:
    return f"project {owner.project}" + (f", workspace {owner.workspace}" if owner.workspace else "")


def workspaces(
    ctx: typer.Context,
    connect: Connect = None,
    host: HostName = None,
    spec_paths: SpecPaths = None,
    as_json: Json = False,
    no_color: NoColor = False,
) -> None:
    """Every project and workspace on the host: guests, networks, creation, expiry, and whether expired."""
    from vmctl.hypervisor import connect as open_connection
    from vmctl.plan.gc import workspaces as read_workspaces
    from vmctl.units import utc_timestamp

    given = global_options(ctx, connect, None, no_color)
    uri = _host_uri(given, connect, host, spec_paths)
    backend = open_connection(uri)
    try:
        found = read_workspaces(backend.read_owned(None))
    finally:
        backend.close()
    now = utc_timestamp(time.time())
    rows = [
        {
            "project": w.owner.project,
            "workspace": w.owner.workspace,
            "guests": w.guests,
            "networks": w.networks,
            "created": w.created or None,
            "expires": w.expires or None,
            "expired": w.expired(now),
        }
        for w in found
    ]
    out = given.output()
    if as_json:
        out.json({"connection": uri, "now": now, "workspaces": rows})
    else:
        _table(rows, out)


def _table(rows: list[dict[str, Any]], out: Output) -> None:
    """Plain columns, never cut short: a timestamp is read whole or not at all."""
    if not rows:
        out.say("No project of vmctl's on this host.")
        return
    lines = [("PROJECT", "WORKSPACE", "GUESTS", "CREATED", "EXPIRES", "EXPIRED")]
    for row in rows:
        expired = "yes" if row["expired"] else "no" if row["expires"] else "-"
        created, expires = row["created"] or "-", row["expires"] or "never"
        lines.append((row["project"], row["workspace"] or "-", str(row["guests"]), created, expires, expired))
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    for line in lines:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())


def _host_uri(given: GlobalOptions, connect: str | None, host: str | None, spec_paths: list[str] | None) -> str:
    """--connect URI, or the URI a spec gives --host NAME; else the usual default connection."""
    if host is None:
        return given.uri(None)
    if connect is not None:
        raise VmctlError("give --connect URI or --host NAME, not both")
    from vmctl.spec.load import load_spec

    uris = {h.name: h.uri for h in load_spec(spec_paths or []).hosts}
    if host not in uris:
        known = ", ".join(sorted(uris)) or "none: the spec has no hosts:"
        raise VmctlError(f"no host named {host} in the spec", hint=f"its hosts: {known}")
    return uris[host]
