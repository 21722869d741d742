"""`vmctl plan`: what apply would change, field by field; and how every command shows a plan."""

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from vmctl.cli.console import Output
from vmctl.cli.exitstatus import ExitStatus
from vmctl.cli.options import (
    Connect,
    Format,
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
) -> ExitStatus:
    """Show what apply would change, field by field, and how (live, restart, replace)."""
    from vmctl.cli.session import open_session, plan_session
    from vmctl.plan.render import plan_json, summary_line

    given = global_options(ctx, connect, workspace, no_color)
    inputs = var_inputs(variables, var_files)
    try:
        session = open_session(paths or [], given.workspace, given.uri, inputs=inputs)
    except SpecError as exc:
        if output_format is OutputFormat.GITHUB:
            sys.stdout.write(github_annotations(exc.problems))
        raise
    given.output().notes(session.spec.notes)
    try:
        the_plan, live = plan_session(session, targets or ())
        if out_file:
            from vmctl.plan import saved

            saved.save(out_file, the_plan, session, live, paths or [], inputs)
    finally:
        session.backend.close()
    out = given.output()
    if as_json or output_format is OutputFormat.JSON:
        out.json(plan_json(the_plan))
    else:
        show_plan(out, the_plan)
        if output_format is OutputFormat.GITHUB and not the_plan.empty:
            sys.stdout.write(f"::notice title=vmctl plan::{summary_line(the_plan)}\n")
    return ExitStatus.CHANGES_PRESENT if detailed_exitcode and not the_plan.empty else ExitStatus.OK


def show_plan(out: Output, plan: "Plan", empty: str | None = None) -> None:
    """The plan in colour on a terminal, as plain text anywhere else (without loading rich)."""
    from vmctl.plan.render import render_text

    out.show(render_text(plan, markup=out.styled, empty=empty))
