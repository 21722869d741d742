"""Named points where tests interrupt vmctl, to prove any interruption converges.

`VMCTL_FAILPOINT=NAME` makes the process exit at once, without cleanup, when it reaches NAME (as
`kill -9` would). `VMCTL_PAUSEPOINT=NAME` with `VMCTL_PAUSE_DIR=DIR` makes it stop there instead:
it creates DIR/NAME.reached and goes on once DIR/NAME.go exists, so a test can change the world
(restart libvirtd, remove a volume) at exactly that moment.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

_PAUSE_LIMIT = 300.0  # seconds: a test that never says go must not hang the run


def failpoint(name: str) -> None:
    if os.environ.get("VMCTL_FAILPOINT") == name:
        os._exit(137)
    if os.environ.get("VMCTL_PAUSEPOINT") == name and os.environ.get("VMCTL_PAUSE_DIR"):
        _pause(Path(os.environ["VMCTL_PAUSE_DIR"]), name)


def _pause(directory: Path, name: str) -> None:
    (directory / f"{name}.reached").touch()
    deadline = time.monotonic() + _PAUSE_LIMIT
    while not (directory / f"{name}.go").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
