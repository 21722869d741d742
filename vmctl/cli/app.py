"""The `vmctl` command line: parses arguments, calls the core, and is the one place errors become exits."""

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from vmctl import __version__
from vmctl.cli.arguments import Handler, Options, Parser, UsageError, parse
from vmctl.cli.console import Output
from vmctl.errors import SpecError, VmctlError

SUMMARY = "Declarative VM-as-code for libvirt: YAML specs in git, field-level plans, exact applies."
CONNECT_HELP = "libvirt URI. Also VMCTL_CONNECT; then the spec's connection; then LIBVIRT_DEFAULT_URI."
WORKSPACE_HELP = "Prefix domain names with NAME-, so one spec runs many times on a host. Also VMCTL_WORKSPACE."
PATHS_HELP = "Spec files or directories (all *.yaml/*.yml in them). Default: ./vmctl.yaml"


def _output(args: argparse.Namespace) -> Output:
    return Output(color=not (args.global_no_color or getattr(args, "no_color", False)))


def _workspace(args: argparse.Namespace) -> str | None:
    """A command's own option wins over the one given before the command, then VMCTL_WORKSPACE."""
    return args.workspace or args.global_workspace or os.environ.get("VMCTL_WORKSPACE") or None


def _uri_for(args: argparse.Namespace) -> Callable[[str | None], str]:
    """--connect > VMCTL_CONNECT > the spec's connection > LIBVIRT_DEFAULT_URI > qemu:///system."""
    option: str | None = args.connect or args.global_connect

    def uri(spec_connection: str | None) -> str:
        return (
            option
            or os.environ.get("VMCTL_CONNECT")
            or spec_connection
            or os.environ.get("LIBVIRT_DEFAULT_URI")
            or "qemu:///system"
        )

    return uri


def version(args: argparse.Namespace) -> None:
    """Print vmctl's version."""
    if args.as_json:
        _output(args).json({"vmctl": __version__})
    else:
        print(f"vmctl {__version__}")


def schema(args: argparse.Namespace) -> None:
    """Print the spec's JSON Schema (for editors: # yaml-language-server: $schema=...)."""
    from vmctl.spec.schema import schema_text

    sys.stdout.write(schema_text())


def validate(args: argparse.Namespace) -> int:
    """Check spec files and print every problem, each as FILE:LINE:COL: path: message."""
    from vmctl.spec.load import load_spec

    out = _output(args)
    try:
        spec = load_spec(args.paths, _workspace(args))
    except SpecError as exc:
        if args.as_json:
            out.json({"valid": False, "problems": [_problem_json(p) for p in exc.problems]})
            return 1
        raise
    if args.as_json:
        out.json(
            {"valid": True, "project": spec.project, "files": list(spec.files), "guests": [g.name for g in spec.guests]}
        )
        return 0
    guests = len(spec.guests)
    out.say(
        f"[green]ok[/]: {len(spec.files)} file(s), {guests} guest{'s' if guests != 1 else ''} in project {spec.project}"
    )
    return 0


def plan(args: argparse.Namespace) -> int:
    """Show what apply would change, field by field, and how (live, restart, replace)."""
    from vmctl.cli.commands import show_plan
    from vmctl.cli.session import open_session, plan_session
    from vmctl.plan.render import plan_json

    out = _output(args)
    session = open_session(args.paths, _workspace(args), _uri_for(args))
    try:
        the_plan, live = plan_session(session)
        if args.out_file:
            from vmctl.plan import saved as savedplan

            savedplan.save(args.out_file, the_plan, session, live, args.paths)
    finally:
        session.backend.close()
    if args.as_json:
        out.json(plan_json(the_plan))
    else:
        show_plan(out, the_plan)
    return 2 if args.detailed_exitcode and not the_plan.empty else 0


def _seconds(text: str, option: str) -> float:
    from vmctl.units import UnitError, parse_duration

    try:
        return parse_duration(text)
    except UnitError as exc:
        raise VmctlError(f"{option}: {exc}", hint=exc.hint) from None


