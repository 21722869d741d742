"""The connection every part of the libvirt backend shares: objects found, error translation."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import libvirt

from vmctl.errors import HypervisorError

libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # libvirt's own stderr printer: silenced


def _detail(exc: libvirt.libvirtError) -> str:
    return str(exc.get_error_message() or exc)


def _missing(exc: libvirt.libvirtError) -> bool:
    return exc.get_error_code() in (
        libvirt.VIR_ERR_NO_DOMAIN,
        libvirt.VIR_ERR_NO_STORAGE_VOL,
        libvirt.VIR_ERR_NO_STORAGE_POOL,
        libvirt.VIR_ERR_NO_NETWORK,
    )


@contextmanager
def _translated(operation: str, guest: str | None = None) -> Iterator[None]:
    """libvirt errors become HypervisorErrors that keep libvirt's message and say what was being done."""
    try:
        yield
    except libvirt.libvirtError as exc:
        raise HypervisorError(operation, _detail(exc), guest) from None


def _flags(live: bool, config: bool) -> int:
    flags = 0
    if live:
        flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
    if config:
        flags |= libvirt.VIR_DOMAIN_AFFECT_CONFIG
    return flags


def _shutdown(dom: libvirt.virDomain, flags: int) -> None:
    try:
        dom.shutdownFlags(flags)
    except libvirt.libvirtError as exc:
        if "unsupported flags" not in _detail(exc) and exc.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT:
            raise
        dom.shutdown()  # drivers that cannot choose the method (the test driver)


def _capacity(vol: libvirt.virStorageVol) -> int:
    """A volume's size in bytes; -2 when it vanished while being read."""
    try:
        return int(vol.info()[1])
    except libvirt.libvirtError as exc:
        if _missing(exc):
            return -2
        raise HypervisorError(f"read volume {vol.name()}", _detail(exc)) from None


class Connection:
    """A libvirt connection and the objects already found through it."""

    def __init__(self, conn: libvirt.virConnect, uri: str) -> None:
        self.conn = conn
        self.uri = uri
        # Objects found while reading, reused by the operations that follow: one lookup saved per call.
        self._pool_cache: dict[str, libvirt.virStoragePool] = {}
        self._domains: dict[str, libvirt.virDomain] = {}
        self._volumes: dict[tuple[str, str], libvirt.virStorageVol] = {}
        # Streams get a connection of their own, one at a time: libvirt 9.0's client can lose replies
        # (and hang, or drop the connection) when a stream shares a connection with concurrent calls.
        self._stream_conn: libvirt.virConnect | None = None
        self._stream_lock = threading.Lock()
        self._lock = threading.Lock()

    def close(self) -> None:
        for conn in (self._stream_conn, self.conn):
            if conn is not None:
                with suppress(libvirt.libvirtError):
                    conn.close()

    def _pool(self, name: str) -> libvirt.virStoragePool:
        with self._lock:
            if name not in self._pool_cache:
                with _translated(f"find pool {name}"):
                    self._pool_cache[name] = self.conn.storagePoolLookupByName(name)
            return self._pool_cache[name]

    def _volume(self, pool: str, name: str) -> libvirt.virStorageVol | None:
        if (pool, name) in self._volumes:
            return self._volumes[(pool, name)]
        try:
            vol = self._pool(pool).storageVolLookupByName(name)
        except libvirt.libvirtError as exc:
            if _missing(exc):
                return None
            raise HypervisorError(f"find volume {name}", _detail(exc)) from None
        self._volumes[(pool, name)] = vol
        return vol

    def _find_domain(self, name: str) -> libvirt.virDomain | None:
        if name in self._domains:
            return self._domains[name]
        try:
            dom = self.conn.lookupByName(name)
        except libvirt.libvirtError as exc:
            if _missing(exc):
                return None
            raise HypervisorError("find domain", _detail(exc), name) from None
        self._domains[name] = dom
        return dom

    def _domain(self, name: str) -> libvirt.virDomain:
        dom = self._find_domain(name)
        if dom is None:
            raise HypervisorError("find domain", f"no domain named {name}", name)
        return dom

    @contextmanager
    def _streaming(self, pool: str, name: str) -> Iterator[tuple[libvirt.virConnect, libvirt.virStorageVol]]:
        """The stream connection (opened on first use) and the volume as seen through it."""
        with self._stream_lock:
            with _translated(f"open a stream connection to {self.uri}"):
                if self._stream_conn is None:
                    self._stream_conn = libvirt.open(self.uri)
                vol = self._stream_conn.storagePoolLookupByName(pool).storageVolLookupByName(name)
            yield self._stream_conn, vol
