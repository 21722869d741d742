"""The tests' side of vmctl's pause points (vmctl/failpoints.py): wait for a vmctl to stop at one,
change the world, then let it go on."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path


def wait_paused(proc: subprocess.Popen[str], directory: Path, at: str, timeout: float = 120.0) -> None:
    """Return once `proc` stopped at pause point `at`; fail if it ended or never got there."""
    deadline = time.monotonic() + timeout
    while not (directory / f"{at}.reached").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"vmctl never reached {at}"
        time.sleep(0.05)


def let_go(directory: Path, at: str) -> None:
    """Let a vmctl stopped at pause point `at` go on."""
    (directory / f"{at}.go").touch()
