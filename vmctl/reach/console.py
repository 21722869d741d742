"""The serial console: the last lines of its log, and an interactive session over libvirt's stream.

The session needs nothing on the hypervisor host but libvirtd (it works for remote hosts too); the
log is read where vmctl runs, so `--tail` needs the host's log directory to be local.
"""

from __future__ import annotations

import os
import select
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vmctl.errors import VmctlError
from vmctl.hypervisor.interface import ConsoleStream

ESCAPE = b"\x1d"  # Ctrl-], as virsh console and telnet use
STDIN_POLL = 0.2  # how often the keyboard loop looks whether the guest side ended


def log_tail(log_path: str | None, lines: int) -> list[str]:
    """The last `lines` lines of a serial log file; VmctlError when there is none to read here."""
    if not log_path:
        raise VmctlError(
            "the guest's serial console is not logged to a file", hint="vmctl console GUEST attaches to it"
        )
    try:
        text = Path(log_path).read_text("utf-8", errors="replace")
    except FileNotFoundError:
        raise VmctlError(f"no serial log yet at {log_path}", hint="it is written once the guest has started") from None
    except OSError as exc:
        raise VmctlError(f"cannot read the serial log {log_path}: {exc.strerror}") from None
    kept = text.splitlines()[-lines:] if lines > 0 else []
    return [line.rstrip("\r") for line in kept]


def quiet_tail(log_path: str | None, lines: int = 15) -> list[str]:
    """The log's last lines for an error message: never fails, says why when it cannot read them."""
    try:
        return log_tail(log_path, lines)
    except VmctlError as exc:
        return [f"({exc.message})"]


@contextmanager
def _raw(fd: int) -> Iterator[None]:
    """The terminal passes every key through (Ctrl-C included) until the session ends."""
    if not os.isatty(fd):
        yield
        return
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def attach(stream: ConsoleStream, stdin: int, stdout: int) -> str:
    """Copy the guest's console to `stdout` and keys to the guest until Ctrl-] or the guest side ends.

    Returns why the session ended.
    """
    ended = threading.Event()

    def guest_to_user() -> None:
        try:
            while data := stream.recv(4096):
                os.write(stdout, data)
        except VmctlError:
            pass
        ended.set()

    threading.Thread(target=guest_to_user, daemon=True, name="console-reader").start()
    with _raw(stdin):
        reason = _user_to_guest(stream, stdin, ended)
    stream.close()
    return reason


def _user_to_guest(stream: ConsoleStream, stdin: int, ended: threading.Event) -> str:
    while not ended.is_set():
        ready, _, _ = select.select([stdin], [], [], STDIN_POLL)
        if not ready:
            continue
        keys = os.read(stdin, 1024)
        if not keys:
            return "end of input"
        before, escape, _after = keys.partition(ESCAPE)
        if before:
            stream.send(before)
        if escape:
            return "escape (Ctrl-])"
    return "the console closed"
