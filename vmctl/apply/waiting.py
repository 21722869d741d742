"""Wait until a started guest is ready: its agent answers, then cloud-init reports done."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from pathlib import Path

from vmctl.errors import HypervisorError, VmctlError, WaitTimeout
from vmctl.hypervisor.interface import Hypervisor
from vmctl.model import GuestSpec
from vmctl.reach.agent import AGENT_POLL, agent_answers

CLOUD_INIT_POLL = 1.0  # each check starts a process in the guest


def wait_ready(
    backend: Hypervisor,
    guest: GuestSpec,
    log_path: str | None,
    say: Callable[[str], None],
    timeout: float | None = None,
) -> None:
    """Block until the guest is ready as its spec's `wait` says, or raise WaitTimeout."""
    deadline = time.monotonic() + (timeout if timeout is not None else guest.wait.timeout)
    if guest.wait.agent or guest.wait.cloud_init:
        say("waiting for the guest agent")
        _until(
            deadline,
            lambda: agent_answers(backend, guest.name),
            "the guest agent to answer",
            guest,
            log_path,
            AGENT_POLL,
        )
    if guest.wait.cloud_init:
        say("waiting for cloud-init")
        _until(
            deadline,
            lambda: cloud_init_done(backend, guest.name),
            "cloud-init to finish",
            guest,
            log_path,
            CLOUD_INIT_POLL,
        )


def _until(
    deadline: float, ready: Callable[[], bool], stage: str, guest: GuestSpec, log_path: str | None, poll: float
) -> None:
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(poll)
    tail = serial_tail(log_path)
    details = ["last lines of its serial console:", *tail] if tail else []
    raise WaitTimeout(
        f"{guest.name}: timed out waiting for {stage}",
        hint=f"raise wait.timeout in the spec, or look at the console: virsh console {guest.name}",
        reasons=details,
    )


def guest_exec(backend: Hypervisor, name: str, path: str, args: list[str], timeout: float = 30) -> tuple[int, str]:
    """Run a program in the guest through its agent; (exit code, stdout+stderr)."""
    started = backend.agent(name, "guest-exec", {"path": path, "arg": args, "capture-output": True}, timeout=10)
    pid = started["pid"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = backend.agent(name, "guest-exec-status", {"pid": pid}, timeout=10)
        if status.get("exited"):
            output = base64.b64decode(status.get("out-data", "")) + base64.b64decode(status.get("err-data", ""))
            return int(status.get("exitcode", -1)), output.decode("utf-8", "replace")
        time.sleep(0.2)
    raise HypervisorError(f"guest-exec {path}", f"did not finish within {timeout:g}s", guest=name)


def cloud_init_done(backend: Hypervisor, name: str) -> bool:
    """True once `cloud-init status` says done; an error status fails at once."""
    try:
        _code, output = guest_exec(backend, name, "cloud-init", ["status"], timeout=20)
    except HypervisorError:
        return False
    if "status: done" in output:
        return True
    if "status: error" in output:
        raise VmctlError(f"{name}: cloud-init reported an error", hint="inside the guest: cloud-init status --long")
    return False


def serial_tail(log_path: str | None, lines: int = 15) -> list[str]:
    """The last lines of the serial log, when the hypervisor's files are readable from here."""
    if not log_path:
        return []
    try:
        text = Path(log_path).read_text("utf-8", errors="replace")
    except OSError:
        return [f"(the serial log {log_path} is on the hypervisor host)"]
    return [line.rstrip() for line in text.splitlines()[-lines:]]
