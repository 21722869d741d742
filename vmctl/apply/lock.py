"""One apply (or destroy) at a time per project and workspace on each hypervisor.

Two locks, taken in this order: a file lock on this machine (per user, in a directory only that user
can write), then the lock on each hypervisor the command works on (a paused transient domain that
libvirt destroys with the connection that made it, see `vmctl.libvirtxml.lock`). The first keeps
two runs on one machine apart cheaply; the second keeps apart runs on different machines, and
dies with its process, even by kill -9, so it never goes stale.
"""

from __future__ import annotations

import datetime
import fcntl
import getpass
import hashlib
import os
import socket
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, suppress
from pathlib import Path

from vmctl.errors import LockTimeout, VmctlError
from vmctl.hypervisor.interface import Hypervisor
from vmctl.model import LockHolder, Owner

Waiting = Callable[[str], None]  # told, once, who holds the lock being waited for
Ready = Callable[[], None]  # waits until every host's lock is settled; raises if one could not be
_POLL = 0.2  # between tries of a lock held by another vmctl
# A lock about to be given back: vmctl destroys its lock domain before it exits, but that takes
# libvirtd about 0.2 s (it signals QEMU, then looks again 0.2 s later), and so does the lock of a
# vmctl that was killed. A command started meanwhile (another workspace's, or a second terminal's)
# should not wait a whole poll more. Tried more often at first. Nor say it waits, unless the lock
# stays held longer than that.
_FIRST_POLLS = (0.02,) * 25
_QUIET = 0.5


def lock_dir() -> Path:
    """This user's lock directory: VMCTL_LOCK_DIR, else $XDG_RUNTIME_DIR/vmctl, else ~/.cache/vmctl/locks."""
    if os.environ.get("VMCTL_LOCK_DIR"):
        return Path(os.environ["VMCTL_LOCK_DIR"])
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "vmctl"
    return Path(os.path.expanduser("~/.cache/vmctl/locks"))


def lock_path(uri: str, project: str, workspace: str | None) -> Path:
    key = hashlib.sha256(f"{uri}\0{project}\0{workspace or ''}".encode()).hexdigest()[:24]
    return lock_dir() / f"{project}-{workspace or 'default'}-{key}.lock"


def me() -> LockHolder:
    since = datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return LockHolder(socket.gethostname(), os.getpid(), since, _user())


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


@contextmanager
def apply_lock(
    hosts: Sequence[tuple[str, Hypervisor]],
    project: str,
    workspace: str | None,
    timeout: float,
    on_wait: Waiting | None = None,
    ready_later: bool = False,
) -> Iterator[Ready]:
    """Hold the locks of every host (label, hypervisor) for the block; wait up to `timeout` seconds
    in all, then raise LockTimeout naming who holds the lock.

    A hypervisor's lock is held as soon as it is taken, but may take a few tenths of a second more to
    settle. With `ready_later`, that goes on inside the block (while the caller reads and plans), and
    the caller must call the `Ready` it is given before it changes anything; without, it is done
    before the block begins.
    """
    deadline = time.monotonic() + timeout
    waiting = _Announcer(on_wait)
    owner, holder = Owner(project, workspace), me()
    ordered = sorted(hosts, key=lambda h: h[0])
    with ExitStack() as held:
        for label, _ in ordered:
            held.enter_context(_file_lock(lock_path(label, project, workspace), holder, deadline, timeout, waiting))
        for label, backend in ordered:
            _hypervisor_lock(backend, owner, holder, label, deadline, timeout, waiting)
            held.callback(backend.unlock, owner)

        def ready() -> None:
            for _, backend in ordered:
                backend.lock_ready(owner)

        if not ready_later:
            ready()
        yield ready


class _Announcer:
    def __init__(self, on_wait: Waiting | None) -> None:
        self.on_wait = on_wait
        self.told: set[str] = set()

    def __call__(self, who: str) -> None:
        if self.on_wait is not None and who not in self.told:
            self.told.add(who)
            self.on_wait(who)


