"""Command-line parsing on argparse: usage errors exit 1 with a suggestion, and help reads well.

argparse, not typer: typer cost 15 to 20 ms of every command (its import, then rebuilding a click
command from the functions' signatures at each start), the largest part of vmctl's fixed start-up
cost, which is what decided the 100-guest destroy benchmark (docs/benchmarks.md). Only the parser of
the command being run is built.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

from vmctl.errors import VmctlError

Handler = Callable[[argparse.Namespace], int | None]
Options = Callable[["Parser"], object]


class UsageError(VmctlError):
    """A command line that does not parse; shown with the usage of the command it was meant for."""

    def __init__(self, message: str, usage: str, prog: str) -> None:
        super().__init__(message, hint=f"{prog} --help lists what it takes")
        self.usage = usage


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises UsageError instead of exiting 2 (2 means "changes present")."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        kwargs.setdefault("allow_abbrev", False)  # a prefix that works today must not break when an option is added
        kwargs["add_help"] = False  # added below, in the same voice as every other option's help
        super().__init__(*args, **kwargs)
        self.add_argument("-h", "--help", action="help", help="Show this help and exit.")

    def error(self, message: str) -> NoReturn:
        prefix = "unrecognized arguments: "
        if message.startswith(prefix):
            typed = message.removeprefix(prefix).split()
            options = [o for a in self._actions for o in a.option_strings]
            message = f"unknown argument {typed[0]}{_suggestion(typed[0].split('=')[0], options)}"
        raise UsageError(message, self.format_usage(), self.prog)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """`-c, --connect URI` rather than argparse's `-c URI, --connect URI`."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=100)

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if not action.option_strings or action.nargs == 0:
            return super()._format_action_invocation(action)
        return f"{', '.join(action.option_strings)} {self._format_args(action, action.dest.upper())}"


def parse(
    top: Parser, commands: Mapping[str, tuple[Handler, Sequence[Options]]], argv: Sequence[str]
) -> argparse.Namespace:
    """Global options, then a command and its own arguments, in any order after it.

    The namespace's `handler` is None when no command was given.
    """
    top.usage = f"{top.prog} [OPTIONS] COMMAND [ARGS]..."
    top.epilog = _command_list(commands)
    top.add_argument("command", nargs="?", metavar="COMMAND", help=argparse.SUPPRESS)
    top.add_argument("arguments", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = top.parse_args(argv)
    args.handler = None
    if args.command is None:
        return args
    if args.command not in commands:
        top.error(f"no command named {args.command!r}{_suggestion(args.command, list(commands))}")
    handler, options = commands[args.command]
    sub = Parser(prog=f"{top.prog} {args.command}", description=_doc(handler))
    for add in options:
        add(sub)
    sub.parse_intermixed_args(args.arguments, namespace=args)
    args.handler = handler
    return args


def _command_list(commands: Mapping[str, tuple[Handler, Sequence[Options]]]) -> str:
    width = max(len(name) for name in commands) + 2
    lines = [f"  {name:<{width}}{_doc(handler).splitlines()[0]}" for name, (handler, _) in commands.items()]
    return "commands:\n" + "\n".join(lines) + "\n\nvmctl COMMAND --help shows a command's own options."


def _doc(handler: Handler) -> str:
    return (handler.__doc__ or "").strip()


def _suggestion(typed: str, words: list[str]) -> str:
    """ " (did you mean apply?)" for a mistyped command or option, or nothing."""
    import difflib

    close = difflib.get_close_matches(typed, words, n=1)
    return f" (did you mean {close[0]}?)" if close else ""
