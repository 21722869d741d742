"""The `vmctl` typer app, and the one place where errors become a message and an exit status.

Commands live in modules by what they do (specs, planning, changing, status); this module only
lists them. Everything heavy (libvirt, pycdlib, the planner) is imported inside the command that
needs it, so `vmctl version` and `vmctl validate` never load it.
"""

import contextlib
import os
import sys
from typing import Annotated, NoReturn

import typer

from vmctl import __version__
from vmctl.cli import changing, host, importing, planning, reaching, snapshots, specs, status
from vmctl.cli.console import Output
from vmctl.cli.exitstatus import ExitStatus
from vmctl.cli.options import GlobalConnect, GlobalOptions, GlobalWorkspace, Json, NoColor
from vmctl.errors import SpecError, VmctlError

app = typer.Typer(
    name="vmctl",
    epilog="vmctl COMMAND --help shows a command's own options.",
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(wanted: bool) -> None:
    if wanted:
        print(f"vmctl {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def vmctl(
    ctx: typer.Context,
    connect: GlobalConnect = None,
    workspace: GlobalWorkspace = None,
    no_color: NoColor = False,
    show_version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print vmctl's version and exit.")
    ] = False,
) -> None:
    """Declarative VM-as-code for libvirt: YAML specs in git, field-level plans, exact applies."""
    ctx.obj = GlobalOptions(connect, workspace, no_color)
    if ctx.invoked_subcommand is None:  # `vmctl` alone: what it can do, but it did nothing
        typer.echo(ctx.get_help())
        raise typer.Exit(ExitStatus.ERROR)


@app.command()
def version(as_json: Json = False) -> None:
    """Print vmctl's version."""
    if as_json:
        Output().json({"vmctl": __version__})
    else:
        print(f"vmctl {__version__}")


app.command()(specs.schema)
app.command()(specs.validate)
app.command()(planning.plan)
app.command()(changing.apply)
app.command()(changing.destroy)
app.command()(status.status)
app.command()(specs.xml)
app.command()(host.gc)
app.command()(host.workspaces)
app.add_typer(snapshots.app)
app.command("import")(importing.import_)
app.command("exec")(reaching.exec_)
app.command()(reaching.ssh)
app.command()(reaching.console)
app.command()(reaching.output)


def main(argv: list[str] | None = None) -> NoReturn:
    """Run vmctl with these arguments (default: the process's) and exit with its status.

    0 ok, 1 error, 2 changes present (plan --detailed-exitcode): Terraform's meanings.
    """
    sys.exit(_run(sys.argv[1:] if argv is None else argv))


def run() -> NoReturn:
    """The `vmctl` program: the console script and `python -m vmctl`."""
    _tune_gc()
    code = _run(sys.argv[1:])
    # Leave at once: an apply lock was given back already (its domain destroyed, so that a script
    # listing domains next finds none of vmctl's), and connections still open close with the process,
    # as for a vmctl killed with -9. What vmctl had to write is flushed first.
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(int(code))


def _run(argv: list[str]) -> int:
    out = Output(color="--no-color" not in argv)
    command = typer.main.get_command(app)
    try:
        # Not standalone: typer would exit 2 on a usage error, and 2 means "changes present".
        result = command.main(argv, prog_name="vmctl", standalone_mode=False)
    except typer.TyperException as exc:  # the command line itself is wrong
        _report_usage(exc, out)
        return ExitStatus.ERROR
    except typer.Abort:  # end of input at a question
        out.error("aborted: nothing was changed")
        return ExitStatus.ERROR
    except VmctlError as exc:
        _report(exc, out)
        return ExitStatus.ERROR
    except Exception as exc:
        return _unexpected(exc, out)
    return _exit_status(result, out)


def _exit_status(result: object, out: Output) -> int:
    """A command's returned status, or typer's exit code (help, --version, Ctrl-C).

    `vmctl exec` and `vmctl ssh` return the guest command's own status, which may be any number.
    """
    if isinstance(result, int) and result not in set(ExitStatus):
        return result
    exit_status = ExitStatus(result) if isinstance(result, int) else ExitStatus.OK
    if exit_status is ExitStatus.INTERRUPTED:  # typer turned KeyboardInterrupt into an exit code
        out.error("interrupted")
    return exit_status


def _report_usage(exc: typer.TyperException, out: Output) -> None:
    """typer's message, under the usage of the command it was meant for."""
    context = getattr(exc, "ctx", None)  # usage errors carry the context of the command being parsed
    command_path = context.command_path if context else "vmctl"
    if context:
        sys.stderr.write(context.get_usage() + "\n")
    out.error(exc.format_message(), [f"hint: {command_path} --help lists what it takes"])


def _report(exc: VmctlError, out: Output) -> None:
    if isinstance(exc, SpecError):
        for problem in exc.problems:
            sys.stderr.write(f"{problem}\n")
        out.error(exc.message)
        return
    out.error(exc.message, exc.details())


def _unexpected(exc: Exception, out: Output) -> ExitStatus:
    if os.environ.get("VMCTL_DEBUG"):
        raise exc
    out.error(
        f"internal error: {type(exc).__name__}: {exc}",
        ["this is a bug in vmctl; run with VMCTL_DEBUG=1 for the traceback"],
    )
    return ExitStatus.ERROR


def _tune_gc() -> None:
    """Reading a big host builds many short-lived XML trees and dataclasses but few reference cycles:
    with Python's default thresholds the cycle collector ran so often it cost a third of a plan."""
    import gc

    gc.freeze()  # what the imports made lives as long as the process: no collection need walk it
    gc.set_threshold(50_000, 20, 20)
