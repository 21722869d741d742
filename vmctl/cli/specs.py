"""The commands about the spec itself: validate it, print its schema, print the XML it makes for a guest.

validate must stay fast and offline: it never imports libvirt or pycdlib.
"""

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from vmctl.cli.console import Output
    from vmctl.cli.session import Session
    from vmctl.model import GuestSpec
    from vmctl.spec.variables import VarInputs

from vmctl.cli.exitstatus import ExitStatus
from vmctl.cli.options import (
    Connect,
    Format,
    Hosts,
    Json,
    NoColor,
    OutputFormat,
    Paths,
    SpecPaths,
    VarFiles,
    Vars,
    Workspace,
    github_annotations,
    global_options,
    var_inputs,
)
from vmctl.errors import Problem, SpecError, VmctlError

Each = Annotated[
    bool, typer.Option("--each", help="Check each PATH as a spec of its own, not all as one (for pre-commit).")
]
Guest = Annotated[str, typer.Argument(metavar="GUEST", help="Guest (domain) name, as in the spec (with count: web-1).")]


def schema() -> None:
    """Print the spec's JSON Schema (for editors: # yaml-language-server: $schema=...)."""
    from vmctl.spec.schema import schema_text

    sys.stdout.write(schema_text())


def validate(
    ctx: typer.Context,
    paths: Paths = None,
    workspace: Workspace = None,
    as_json: Json = False,
    no_color: NoColor = False,
    variables: Vars = None,
    var_files: VarFiles = None,
    output_format: Format = OutputFormat.TEXT,
    each: Each = False,
) -> ExitStatus:
    """Check spec files and print every problem, each as FILE:LINE:COL: path: message."""
    from vmctl.spec.load import load_spec

    given = global_options(ctx, workspace=workspace, no_color=no_color)
    out = given.output()
    as_json = as_json or output_format is OutputFormat.JSON
    inputs = var_inputs(variables, var_files)
    if each and paths:
        return _validate_each(paths, given.workspace, inputs, output_format, out)
    try:
        spec = load_spec(paths or [], given.workspace, inputs)
    except SpecError as exc:
        if output_format is OutputFormat.GITHUB:
            sys.stdout.write(github_annotations(exc.problems))
            raise
        if not as_json:
            raise
        out.json({"valid": False, "problems": [_problem_json(p) for p in exc.problems]})
        return ExitStatus.ERROR
    out.notes(spec.notes)
    if as_json:
        guests = [g.name for g in spec.guests]
        out.json({"valid": True, "project": spec.project, "files": list(spec.files), "guests": guests})
    else:
        count = len(spec.guests)
        plural = "s" if count != 1 else ""
        out.say(f"[green]ok[/]: {len(spec.files)} file(s), {count} guest{plural} in project {spec.project}")
    return ExitStatus.OK


def _validate_each(
    paths: list[str], workspace: str | None, inputs: "VarInputs", output_format: OutputFormat, out: "Output"
) -> ExitStatus:
    """Each PATH as a spec of its own (pre-commit passes every staged spec at once)."""
    from vmctl.spec.load import load_spec

    problems: list[Problem] = []
    for path in paths:
        try:
            load_spec([path], workspace, inputs)
        except SpecError as exc:
            problems.extend(exc.problems)
    if problems:
        if output_format is OutputFormat.GITHUB:
            sys.stdout.write(github_annotations(problems))
        raise SpecError(problems)
    out.say(f"[green]ok[/]: {len(paths)} spec(s)")
    return ExitStatus.OK


def _problem_json(problem: Problem) -> dict[str, Any]:
    loc = problem.location
    return {
        "file": loc.file if loc else None,
        "line": loc.line if loc else None,
        "column": loc.column if loc else None,
        "path": problem.path,
        "message": problem.message,
        "hint": problem.hint,
    }


def xml(
    ctx: typer.Context,
    guest: Guest,
    spec_paths: SpecPaths = None,
    connect: Connect = None,
    workspace: Workspace = None,
    variables: Vars = None,
    var_files: VarFiles = None,
    hosts: Hosts = None,
) -> None:
    """Print the domain XML vmctl would define for GUEST (on the host the spec puts it on)."""
    from vmctl.cli.session import close_all, open_sessions

    given = global_options(ctx, connect, workspace)
    inputs = var_inputs(variables, var_files)
    sessions = open_sessions(
        spec_paths or [],
        given.workspace,
        given.uri,
        hosts or [],
        connect_given=bool(given.connect),
        inputs=inputs,
        for_guest=guest,
    )
    try:
        session = next((s for s in sessions if _spec_guest(s, guest)), sessions[0])
        live = session.read_live()
    finally:
        close_all(sessions)
    from vmctl.libvirtxml.definition import domain_definition, guest_record

    wanted = _spec_guest(session, guest)
    if wanted is None:
        names = ", ".join(g.name for g in session.desired.guests) or "none"
        raise VmctlError(f"no guest named {guest!r} in the spec", hint=f"guests: {names}")
    current = live.guest(wanted.name)
    record = guest_record(wanted, session.desired, current)
    sys.stdout.write(domain_definition(wanted, record, session.host, session.pool_paths(live), current))


def _spec_guest(session: "Session", name: str) -> "GuestSpec | None":
    """The session's guest by its domain name or its host name."""
    return session.desired.guest(name) or next((g for g in session.desired.guests if g.hostname == name), None)
