"""Where vmctl's output goes: stdout for results, stderr for errors and progress; colour only on a TTY."""

from __future__ import annotations

import json
import os
import re
import sys
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

_TAG = re.compile(r"\[(?:/|[a-z ]+)?\]")


class Output:
    """Thin wrapper over rich consoles, created lazily so that fast paths never import rich."""

    def __init__(self, color: bool = True) -> None:
        self.color = color and "NO_COLOR" not in os.environ

    def _console(self, stream: Any) -> Console:
        from rich.console import Console

        return Console(
            file=stream,
            no_color=not self.color,
            color_system="auto" if self.color else None,
            highlight=False,
            soft_wrap=True,
            emoji=False,
        )

    @cached_property
    def out(self) -> Console:
        return self._console(sys.stdout)

    @cached_property
    def err(self) -> Console:
        return self._console(sys.stderr)

    @property
    def interactive(self) -> bool:
        return sys.stdin.isatty() and sys.stdout.isatty()

    @property
    def styled(self) -> bool:
        """Colour only reaches a terminal; elsewhere plain text is printed without loading rich."""
        return self.color and sys.stdout.isatty()

    def show(self, text: str) -> None:
        """Print text made for `styled`: rich markup on a terminal, plain text elsewhere."""
        if self.styled:
            self.out.print(text, end="")
        else:
            sys.stdout.write(text)

    def say(self, markup: str) -> None:
        """One line of vmctl's own markup ([green]...[/]); the tags are dropped where colour is not wanted."""
        if self.styled:
            self.out.print(markup)
        else:
            sys.stdout.write(_TAG.sub("", markup) + "\n")

    def notes(self, notes: tuple[str, ...]) -> None:
        """What is worth saying about the spec but is no problem, on stderr, each once."""
        for note in notes:
            sys.stderr.write(f"note: {note}\n")

    def json(self, data: Any) -> None:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")

    def error(self, headline: str, details: list[str] | None = None) -> None:
        """An error headline on stderr, then its details (file:line problems, hints), indented."""
        self.err.print(f"[bold red]error:[/] {_escape(headline)}")
        for line in details or []:
            self.err.print(f"  {_escape(line)}")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
