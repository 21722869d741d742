"""The apply lock on the hypervisor: a paused transient domain that dies with its connection."""

from __future__ import annotations

import threading
from contextlib import suppress
from uuid import uuid4

import libvirt

from vmctl.errors import HypervisorError
from vmctl.hypervisor.libvirt.connection import Connection, error_detail, is_missing, is_unsupported
from vmctl.libvirtxml.lock import LOCK_ARCH, lock_domain_xml, lock_name, read_lock_holder
from vmctl.model import LockHolder, Owner

_STARTED = libvirt.VIR_DOMAIN_START_PAUSED | libvirt.VIR_DOMAIN_START_AUTODESTROY
UNKNOWN = LockHolder("an unknown machine", 0, "a moment ago")
_RESERVED_POLL = 0.005  # seconds between looks for the lock domain while libvirtd starts it


class LockOps:
    """Take and give back a project's lock. The lock domain is made on a connection of its own, so
    it lives exactly as long as the lock is held, and dies with this process however it ends.

    The lock is taken the moment libvirtd enters the lock domain in its list (a second one of that
    name is refused from then on); starting its QEMU process takes a few tenths of a second more,
    and goes on in the background while vmctl reads and plans. `ready` waits for it before vmctl
    changes anything: were QEMU to fail to start, libvirtd would drop the domain and the lock.
    """

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._conn: libvirt.virConnect | None = None
        self._held: dict[str, _Start] = {}
        self._arch: str | None = LOCK_ARCH  # None once the host has been found not to offer it

    def try_lock(self, owner: Owner, holder: LockHolder) -> LockHolder | None:
        name = lock_name(owner)
        if name in self._held:
            return None
        conn = self._lock_connection()
        start = self._reserve(conn, name, owner, holder)
        error = start.error if start.finished.is_set() else None
        if error is not None and self._arch is not None and _no_such_arch(error):
            self._arch = None  # a host without 32-bit x86 QEMU: its default architecture then
            start = self._reserve(conn, name, owner, holder)
            error = start.error if start.finished.is_set() else None
        if error is None:
            self._held[name] = start
            return None
        if is_unsupported(error):
            return None  # a driver without autodestroy (the test driver): the local lock alone
        if error.get_error_code() != libvirt.VIR_ERR_OPERATION_FAILED or "already exists" not in str(error):
            raise HypervisorError(f"take the apply lock on {self.connection.uri}", error_detail(error))
        return self._holder(conn, name)

    def _reserve(self, conn: libvirt.virConnect, name: str, owner: Owner, holder: LockHolder) -> _Start:
        """Start the lock domain; return once libvirtd lists it (then it is ours), or its start ended."""
        uuid = str(uuid4())
        start = _Start(conn, lock_domain_xml(name, owner, holder, uuid=uuid, arch=self._arch))
        # Listed means reserved: the rest of the start need not be waited for now.
        while not start.finished.wait(_RESERVED_POLL) and not _listed(conn, uuid):
            pass
        return start

    def ready(self, owner: Owner) -> None:
        start = self._held.get(lock_name(owner))
        if start is None:
            return
        start.finished.wait()
        if start.error is not None:
            self._held.pop(lock_name(owner), None)
            raise HypervisorError(
                f"take the apply lock on {self.connection.uri}",
                f"its lock domain did not start: {error_detail(start.error)}",
                hint="nothing was changed; libvirtd's log for the domain says why",
            )

    def _holder(self, conn: libvirt.virConnect, name: str) -> LockHolder:
        try:
            return read_lock_holder(conn.lookupByName(name).XMLDesc(0)) or UNKNOWN
        except libvirt.libvirtError as exc:
            if is_missing(exc):
                return UNKNOWN  # given back meanwhile: the next try takes it
            raise HypervisorError("read the apply lock", error_detail(exc)) from None

    def unlock(self, owner: Owner) -> None:
        start = self._held.pop(lock_name(owner), None)
        if start is not None:
            start.give_back()
        if not self._held:
            self._release()

    def _release(self) -> None:
        """Close the lock's own connection (every lock held through it was given back)."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            _close(conn)

    def _lock_connection(self) -> libvirt.virConnect:
        if self._conn is None:
            try:
                self._conn = libvirt.open(self.connection.uri)
            except libvirt.libvirtError as exc:
                raise HypervisorError(
                    f"connect to {self.connection.uri} for the apply lock", error_detail(exc)
                ) from None
        return self._conn

    def close(self) -> None:
        """Give back whatever is still held."""
        for start in self._held.values():
            start.give_back()
        self._held.clear()
        self._release()


class _Start:
    """The lock domain's start, under way in a thread of its own."""

    def __init__(self, conn: libvirt.virConnect, xml: str) -> None:
        self.domain: libvirt.virDomain | None = None
        self.error: libvirt.libvirtError | None = None
        self.finished = threading.Event()
        threading.Thread(target=self._run, args=(conn, xml), daemon=True, name="vmctl-lock-start").start()

    def _run(self, conn: libvirt.virConnect, xml: str) -> None:
        try:
            self.domain = conn.createXML(xml, _STARTED)
        except libvirt.libvirtError as exc:
            self.error = exc
        finally:
            self.finished.set()

    def give_back(self) -> None:
        """Destroy the lock domain, and return once libvirtd has forgotten it: a script that lists
        domains the moment vmctl has exited finds none of vmctl's locks. (Closing the connection
        gives the lock back too, but libvirtd answers the close before it has destroyed the domain.
        Either way libvirtd takes about 0.2 s: it signals QEMU, then looks again.)

        A start still under way is waited for first: closing the connection meanwhile leaves the
        domain, and so the lock, in place for seconds more on libvirt 9.0.
        """
        self.finished.wait()
        domain, self.domain = self.domain, None
        if domain is not None:
            with suppress(libvirt.libvirtError):  # gone already: QEMU died, say
                domain.destroy()


def _listed(conn: libvirt.virConnect, uuid: str) -> bool:
    """Whether libvirtd lists the domain of this UUID (from the moment it accepted its name)."""
    try:
        conn.lookupByUUIDString(uuid)
        return True
    except libvirt.libvirtError:
        return False


def _no_such_arch(error: libvirt.libvirtError) -> bool:
    """libvirtd has no emulator for the lock domain's architecture."""
    return error.get_error_code() == libvirt.VIR_ERR_CONFIG_UNSUPPORTED and "arch" in str(error)


def _close(conn: libvirt.virConnect) -> None:
    with suppress(libvirt.libvirtError):
        conn.close()
