"""Real guests under TCG: images built from the Debian archive, reached only through their agent."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.tooling.agent import run_in_guest
from tests.tooling.images import GuestImage, ensure_image
from vmctl.hypervisor import Hypervisor, connect

from ..conftest import SYSTEM


@pytest.fixture(scope="session")
def debian_image() -> GuestImage:
    return ensure_image("debian", log=lambda message: print(message, file=sys.stderr))


@pytest.fixture(scope="session")
def tiny_image() -> GuestImage:
    return ensure_image("tiny", log=lambda message: print(message, file=sys.stderr))


@pytest.fixture
def backend(libvirtd: str) -> Iterator[Hypervisor]:
    handle = connect(SYSTEM)
    yield handle
    handle.close()


class Guest:
    """Commands in a guest through its agent, with retries while the agent settles after a change."""

    def __init__(self, backend: Hypervisor, name: str) -> None:
        self.backend = backend
        self.name = name

    def run(self, *argv: str, check: bool = True) -> str:
        code, output = run_in_guest(self.backend, self.name, list(argv))
        if check:
            assert code == 0, f"{' '.join(argv)} exited {code}: {output}"
        return output

    def sh(self, script: str) -> str:
        return self.run("/bin/sh", "-c", script)

    def eventually(self, script: str, ready: Callable[[str], bool], timeout: float = 30) -> str:
        """Run `script` until its output satisfies `ready` (the guest reacts to a hot-plug in its own time)."""
        deadline = time.monotonic() + timeout
        output = ""
        while time.monotonic() < deadline:
            output = self.sh(script)
            if ready(output):
                return output
            time.sleep(0.5)
        raise AssertionError(f"{script!r} never became ready; last output:\n{output}")


def vmctl(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it, in its own process."""
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "vmctl", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def applied(*args: str) -> str:
    result = vmctl("apply", "--yes", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def write_spec(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
