"""The commands that change the hypervisor, apply and destroy: plan, show, confirm, then carry out
the plan under the project's lock."""

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vmctl.cli.console import Output
from vmctl.cli.options import (
    Connect,
    ExpiresAfter,
    Hosts,
    NoColor,
    SpecPaths,
    Targets,
    VarFiles,
    Vars,
    Workspace,
    global_options,
    var_inputs,
)
from vmctl.cli.planning import show_plan
from vmctl.errors import AbortedByUser, ApplyError, VmctlError
from vmctl.failpoints import failpoint

if TYPE_CHECKING:
    from vmctl.apply.lock import Ready
    from vmctl.apply.progress import Reporter
    from vmctl.cli.session import Session
    from vmctl.model import LiveState, OwnedState
    from vmctl.plan.changes import Plan
    from vmctl.spec.variables import VarInputs
    from vmctl.units import Range

SpecsOrSavedPlan = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="PATH",
        help="Spec files or directories (all *.yaml/*.yml in them). Default: ./vmctl.yaml. "
        "Or one saved plan (vmctl plan --out).",
        show_default=False,
    ),
]
Guests = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="GUEST",
        help="Guests to destroy (default: all of this project and workspace). Never a spec file: that is -f.",
        show_default=False,
    ),
]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (for scripts and CI).")]
Parallel = Annotated[
    int, typer.Option("--parallel", "-p", min=1, max=64, metavar="N", help="Guests worked on at once.")
]
LockTimeout = Annotated[
    str,
    typer.Option(
        "--lock-timeout",
        metavar="DURATION",
        help="How long to wait for another vmctl working on this project and workspace.",
    ),
]
ShutdownTimeout = Annotated[
    str,
    typer.Option(
        "--shutdown-timeout",
        metavar="DURATION",
        help="How long a guest gets to shut down cleanly before it is powered off.",
    ),
]
AllowRestart = Annotated[
    bool, typer.Option("--allow-restart", help="Restart guests whose changes need it (graceful shutdown first).")
]
Wait = Annotated[
    bool,
    typer.Option("--wait/--no-wait", help="After starting a guest, wait for its agent and cloud-init (spec: wait:)."),
]
Images = Annotated[bool, typer.Option("--images", help="Also delete base-image volumes no other guest uses.")]


@dataclass(frozen=True, slots=True)
class ChangeOptions:
    """How to carry out a plan, as the user asked beyond the spec."""

    yes: bool
    parallel: int
    lock_timeout: float
    shutdown_timeout: float
    allow_restart: bool = False
    wait: bool = False


def apply(
    ctx: typer.Context,
    paths: SpecsOrSavedPlan = None,
    connect: Connect = None,
    workspace: Workspace = None,
    yes: Yes = False,
    parallel: Parallel = 4,
    lock_timeout: LockTimeout = "5m",
    shutdown_timeout: ShutdownTimeout = "1m",
    allow_restart: AllowRestart = False,
    wait: Wait = False,
    expires_after: ExpiresAfter = None,
    no_color: NoColor = False,
    targets: Targets = None,
    variables: Vars = None,
    var_files: VarFiles = None,
    hosts: Hosts = None,
) -> None:
    """Make the hypervisors match the spec: shows the plan, asks, then applies it (live where possible)."""
    from vmctl.cli.session import Expiry, open_sessions
    from vmctl.spec.load import EXPIRES_AFTER

    given = global_options(ctx, connect, workspace, no_color)
    how = _change_options(yes, parallel, lock_timeout, shutdown_timeout, allow_restart=allow_restart, wait=wait)
    paths = paths or []
    inputs = var_inputs(variables, var_files)
    if _is_saved_plan(paths):
        _apply_saved(paths[0], how, given.output(), inputs)
        return
    after = _seconds(expires_after, "--expires-after", EXPIRES_AFTER) if expires_after else None
    # An apply renews the expiry of everything it keeps: a job that applies again is still alive.
    expiry = Expiry(after, renew=True)
    sessions = open_sessions(
        paths, given.workspace, given.uri, hosts or [], connect_given=bool(given.connect), inputs=inputs, expiry=expiry
    )
    given.output().notes(sessions[0].spec.notes)
    _apply(sessions, given.workspace, how, given.output(), targets=targets or ())


def _is_saved_plan(paths: Sequence[str]) -> bool:
    """One path, to a JSON file: a plan saved by `vmctl plan --out`."""
    return len(paths) == 1 and paths[0].endswith(".json") and Path(paths[0]).is_file()


