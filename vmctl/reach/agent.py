"""Run a program inside a guest through its qemu-guest-agent: no network needed, only the agent channel.

Each stage that can fail says which it was: the domain, its power, the agent, the program.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from vmctl.errors import HypervisorError, VmctlError
from vmctl.hypervisor.interface import Hypervisor, JsonArg

AGENT_POLL = 0.25  # a ping is cheap: answer as soon as the agent is up
EXEC_POLL = 0.1  # most commands finish at once: ask again soon, then less often
EXEC_POLL_MAX = 1.0


@dataclass(frozen=True, slots=True)
class Finished:
    """A program that ran in the guest: its exit code and what it wrote."""

    code: int
    stdout: bytes
    stderr: bytes

    @property
    def output(self) -> str:
        """stdout then stderr, as text."""
        return (self.stdout + self.stderr).decode("utf-8", "replace")


class ReachError(VmctlError):
    """A guest could not be reached; says at which stage, with the serial console's last lines."""

    def __init__(self, guest: str, stage: str, detail: str, *, tail: Sequence[str] = (), hint: str | None = None):
        console = ["last lines of its serial console:", *tail] if tail else []
        super().__init__(f"{guest}: {stage}: {detail}", hint=hint, reasons=console)
        self.stage = stage


def agent_answers(backend: Hypervisor, name: str) -> bool:
    """Whether the guest agent answers a ping now."""
    try:
        backend.agent(name, "guest-ping", timeout=1)
    except HypervisorError:
        return False
    return True


def wait_for_agent(backend: Hypervisor, name: str, deadline: float, tail: Callable[[], list[str]]) -> None:
    """Until the agent answers, or ReachError naming the stage once `deadline` (monotonic) passes."""
    while not agent_answers(backend, name):
        if time.monotonic() >= deadline:
            hint = "is qemu-guest-agent installed and running in the guest (devices.agent: true in the spec)?"
            raise ReachError(name, "waiting for the guest agent", "it did not answer", tail=tail(), hint=hint)
        time.sleep(AGENT_POLL)


def check_running(backend: Hypervisor, name: str, uri: str) -> None:
    """ReachError unless the domain exists and runs."""
    if not backend.domain_exists(name):
        raise ReachError(name, "finding the guest", f"no domain of that name on {uri}", hint="vmctl status lists them")
    if not backend.is_active(name):
        raise ReachError(name, "finding the guest", "it is not running", hint="start it: state: running, then apply")


def run_program(
    backend: Hypervisor, name: str, argv: Sequence[str], timeout: float, stdin: bytes | None = None
) -> Finished:
    """Run argv[0] with the rest as its arguments (no shell) and wait for it, at most `timeout` seconds.
    With `stdin` (even empty), that is the program's input, then end of file."""
    arguments: dict[str, JsonArg] = {"path": argv[0], "arg": list(argv[1:]), "capture-output": True}
    if stdin is not None:
        arguments["input-data"] = base64.b64encode(stdin).decode()
    try:
        started = backend.agent(name, "guest-exec", arguments, timeout=10)
    except HypervisorError as exc:
        raise ReachError(name, f"starting {argv[0]}", exc.detail) from None
    deadline = time.monotonic() + timeout
    poll = EXEC_POLL
    while True:
        status = backend.agent(name, "guest-exec-status", {"pid": started["pid"]}, timeout=10)
        if status.get("exited"):
            out, err = status.get("out-data", ""), status.get("err-data", "")
            return Finished(int(status.get("exitcode", -1)), base64.b64decode(out), base64.b64decode(err))
        if time.monotonic() >= deadline:
            detail = f"did not finish within {timeout:g}s (it goes on running in the guest)"
            raise ReachError(name, f"running {argv[0]}", detail, hint="give it longer: --timeout")
        time.sleep(poll)
        poll = min(poll * 2, EXEC_POLL_MAX)
