"""One apply (or destroy) at a time per connection, project and workspace."""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vmctl.errors import LockTimeout


def lock_dir() -> Path:
    # Shared by every user of this machine: two users driving qemu:///system must not interleave.
    return Path(os.environ.get("VMCTL_LOCK_DIR") or "/tmp/vmctl-locks")


def lock_path(uri: str, project: str, workspace: str | None) -> Path:
    key = hashlib.sha256(f"{uri}\0{project}\0{workspace or ''}".encode()).hexdigest()[:24]
    return lock_dir() / f"{project}-{workspace or 'default'}-{key}.lock"


@contextmanager
def apply_lock(uri: str, project: str, workspace: str | None, timeout: float, on_wait: object = None) -> Iterator[None]:
    """Hold the lock for the block; wait up to `timeout` seconds for it, then raise LockTimeout.

    A kernel file lock: released when the process dies, even by kill -9, so it never goes stale.
    """
    path = lock_path(uri, project, workspace)
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib_umask(0):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        _acquire(fd, path, timeout, on_wait)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)


def _acquire(fd: int, path: Path, timeout: float, on_wait: object) -> None:
    deadline = time.monotonic() + timeout
    announced = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        if time.monotonic() >= deadline:
            holder = _holder(path)
            raise LockTimeout(
                f"another vmctl{holder} is applying to this project and workspace; gave up after {timeout:g}s",
                hint="wait for it to finish, or raise --lock-timeout",
            )
        if not announced and callable(on_wait):
            on_wait()
            announced = True
        time.sleep(0.2)


def _holder(path: Path) -> str:
    try:
        pid = path.read_text().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid else ""


@contextmanager
def contextlib_umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)
