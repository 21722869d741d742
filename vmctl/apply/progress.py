"""Progress of apply and destroy: a live per-guest display on a TTY, timestamped lines otherwise."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TextIO

if TYPE_CHECKING:
    from rich.console import Console
    from rich.live import Live
    from rich.table import Table


class Reporter(Protocol):
    def event(self, subject: str, message: str) -> None: ...

    def finished(self, subject: str, ok: bool, message: str) -> None: ...

    def close(self) -> None: ...


class LineReporter:
    """One timestamped line per event: for logs and CI.

    Lines reach the stream within `flush_every` seconds rather than one write each: a log that is
    watched stays current, and a destroy of a hundred guests does not make four hundred writes.
    """

    def __init__(self, stream: TextIO | None = None, flush_every: float = 0.2) -> None:
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._flusher = threading.Thread(target=self._flush_until_closed, args=(flush_every,), daemon=True)
        self._flusher.start()

    def _flush_until_closed(self, every: float) -> None:
        while not self._closed.wait(every):
            self._flush()

    def _flush(self) -> None:
        with self._lock:
            self.stream.flush()

    def _line(self, text: str) -> None:
        with self._lock:
            print(f"{time.strftime('%H:%M:%S')} {text}", file=self.stream)

    def event(self, subject: str, message: str) -> None:
        self._line(f"{subject}: {message}")

    def finished(self, subject: str, ok: bool, message: str) -> None:
        self._line(f"{subject}: {'done' if ok else 'FAILED'}: {message}")

    def close(self) -> None:
        self._closed.set()
        self._flusher.join()
        self._flush()


class LiveReporter:
    """A table that shows each subject's latest step while work runs in parallel."""

    def __init__(self, console: Console) -> None:
        from rich.live import Live

        self.console = console
        self.rows: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()
        self.live: Live = Live(self._table(), console=console, refresh_per_second=8, transient=False)
        self.live.start()

    def _table(self) -> Table:
        from rich.table import Table

        table = Table(show_header=False, box=None, pad_edge=False)
        from rich.markup import escape

        for subject, (state, message) in self.rows.items():
            table.add_row(state, escape(subject), escape(message))
        return table

    def _set(self, subject: str, state: str, message: str) -> None:
        with self._lock:
            self.rows[subject] = (state, message)
            self.live.update(self._table())

    def event(self, subject: str, message: str) -> None:
        self._set(subject, "[yellow]…[/]", message)

    def finished(self, subject: str, ok: bool, message: str) -> None:
        self._set(subject, "[green]✓[/]" if ok else "[red]✗[/]", message)

    def close(self) -> None:
        self.live.stop()


def download_progress(stream: TextIO | None = None) -> Callable[[str, int, int], None]:
    """Prints a download's progress on stderr every 10%: plans stay clean on stdout."""
    shown: dict[str, int] = {}

    def report(what: str, done: int, total: int) -> None:
        percent = done * 100 // total if total else -1
        step = percent // 10 if total else done // (64 * 1024**2)
        if shown.get(what) != step:
            shown[what] = step
            amount = f"{percent}%" if total else f"{done // 1024**2} MiB"
            print(f"{what}: {amount}", file=stream or sys.stderr, flush=True)

    return report
