"""The apply lock on the hypervisor: a paused transient domain that dies with its connection."""

from __future__ import annotations

import threading
from contextlib import suppress

import libvirt

from vmctl.errors import HypervisorError
from vmctl.hypervisor.libvirt.connection import Connection, error_detail, is_missing, is_unsupported
from vmctl.libvirtxml.lock import lock_domain_xml, lock_name, read_lock_holder
from vmctl.model import LockHolder, Owner

_STARTED = libvirt.VIR_DOMAIN_START_PAUSED | libvirt.VIR_DOMAIN_START_AUTODESTROY
UNKNOWN = LockHolder("an unknown machine", 0, "a moment ago")


class LockOps:
    """Take and give back a project's lock. The lock domain is made on a connection of its own, so
    it lives exactly as long as the lock is held, and dies with this process however it ends."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._conn: libvirt.virConnect | None = None
        self._held: dict[str, libvirt.virDomain] = {}

    def try_lock(self, owner: Owner, holder: LockHolder) -> LockHolder | None:
        name = lock_name(owner)
        if name in self._held:
            return None
        conn = self._lock_connection()
        try:
            self._held[name] = conn.createXML(lock_domain_xml(name, owner, holder), _STARTED)
            return None
        except libvirt.libvirtError as exc:
            if is_unsupported(exc):
                return None  # a driver without autodestroy (the test driver): the local lock alone
            if exc.get_error_code() != libvirt.VIR_ERR_OPERATION_FAILED or "already exists" not in str(exc):
                raise HypervisorError(f"take the apply lock on {self.connection.uri}", error_detail(exc)) from None
        return self._holder(conn, name)

    def _holder(self, conn: libvirt.virConnect, name: str) -> LockHolder:
        try:
            return read_lock_holder(conn.lookupByName(name).XMLDesc(0)) or UNKNOWN
        except libvirt.libvirtError as exc:
            if is_missing(exc):
                return UNKNOWN  # given back meanwhile: the next try takes it
            raise HypervisorError("read the apply lock", error_detail(exc)) from None

    def unlock(self, owner: Owner) -> None:
        self._held.pop(lock_name(owner), None)
        if not self._held and self._conn is not None:
            # Closing the lock's own connection gives the lock back (libvirtd destroys an autodestroy
            # domain with its connection), but libvirtd answers the close only once QEMU has exited, a
            # second or more: close in the background; were this process to exit first, its socket
            # closing gives the lock back all the same, as it does for a vmctl killed with -9.
            conn, self._conn = self._conn, None
            threading.Thread(target=_close, args=(conn,), daemon=True, name="vmctl-lock-release").start()

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
        for name in list(self._held):
            dom = self._held.pop(name)
            with suppress(libvirt.libvirtError):
                dom.destroy()
        if self._conn is not None:
            with suppress(libvirt.libvirtError):
                self._conn.close()
            self._conn = None


def _close(conn: libvirt.virConnect) -> None:
    with suppress(libvirt.libvirtError):
        conn.close()
