"""The `vmctl` command line: parses arguments, calls the core, and is the one place errors become exits."""

# No `from __future__ import annotations` here: typer reads every command's annotations at each start,
# and string annotations would cost it an eval per parameter (3 ms of every command).

import contextlib
import os
import sys
from dataclasses import dataclass
from typing import Annotated, Any, NoReturn

import typer

from vmctl import __version__
from vmctl.console import Output
from vmctl.errors import SpecError, VmctlError

app = typer.Typer(
    name="vmctl",
    help="Declarative VM-as-code for libvirt: YAML specs in git, field-level plans, exact applies.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@dataclass
class Globals:
    """Options given before the command; a command's own options win."""

    connect: str | None = None
    workspace: str | None = None
    color: bool = True


_globals = Globals()

PathsArg = Annotated[
    list[str] | None,
    typer.Argument(
        help="Spec files or directories (all *.yaml/*.yml in them). Default: ./vmctl.yaml", show_default=False
    ),
]
ConnectOpt = Annotated[
    str | None,
    typer.Option(
        "--connect",
        "-c",
        help="libvirt URI. Also VMCTL_CONNECT; then the spec's connection; then LIBVIRT_DEFAULT_URI.",
        show_default=False,
    ),
]
WorkspaceOpt = Annotated[
    str | None,
    typer.Option(
        "--workspace",
        "-w",
        help="Prefix domain names with NAME-, so one spec runs many times on a host. Also VMCTL_WORKSPACE.",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print data as JSON.")]
NoColorOpt = Annotated[bool, typer.Option("--no-color", help="No colours (also NO_COLOR).")]


@app.callback()
def _main_options(
    connect: ConnectOpt = None,
    workspace: WorkspaceOpt = None,
    no_color: NoColorOpt = False,
) -> None:
    _globals.connect = connect
    _globals.workspace = workspace
    _globals.color = not no_color


def _output(no_color: bool = False) -> Output:
    return Output(color=_globals.color and not no_color)


def _workspace(option: str | None) -> str | None:
    return option or _globals.workspace or os.environ.get("VMCTL_WORKSPACE") or None


def connection_uri(option: str | None, spec_connection: str | None) -> str:
    """--connect > VMCTL_CONNECT > the spec's connection > LIBVIRT_DEFAULT_URI > qemu:///system."""
    return (
        option
        or _globals.connect
        or os.environ.get("VMCTL_CONNECT")
        or spec_connection
        or os.environ.get("LIBVIRT_DEFAULT_URI")
        or "qemu:///system"
    )


@app.command()
def version(as_json: JsonOpt = False) -> None:
    """Print vmctl's version."""
    if as_json:
        _output().json({"vmctl": __version__})
    else:
        print(f"vmctl {__version__}")


@app.command()
def schema() -> None:
    """Print the spec's JSON Schema (for editors: # yaml-language-server: $schema=...)."""
    from vmctl.schema import schema_text

    sys.stdout.write(schema_text())


@app.command()
def validate(
    paths: PathsArg = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
    no_color: NoColorOpt = False,
) -> None:
    """Check spec files and print every problem, each as FILE:LINE:COL: path: message."""
    from vmctl.spec import load_spec

    out = _output(no_color)
    try:
        spec = load_spec(paths or [], _workspace(workspace))
    except SpecError as exc:
        if as_json:
            out.json({"valid": False, "problems": [_problem_json(p) for p in exc.problems]})
            raise typer.Exit(1) from None
        raise
    if as_json:
        out.json(
            {"valid": True, "project": spec.project, "files": list(spec.files), "guests": [g.name for g in spec.guests]}
        )
        return
    guests = len(spec.guests)
    out.say(
        f"[green]ok[/]: {len(spec.files)} file(s), {guests} guest{'s' if guests != 1 else ''} in project {spec.project}"
    )


@app.command()
def plan(
    paths: PathsArg = None,
    connect: ConnectOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
    out_file: Annotated[
        str | None,
        typer.Option(
            "--out", "-o", help="Save the plan (with fingerprints of spec and live state) for `vmctl apply FILE`."
        ),
    ] = None,
    detailed_exitcode: Annotated[
        bool, typer.Option("--detailed-exitcode", help="Exit 0 with no changes, 2 with changes, 1 on error.")
    ] = False,
    no_color: NoColorOpt = False,
) -> None:
    """Show what apply would change, field by field, and how (live, restart, replace)."""
    from vmctl.commands import show_plan
    from vmctl.render import plan_json
    from vmctl.workflow import open_session, plan_session

    out = _output(no_color)
    session = open_session(paths or [], _workspace(workspace), lambda c: connection_uri(connect, c))
    try:
        the_plan, live = plan_session(session)
        if out_file:
            from vmctl import savedplan

            savedplan.save(out_file, the_plan, session, live, paths or [])
    finally:
        session.backend.close()
    if as_json:
        out.json(plan_json(the_plan))
    else:
        show_plan(out, the_plan)
    if detailed_exitcode and not the_plan.empty:
        raise typer.Exit(2)


YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (for scripts and CI).")]
LockTimeoutOpt = Annotated[
    str,
    typer.Option("--lock-timeout", help="How long to wait for another vmctl working on this project and workspace."),
]
ParallelOpt = Annotated[int, typer.Option("--parallel", "-p", min=1, max=64, help="Guests worked on at once.")]
ShutdownTimeoutOpt = Annotated[
    str, typer.Option("--shutdown-timeout", help="How long a guest gets to shut down cleanly before it is powered off.")
]


def _seconds(text: str, option: str) -> float:
    from vmctl.units import UnitError, parse_duration

    try:
        return parse_duration(text)
    except UnitError as exc:
        raise VmctlError(f"{option}: {exc}", hint=exc.hint) from None


def _run_options(paths: list[str] | None, connect: str | None, workspace: str | None, **extra: Any) -> Any:
    from vmctl.commands import RunOptions

    return RunOptions(paths or [], _workspace(workspace), lambda c: connection_uri(connect, c), **extra)


@app.command()
def apply(
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            help="Spec files or directories, or one saved plan (plan.json). Default: ./vmctl.yaml", show_default=False
        ),
    ] = None,
    connect: ConnectOpt = None,
    workspace: WorkspaceOpt = None,
    yes: YesOpt = False,
    allow_restart: Annotated[
        bool, typer.Option("--allow-restart", help="Restart guests whose changes need it (graceful shutdown first).")
    ] = False,
    parallel: ParallelOpt = 4,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait/--no-wait", help="After starting a guest, wait for its agent and cloud-init (spec: wait:)."
        ),
    ] = False,
    lock_timeout: LockTimeoutOpt = "5m",
    shutdown_timeout: ShutdownTimeoutOpt = "1m",
    no_color: NoColorOpt = False,
) -> None:
    """Make the hypervisor match the spec: shows the plan, asks, then applies it (live where possible)."""
    from vmctl import commands

    options = _run_options(
        paths,
        connect,
        workspace,
        yes=yes,
        allow_restart=allow_restart,
        parallel=parallel,
        wait=wait,
        lock_timeout=_seconds(lock_timeout, "--lock-timeout"),
        shutdown_timeout=_seconds(shutdown_timeout, "--shutdown-timeout"),
    )
    commands.apply(options, _output(no_color))


