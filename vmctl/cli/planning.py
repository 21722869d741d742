"""`vmctl plan`: what apply would change, field by field; and how every command shows a plan."""

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from vmctl.cli.console import Output
from vmctl.cli.exitstatus import ExitStatus
from vmctl.cli.options import (
    Connect,
    Format,
    Hosts,
    Json,
    NoColor,
    OutputFormat,
    Paths,
    Targets,
    VarFiles,
    Vars,
    Workspace,
    github_annotations,
    global_options,
    var_inputs,
)
from vmctl.errors import SpecError

if TYPE_CHECKING:
    from vmctl.plan.changes import Plan

OutFile = Annotated[
    str | None,
    typer.Option(
        "--out",
        "-o",
        metavar="FILE",
        help="Save the plan (with fingerprints of spec and live state) for `vmctl apply FILE`.",
        show_default=False,
    ),
]
DetailedExitcode = Annotated[
    bool, typer.Option("--detailed-exitcode", help="Exit 0 with no changes, 2 with changes, 1 on error.")
]


def plan(
    ctx: typer.Context,
    paths: Paths = None,
    connect: Connect = None,
    workspace: Workspace = None,
    as_json: Json = False,
    no_color: NoColor = False,
    out_file: OutFile = None,
    detailed_exitcode: DetailedExitcode = False,
    targets: Targets = None,
    variables: Vars = None,
    var_files: VarFiles = None,
    output_format: Format = OutputFormat.TEXT,
    hosts: Hosts = None,
) -> ExitStatus:
    """Show what apply would change, field by field, and how (live, restart, replace)."""
    from vmctl.cli.session import close_all, open_sessions, plan_sessions

    given = global_options(ctx, connect, workspace, no_color)
    inputs = var_inputs(variables, var_files)
    try:
        sessions = open_sessions(
            paths or [], given.workspace, given.uri, hosts or [], connect_given=bool(given.connect), inputs=inputs
        )
    except SpecError as exc:
        if output_format is OutputFormat.GITHUB:
            sys.stdout.write(github_annotations(exc.problems))
        raise
    given.output().notes(sessions[0].spec.notes)
    try:
        planned = plan_sessions(sessions, targets or ())
        if out_file:
            from vmctl.plan import saved

            made = [(plan, session, live) for session, (plan, live) in zip(sessions, planned, strict=True)]
            saved.save(out_file, made, paths or [], inputs)
    finally:
        close_all(sessions)
    from vmctl.plan.hosts import total
    from vmctl.plan.render import hosts_json, summary_line

    plans = [p for p, _ in planned]
    whole = total(plans)
    out = given.output()
    if as_json or output_format is OutputFormat.JSON:
        out.json(hosts_json(plans))
    else:
        show_plan(out, plans)
        if output_format is OutputFormat.GITHUB and not whole.empty:
            sys.stdout.write(f"::notice title=vmctl plan::{summary_line(whole)}\n")
    return ExitStatus.CHANGES_PRESENT if detailed_exitcode and not whole.empty else ExitStatus.OK


def show_plan(out: Output, plan: "Plan | Sequence[Plan]", empty: str | None = None) -> None:
    """The plan (or each host's) in colour on a terminal, as plain text anywhere else (without loading rich)."""
    from vmctl.plan.render import render_hosts

    plans = plan if isinstance(plan, Sequence) else [plan]
    out.show(render_hosts(plans, markup=out.styled, empty=empty))