def _run_options(args: argparse.Namespace, paths: list[str], **extra: Any) -> Any:
    from vmctl.cli.commands import RunOptions

    return RunOptions(
        paths,
        _workspace(args),
        _uri_for(args),
        yes=args.yes,
        parallel=args.parallel,
        lock_timeout=_seconds(args.lock_timeout, "--lock-timeout"),
        shutdown_timeout=_seconds(args.shutdown_timeout, "--shutdown-timeout"),
        **extra,
    )


def apply(args: argparse.Namespace) -> None:
    """Make the hypervisor match the spec: shows the plan, asks, then applies it (live where possible)."""
    from vmctl.cli import commands

    options = _run_options(args, args.paths, allow_restart=args.allow_restart, wait=args.wait)
    commands.apply(options, _output(args))


def destroy(args: argparse.Namespace) -> None:
    """Remove what vmctl made for this project and workspace, and nothing else."""
    from vmctl.cli import commands

    names, spec_paths = _split_guests_and_paths(args.guests, args.spec_paths or [])
    commands.destroy(_run_options(args, spec_paths), names, args.images, _output(args))


def _split_guests_and_paths(args: list[str], paths: list[str]) -> tuple[list[str], list[str]]:
    """`vmctl destroy web db` names guests; an argument that is an existing file or directory is a spec path."""
    from pathlib import Path

    found_paths = [a for a in args if Path(a).exists()]
    return [a for a in args if a not in found_paths], paths + found_paths


def status(args: argparse.Namespace) -> None:
    """Per guest: state, drift from the spec, IP addresses, and whether it is ready."""
    from vmctl.cli import commands

    options = commands.RunOptions(args.paths, _workspace(args), _uri_for(args), as_json=args.as_json)
    commands.status(options, _output(args))


def xml(args: argparse.Namespace) -> None:
    """Print the domain XML vmctl would define for GUEST."""
    from vmctl.cli.session import open_session
    from vmctl.libvirtxml.definition import domain_definition, guest_record

    session = open_session(args.spec_paths or [], _workspace(args), _uri_for(args))
    try:
        live = session.read_live()
    finally:
        session.backend.close()
    name = args.guest
    wanted = session.desired.guest(name) or next((g for g in session.desired.guests if g.hostname == name), None)
    if wanted is None:
        names = ", ".join(g.name for g in session.desired.guests) or "none"
        raise VmctlError(f"no guest named {name!r} in the spec", hint=f"guests: {names}")
    current = live.guest(wanted.name)
    record = guest_record(wanted, session.desired, current)
    sys.stdout.write(domain_definition(wanted, record, session.host, session.pool_paths(live), current))


def _global_options(parser: Parser) -> Parser:
    """Options given before the command; a command's own options win."""
    parser.add_argument("-c", "--connect", dest="global_connect", metavar="URI", help=CONNECT_HELP)
    parser.add_argument("-w", "--workspace", dest="global_workspace", metavar="NAME", help=WORKSPACE_HELP)
    parser.add_argument("--no-color", dest="global_no_color", action="store_true", help="No colours (also NO_COLOR).")
    parser.set_defaults(connect=None, workspace=None)
    return parser


def _paths(sub: Parser) -> None:
    sub.add_argument("paths", nargs="*", metavar="PATH", help=PATHS_HELP)


def _plan_or_paths(sub: Parser) -> None:
    sub.add_argument("paths", nargs="*", metavar="PATH", help=f"{PATHS_HELP}. Or one saved plan (vmctl plan --out).")


def _guest(sub: Parser) -> None:
    sub.add_argument("guest", metavar="GUEST", help="Guest (domain) name, as in the spec (with count: web-1).")


def _guests(sub: Parser) -> None:
    sub.add_argument(
        "guests", nargs="*", metavar="GUEST", help="Guests to destroy (default: all of this project and workspace)."
    )


def _spec_option(sub: Parser) -> None:
    sub.add_argument(
        "-f", "--spec", dest="spec_paths", action="append", metavar="PATH", help="Spec file or directory (repeatable)."
    )


def _connect(sub: Parser) -> None:
    sub.add_argument("-c", "--connect", metavar="URI", help=CONNECT_HELP)


def _workspace_option(sub: Parser) -> None:
    sub.add_argument("-w", "--workspace", metavar="NAME", help=WORKSPACE_HELP)