@app.command()
def destroy(
    guests: Annotated[
        list[str] | None,
        typer.Argument(help="Guests to destroy (default: all of this project and workspace).", show_default=False),
    ] = None,
    paths: Annotated[
        list[str] | None, typer.Option("--spec", "-f", help="Spec file or directory (repeatable).")
    ] = None,
    connect: ConnectOpt = None,
    workspace: WorkspaceOpt = None,
    yes: YesOpt = False,
    images: Annotated[
        bool, typer.Option("--images", help="Also delete base-image volumes no other guest uses.")
    ] = False,
    parallel: ParallelOpt = 4,
    lock_timeout: LockTimeoutOpt = "5m",
    shutdown_timeout: ShutdownTimeoutOpt = "1m",
    no_color: NoColorOpt = False,
) -> None:
    """Remove what vmctl made for this project and workspace, and nothing else."""
    from vmctl import commands

    names, spec_paths = _split_guests_and_paths(guests or [], paths or [])
    options = _run_options(
        spec_paths,
        connect,
        workspace,
        yes=yes,
        parallel=parallel,
        lock_timeout=_seconds(lock_timeout, "--lock-timeout"),
        shutdown_timeout=_seconds(shutdown_timeout, "--shutdown-timeout"),
    )
    commands.destroy(options, names, images, _output(no_color))


