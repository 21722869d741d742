"""One apply (or destroy) at a time per connection, project and workspace."""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
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
    The file is removed on the way out, still locked, so locks do not pile up: whoever waited on
    the removed file finds that out and locks the next one.
    """
    path = lock_path(uri, project, workspace)
    fd = _locked(path, time.monotonic() + timeout, timeout, on_wait)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        with suppress(OSError):
            os.unlink(path)
        os.close(fd)


def upload_lock(pool_path: str, volume: str) -> AbstractContextManager[None]:
    """One upload of an image into a pool at a time on this machine: workspaces of one spec share
    their images, and two uploads of one volume would trip over each other's partial file."""
    return apply_lock(f"upload:{pool_path}", "upload", volume, timeout=3600)


def _locked(path: Path, deadline: float, timeout: float, on_wait: object) -> int:
    """A descriptor of the lock file at `path`, locked: the file that is there now, not one removed."""
    while True:
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib_umask(0):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            _acquire(fd, path, deadline, timeout, on_wait)
            if _same_file(fd, path):
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
        on_wait = None  # said once already


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _acquire(fd: int, path: Path, deadline: float, timeout: float, on_wait: object) -> None:
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