def _json(sub: Parser) -> None:
    sub.add_argument("--json", dest="as_json", action="store_true", help="Print data as JSON.")


def _no_color(sub: Parser) -> None:
    sub.add_argument("--no-color", action="store_true", help="No colours (also NO_COLOR).")


def _plan_options(sub: Parser) -> None:
    sub.add_argument(
        "-o",
        "--out",
        dest="out_file",
        metavar="FILE",
        help="Save the plan (with fingerprints of spec and live state) for `vmctl apply FILE`.",
    )
    sub.add_argument(
        "--detailed-exitcode", action="store_true", help="Exit 0 with no changes, 2 with changes, 1 on error."
    )


def _run_options_of(sub: Parser) -> None:
    """What apply and destroy share: confirmation, parallelism, lock and shutdown timeouts."""
    sub.add_argument("-y", "--yes", action="store_true", help="Do not ask for confirmation (for scripts and CI).")
    sub.add_argument(
        "-p", "--parallel", type=_parallel, default=4, metavar="N", help="Guests worked on at once, 1-64 (default: 4)."
    )
    sub.add_argument(
        "--lock-timeout",
        default="5m",
        metavar="DURATION",
        help="How long to wait for another vmctl working on this project and workspace (default: 5m).",
    )
    sub.add_argument(
        "--shutdown-timeout",
        default="1m",
        metavar="DURATION",
        help="How long a guest gets to shut down cleanly before it is powered off (default: 1m).",
    )


def _apply_options(sub: Parser) -> None:
    sub.add_argument(
        "--allow-restart", action="store_true", help="Restart guests whose changes need it (graceful shutdown first)."
    )
    sub.add_argument(
        "--wait",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="After starting a guest, wait for its agent and cloud-init (spec: wait:).",
    )


def _images(sub: Parser) -> None:
    sub.add_argument("--images", action="store_true", help="Also delete base-image volumes no other guest uses.")


def _parallel(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(f"{value} is not between 1 and 64")
    return value


COMMANDS: dict[str, tuple[Handler, Sequence[Options]]] = {
    "version": (version, [_json]),
    "schema": (schema, []),
    "validate": (validate, [_paths, _workspace_option, _json, _no_color]),
    "plan": (plan, [_paths, _connect, _workspace_option, _json, _no_color, _plan_options]),
    "apply": (apply, [_plan_or_paths, _connect, _workspace_option, _run_options_of, _apply_options, _no_color]),
    "destroy": (destroy, [_guests, _spec_option, _connect, _workspace_option, _run_options_of, _images, _no_color]),
    "status": (status, [_paths, _connect, _workspace_option, _json, _no_color]),
    "xml": (xml, [_guest, _spec_option, _connect, _workspace_option]),
}


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
    argv = sys.argv[1:] if argv is None else argv
    out = Output(color="--no-color" not in argv)
    parser = _global_options(Parser(prog="vmctl", description=SUMMARY))
    try:
        args = parse(parser, COMMANDS, argv)
        if args.handler is None:  # `vmctl` alone
            sys.stdout.write(parser.format_help())
            return 1
        code: int | None = args.handler(args)
        return code or 0
    except UsageError as exc:
        sys.stderr.write(exc.usage)
        _report(exc, out)
        return 1
    except VmctlError as exc:
        _report(exc, out)
        return exc.exit_code
    except KeyboardInterrupt:
        out.error("interrupted")
        return 130
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    except Exception as exc:
        return _unexpected(exc, out)


def _tune_gc() -> None:
    """Reading a big host builds many short-lived XML trees and dataclasses but few reference cycles:
    with Python's default thresholds the cycle collector ran so often it cost a third of a plan."""
    import gc

    gc.freeze()  # what the imports made lives as long as the process
    gc.set_threshold(50_000, 20, 20)
    gc.enable()  # the program starts with it off (vmctl/__main__.py)


def _unexpected(exc: Exception, out: Output) -> int:
    if os.environ.get("VMCTL_DEBUG"):
        raise exc
    out.error(
        f"internal error: {type(exc).__name__}: {exc}",
        ["this is a bug in vmctl; run with VMCTL_DEBUG=1 for the traceback"],
    )
    return 1