def _apply_saved(path: str, how: ChangeOptions, out: Output, given: "VarInputs") -> None:
    """Apply a saved plan with the spec, variables, targets, workspace and connection it was made with,
    if it still holds. Sensitive variables are not saved: they are given again.

    It was reviewed when it was made, so nothing is asked.
    """
    from vmctl.cli.session import open_session, open_sessions
    from vmctl.plan import saved
    from vmctl.spec.variables import VarInputs

    document = saved.load(path)
    inputs = VarInputs(
        (*document.get("vars", ()), *given.args), (*document.get("var_files", ()), *given.files), given.env
    )
    spec_paths, workspace = document["spec_paths"], document["workspace"]
    hosts = saved.saved_hosts(document)
    if hosts:  # each host's URI is the spec's: a changed one makes that host's plan stale
        sessions = open_sessions(spec_paths, workspace, lambda spec_says: spec_says or "", hosts, inputs=inputs)
    else:
        uri_for: Callable[[str | None], str] = lambda _spec_says: document["connection"]  # noqa: E731
        sessions = [open_session(spec_paths, workspace, uri_for, inputs=inputs)]

    def still_holds(lives: "Sequence[LiveState]") -> None:
        saved.check_fresh(document, path, list(zip(sessions, lives, strict=True)))

    targets = tuple(document.get("targets", ()))
    _apply(sessions, workspace, replace(how, yes=True), out, still_holds, targets)


def _apply(
    sessions: "Sequence[Session]",
    workspace: str | None,
    how: ChangeOptions,
    out: Output,
    check: "Callable[[Sequence[LiveState]], None] | None" = None,
    targets: Sequence[str] = (),
) -> None:
    """Plan again under every host's lock (a saved plan must still hold), show, confirm, execute."""
    from vmctl.cli.session import close_all, plan_sessions

    try:
        with _locked(sessions, workspace, how, out) as lock_ready:
            planned = plan_sessions(sessions, targets)
            failpoint("apply-planned")
            if check is not None:
                check([live for _, live in planned])
            plans = [plan for plan, _ in planned]
            show_plan(out, plans)
            if all(plan.empty for plan in plans):
                return
            _confirm(out, "Apply these changes?", how.yes)
            lock_ready()
            _execute_all(sessions, planned, how, out, "Apply")
    finally:
        close_all(sessions)


@contextmanager
def _locked(sessions: "Sequence[Session]", workspace: str | None, how: ChangeOptions, out: Output) -> "Iterator[Ready]":
    """Every host's lock for the block, the hosts' connections closed before the locks are given back.
    The locks settle while the hosts are read and planned: each command calls what this yields
    before it changes anything."""
    from vmctl.apply.lock import apply_lock
    from vmctl.cli.session import closed_before_unlock

    hosts = [(s.label, s.backend) for s in sessions]
    project = sessions[0].spec.project
    wait = _announce_wait(out)
    with (
        apply_lock(hosts, project, workspace, how.lock_timeout, wait, ready_later=True) as ready,
        closed_before_unlock(sessions),
    ):
        yield ready


def _execute_all(
    sessions: "Sequence[Session]",
    planned: "Sequence[tuple[Plan, LiveState | OwnedState]]",
    how: ChangeOptions,
    out: Output,
    verb: str,
) -> None:
    """Each host's plan in turn (its guests in parallel); the summary counts every host's changes."""
    reports = []
    for session, (plan, live) in zip(sessions, planned, strict=True):
        if not plan.empty:
            reports.append(_execute(plan, session, live, how, out))
    summarize([o for r in reports for o in r.outcomes], out, verb)


def destroy(
    ctx: typer.Context,
    guests: Guests = None,
    spec_paths: SpecPaths = None,
    connect: Connect = None,
    workspace: Workspace = None,
    yes: Yes = False,
    parallel: Parallel = 4,
    lock_timeout: LockTimeout = "5m",
    shutdown_timeout: ShutdownTimeout = "1m",
    images: Images = False,
    no_color: NoColor = False,
    targets: Targets = None,
    variables: Vars = None,
    var_files: VarFiles = None,
    hosts: Hosts = None,
) -> None:
    """Remove what vmctl made for this project and workspace, and nothing else."""
    from vmctl.cli.session import close_all, open_sessions

    given = global_options(ctx, connect, workspace, no_color)
    how = _change_options(yes, parallel, lock_timeout, shutdown_timeout)
    out = given.output()
    inputs = var_inputs(variables, var_files)
    sessions = open_sessions(
        spec_paths or [],
        given.workspace,
        given.uri,
        hosts or [],
        resolve=False,
        connect_given=bool(given.connect),
        inputs=inputs,
    )
    try:
        with _locked(sessions, given.workspace, how, out) as lock_ready:
            only = [*(guests or []), *(targets or [])]
            _destroy(sessions, only, images, how, out, lock_ready, targeted=bool(targets))
    finally:
        close_all(sessions)