def _hypervisor_lock(
    backend: Hypervisor,
    owner: Owner,
    holder: LockHolder,
    label: str,
    deadline: float,
    timeout: float,
    waiting: _Announcer,
) -> None:
    polls, began = iter(_FIRST_POLLS), time.monotonic()
    while True:
        other = backend.try_lock(owner, holder)
        if other is None:
            return
        who = f"another vmctl holds the lock of this project and workspace on {label}: {other}"
        if time.monotonic() >= deadline:
            raise LockTimeout(
                f"{who}; gave up after {timeout:g}s", hint="wait for it to finish, or raise --lock-timeout"
            )
        if time.monotonic() - began >= _QUIET:
            waiting(who)
        time.sleep(next(polls, _POLL))


@contextmanager
def local_lock(
    key: str, project: str, workspace: str | None, timeout: float, *, shared: bool = False
) -> Iterator[None]:
    """The file lock alone, on this machine: one holder at a time, or, `shared`, any number of shared
    holders while no one holds it alone."""
    waiting = _Announcer(None)
    path = lock_path(key, project, workspace)
    with _file_lock(path, me(), time.monotonic() + timeout, timeout, waiting, shared=shared):
        yield


def image_lock(pool_path: str, volume: str, *, shared: bool = False) -> AbstractContextManager[None]:
    """An image in a pool, on this machine: held alone to upload or delete it, shared to build a disk on it.

    Workspaces of one spec share their images. Two uploads of one volume would trip over each other's
    partial file; and `destroy --images` in one workspace, which deletes an image once nothing uses it,
    must not find it unused while another workspace's apply is making a disk on it.
    """
    return local_lock(f"image:{pool_path}", "image", volume, timeout=3600, shared=shared)


def pool_lock(pool_path: str) -> AbstractContextManager[None]:
    """A pool's making, starting and removal, one vmctl at a time on this machine: workspaces of one
    spec share their pools, and libvirt refuses a pool started twice or removed twice."""
    return local_lock(f"pool:{pool_path}", "pool", None, timeout=600)


@contextmanager
def _file_lock(
    path: Path, holder: LockHolder, deadline: float, timeout: float, waiting: _Announcer, *, shared: bool = False
) -> Iterator[None]:
    """A kernel file lock: released when the process dies, even by kill -9, so it never goes stale.

    The file is removed on the way out, still locked, so locks do not pile up: whoever waited on
    the removed file finds that out and locks the next one. A shared holder removes it only when it
    is the last one.
    """
    fd = _locked(path, deadline, timeout, waiting, shared)
    try:
        if not shared:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{holder}\n".encode(), 0)
        yield
    finally:
        if not shared or _alone(fd):
            with suppress(OSError):
                os.unlink(path)
        os.close(fd)


def _alone(fd: int) -> bool:
    """Whether this shared holder is the last: it can then hold the lock alone."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _locked(path: Path, deadline: float, timeout: float, waiting: _Announcer, shared: bool) -> int:
    """A descriptor of the lock file at `path`, locked: the file that is there now, not one removed."""
    while True:
        fd = _open_private(path)
        try:
            _acquire(fd, deadline, timeout, waiting, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            if _same_file(fd, path):
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.lstat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _acquire(fd: int, deadline: float, timeout: float, waiting: _Announcer, mode: int) -> None:
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        who = f"another vmctl on this machine holds the lock of this project and workspace{_holder(fd)}"
        if time.monotonic() >= deadline:
            raise LockTimeout(
                f"{who}; gave up after {timeout:g}s", hint="wait for it to finish, or raise --lock-timeout"
            )
        waiting(who)
        time.sleep(_POLL)


def _open_private(path: Path) -> int:
    """Open the lock file in a directory only this user can write, never through a symbolic link."""
    directory = path.parent
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(directory)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise VmctlError(
            f"lock directory {directory} is not a directory of this user's that only it can write",
            hint="remove it (vmctl makes it anew, mode 0700), or set VMCTL_LOCK_DIR",
        )
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        raise VmctlError(
            f"cannot open lock file {path}: {exc.strerror}", hint="is it a symbolic link? remove it"
        ) from None
    if os.fstat(fd).st_uid != os.getuid():
        os.close(fd)
        raise VmctlError(f"lock file {path} belongs to another user", hint="remove it, or set VMCTL_LOCK_DIR")
    return fd


def _holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 512, 0).decode().strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return f": {pid}" if pid else ""
