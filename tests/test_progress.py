"""Progress lines for logs and CI: every event is shown, and a watched log stays current."""

from __future__ import annotations

import io
import time

from vmctl.apply.progress import LineReporter


class WatchedLog(io.StringIO):
    """A log as a reader sees it: only what was flushed."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = ""
        self.flushes = 0

    def flush(self) -> None:
        self.seen = self.getvalue()
        self.flushes += 1


def test_every_event_is_in_the_log_once_closed() -> None:
    log = WatchedLog()
    reporter = LineReporter(log)
    for index in range(100):
        reporter.event(f"guest g-{index}", "deleting volume")
        reporter.finished(f"guest g-{index}", index != 7, "deleted")
    reporter.close()
    lines = log.seen.splitlines()
    assert len(lines) == 200
    assert lines[0].endswith("guest g-0: deleting volume")
    assert lines[15].endswith("guest g-7: FAILED: deleted")
    assert log.flushes < 20  # not one write per line


def test_a_slow_step_shows_in_the_log_while_it_runs() -> None:
    log = WatchedLog()
    reporter = LineReporter(log, flush_every=0.05)
    try:
        reporter.event("guest web", "shutting down")
        deadline = time.monotonic() + 5
        while "shutting down" not in log.seen and time.monotonic() < deadline:
            time.sleep(0.01)
        assert "guest web: shutting down" in log.seen
    finally:
        reporter.close()