def _destroy(
    sessions: "Sequence[Session]",
    only: Sequence[str],
    images: bool,
    how: ChangeOptions,
    out: Output,
    lock_ready: "Ready",
    targeted: bool = False,
) -> None:
    """Read what this project owns on each host, plan its removal (or only the named guests'), show,
    confirm, execute. With --target, each host's plan says it is partial."""
    from vmctl.cli.session import in_parallel, on_host
    from vmctl.plan.changes import Plan
    from vmctl.plan.destroy import destroy_plan, unknown_guests

    def read(session: "Session") -> "OwnedState":
        with on_host(session):
            return session.backend.read_owned(session.owner, boot_volumes=images)

    lives = in_parallel([partial(read, s) for s in sessions])
    missing = [name for name in only if all(unknown_guests(live, [name]) for live in lives)]
    if missing:
        raise VmctlError(f"no guest of this project named {', '.join(missing)}")
    planned = []
    for session, live in zip(sessions, lives, strict=True):
        here = [name for name in only if not unknown_guests(live, [name])]
        if only and not here:
            plan = Plan(session.owner.project, session.owner.workspace, session.uri)
        else:
            plan = destroy_plan(live, session.owner, session.uri, here, images, session.spec.images)
        plan = replace(plan, host=session.host_name, targets=tuple(sorted(only)) if targeted else ())
        planned.append((plan, live))
    plans = [plan for plan, _ in planned]
    show_plan(out, plans, empty="Nothing to destroy.")
    if all(plan.empty for plan in plans):
        return
    _confirm(out, "Destroy these?", how.yes)
    lock_ready()
    _execute_all(sessions, planned, how, out, "Destroy")


def _change_options(
    yes: bool, parallel: int, lock_timeout: str, shutdown_timeout: str, allow_restart: bool = False, wait: bool = False
) -> ChangeOptions:
    return ChangeOptions(
        yes=yes,
        parallel=parallel,
        lock_timeout=_seconds(lock_timeout, "--lock-timeout"),
        shutdown_timeout=_seconds(shutdown_timeout, "--shutdown-timeout"),
        allow_restart=allow_restart,
        wait=wait,
    )


def _seconds(text: str, option: str, allowed: "Range | None" = None) -> float:
    from vmctl.units import ANY_DURATION, UnitError, parse_duration

    try:
        return parse_duration(text, allowed or ANY_DURATION)
    except UnitError as exc:
        raise VmctlError(f"{option}: {exc}", hint=exc.hint) from None


def _announce_wait(out: Output) -> Callable[[str], None]:
    return lambda who: out.err.print(f"waiting: {who}…", markup=False, highlight=False)


def _confirm(out: Output, question: str, yes: bool) -> None:
    """Ask on a terminal; elsewhere only --yes (or a saved plan) says go."""
    if yes:
        return
    if not out.interactive:
        raise VmctlError(
            "not on a terminal, and --yes was not given: nothing was changed", hint="add --yes to apply without asking"
        )
    answer = input(f"{question} [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise AbortedByUser("nothing was changed")


def _execute(plan: "Plan", session: "Session", live: "LiveState | OwnedState", how: ChangeOptions, out: Output) -> Any:
    from vmctl.apply.context import ApplyContext, ApplyOptions
    from vmctl.apply.executor import execute

    options = ApplyOptions(how.allow_restart, how.wait, how.shutdown_timeout)
    ctx = ApplyContext(session.backend, session.desired, session.host, session.pool_paths(live), options)
    reporter = reporter_for(out)
    try:
        report = execute(plan, ctx, reporter, how.parallel)
    except KeyboardInterrupt:
        reporter.close()
        out.error("interrupted: work in flight stops here", ["run the same command again: it finishes the job"])
        sys.stdout.flush()
        os._exit(130)  # worker threads may be inside libvirt calls; a re-run converges from any point
    reporter.close()
    return report


def reporter_for(out: Output) -> "Reporter":
    from vmctl.apply.progress import LineReporter, LiveReporter

    if out.interactive and out.color:
        return LiveReporter(out.out)
    return LineReporter()


def summarize(outcomes: Any, out: Output, verb: str) -> None:
    """Warnings of what succeeded, then the count; what failed becomes the error."""
    done = [o for o in outcomes if o.ok]
    for outcome in done:
        for warning in outcome.warnings:
            out.say(f"[yellow]note[/]: {outcome.subject}: {warning}")
    failed = [o for o in outcomes if not o.ok]
    if not failed:
        out.say(f"[bold green]{verb} complete[/]: {len(done)} change(s) made.")
        return
    raise ApplyError(
        f"{len(failed)} change(s) failed, {len(done)} succeeded",
        reasons=[line for o in failed for line in (f"{o.subject}: {o.summary}", *(f"  {d}" for d in o.details))],
        hint="fix the cause and run apply again: what succeeded is not redone",
    )