def _split_guests_and_paths(args: list[str], paths: list[str]) -> tuple[list[str], list[str]]:
    """`vmctl destroy web db` names guests; an argument that is an existing file or directory is a spec path."""
    from pathlib import Path

    found_paths = [a for a in args if Path(a).exists()]
    return [a for a in args if a not in found_paths], paths + found_paths


@app.command()
def status(
    paths: PathsArg = None,
    connect: ConnectOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
    no_color: NoColorOpt = False,
) -> None:
    """Per guest: state, drift from the spec, IP addresses, and whether it is ready."""
    from vmctl import commands

    commands.status(_run_options(paths, connect, workspace, as_json=as_json), _output(no_color))


@app.command()
def xml(
    guest: Annotated[str, typer.Argument(help="Guest (domain) name, as in the spec (with count: web-1).")],
    paths: Annotated[
        list[str] | None, typer.Option("--spec", "-f", help="Spec file or directory (repeatable).")
    ] = None,
    connect: ConnectOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Print the domain XML vmctl would define for GUEST."""
    from vmctl.definition import domain_definition, guest_record
    from vmctl.errors import VmctlError as _Err
    from vmctl.workflow import open_session

    session = open_session(paths or [], _workspace(workspace), lambda c: connection_uri(connect, c))
    try:
        live = session.read_live()
    finally:
        session.backend.close()
    wanted = session.desired.guest(guest) or next((g for g in session.desired.guests if g.hostname == guest), None)
    if wanted is None:
        names = ", ".join(g.name for g in session.desired.guests) or "none"
        raise _Err(f"no guest named {guest!r} in the spec", hint=f"guests: {names}")
    current = live.guest(wanted.name)
    record = guest_record(wanted, session.desired, current)
    sys.stdout.write(domain_definition(wanted, record, session.host, session.pool_paths(live), current))


def _problem_json(problem: Any) -> dict[str, Any]:
    loc = problem.location
    return {
        "file": loc.file if loc else None,
        "line": loc.line if loc else None,
        "column": loc.column if loc else None,
        "path": problem.path,
        "message": problem.message,
        "hint": problem.hint,
    }


def _report(exc: VmctlError, out: Output) -> None:
    if isinstance(exc, SpecError):
        for problem in exc.problems:
            sys.stderr.write(f"{problem}\n")
        out.error(exc.message)
        return
    out.error(exc.message, exc.details())


def _usage_error(exc: Exception) -> bool:
    return callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int)


def main(argv: list[str] | None = None) -> NoReturn:
    """Run a command in this process. Exit codes follow Terraform: 0 ok, 1 error, 2 changes present
    (plan --detailed-exitcode)."""
    sys.exit(_run(argv))


def run() -> NoReturn:
    """The `vmctl` program: a command, then an immediate exit.

    Everything a command opens it also closes, so nothing is left for the interpreter's teardown,
    which only frees memory (a tenth of a small destroy's time). Output is flushed first.
    """
    code = _run(None)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (vmctl plan | head)
            stream.flush()
    os._exit(code)


def _run(argv: list[str] | None) -> int:
    _tune_gc()
    try:
        code = app(args=argv, prog_name="vmctl", standalone_mode=False)
    except VmctlError as exc:
        _report(exc, _output())
        code = exc.exit_code
    except KeyboardInterrupt:
        _output().error("interrupted")
        code = 130
    except Exception as exc:
        code = _unexpected(exc)
    return code if isinstance(code, int) else 0


def _tune_gc() -> None:
    """Reading a big host builds many short-lived XML trees and dataclasses but few reference cycles:
    with Python's default thresholds the cycle collector ran so often it cost a third of a plan."""
    import gc

    gc.freeze()  # what the imports made lives as long as the process
    gc.set_threshold(50_000, 20, 20)
    gc.enable()  # the program starts with it off (vmctl/__main__.py)


def _unexpected(exc: Exception) -> int:
    if _usage_error(exc):
        exc.show()  # type: ignore[attr-defined]
        return 1
    if type(exc).__name__ == "Abort":
        _output().error("aborted")
        return 1
    if os.environ.get("VMCTL_DEBUG"):
        raise exc
    _output().error(
        f"internal error: {type(exc).__name__}: {exc}",
        ["this is a bug in vmctl; run with VMCTL_DEBUG=1 for the traceback"],
    )
    return 1
