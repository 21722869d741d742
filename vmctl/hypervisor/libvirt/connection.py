"""The connection every part of the libvirt backend shares: the objects found through it, and errors.

Objects found while reading are remembered here and reused by the operations that follow: one
lookup saved per call, a thousand on a big apply.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress

import libvirt

from vmctl.errors import ConnectError, HypervisorError

libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # libvirt's own stderr printer: silenced


def error_detail(exc: libvirt.libvirtError) -> str:
    """libvirt's own message."""
    return str(exc.get_error_message() or exc)


def is_missing(exc: libvirt.libvirtError) -> bool:
    """The error says the object is not there (never was, or vanished)."""
    return exc.get_error_code() in (
        libvirt.VIR_ERR_NO_DOMAIN,
        libvirt.VIR_ERR_NO_STORAGE_VOL,
        libvirt.VIR_ERR_NO_STORAGE_POOL,
        libvirt.VIR_ERR_NO_NETWORK,
    )


def is_unsupported(exc: libvirt.libvirtError) -> bool:
    """The driver cannot do it this way (the test driver knows few flags)."""
    return exc.get_error_code() == libvirt.VIR_ERR_NO_SUPPORT or "unsupported flags" in error_detail(exc)


@contextmanager
def translated(operation: str, guest: str | None = None) -> Iterator[None]:
    """libvirt errors become HypervisorErrors that keep libvirt's message and say what was being done."""
    try:
        yield
    except libvirt.libvirtError as exc:
        raise HypervisorError(operation, error_detail(exc), guest=guest) from None


def open_connection(uri: str) -> libvirt.virConnect:
    """Open a connection, with a message that says how to fix the usual failures."""
    try:
        return libvirt.open(uri)
    except libvirt.libvirtError as exc:
        detail = error_detail(exc)
        raise ConnectError(f"connect to {uri}", detail, hint=_connect_hint(uri, detail)) from None


def _connect_hint(uri: str, detail: str) -> str:
    if "+ssh" in uri.split(":", 1)[0]:
        return _ssh_hint(uri, detail)
    if "No such file" in detail or "Connection refused" in detail:
        return "is libvirtd running? start it (systemctl start libvirtd, or: virtlogd -d; libvirtd -d)"
    if "Permission denied" in detail or "authentication" in detail.lower():
        return "add your user to the 'libvirt' group, or use --connect qemu:///session"
    return f"check the URI ({uri}) and that the hypervisor is reachable"


def _ssh_hint(uri: str, detail: str) -> str:
    """What ssh said, turned into what to do: libvirt runs `ssh` with ~/.ssh/config as it is."""
    if "Host key verification failed" in detail or "host key" in detail.lower():
        return "the host's key is not (or no longer) in ~/.ssh/known_hosts: check it, then ssh to the host once"
    if "Permission denied" in detail:
        return "ssh could not log in: check the user in the URI, your key (ssh-agent, IdentityFile in ~/.ssh/config)"
    if "Could not resolve" in detail or "Name or service not known" in detail:
        return "ssh does not know that host: check the name, or its Host entry in ~/.ssh/config"
    if "Connection refused" in detail or "timed out" in detail or "No route" in detail:
        return "no sshd answered: is the host up, and the port (Port in ~/.ssh/config) right?"
    if "virt-ssh-helper" in detail or "nc:" in detail or "socket" in detail:
        return "ssh worked, libvirt did not: the host needs libvirtd running and virt-ssh-helper (or nc) installed"
    return f"try `virsh -c {uri} list` to see what ssh and libvirt say"


class Connection:
    """A libvirt connection and the domains, pools and volumes already found through it."""

    def __init__(self, conn: libvirt.virConnect, uri: str) -> None:
        self.conn = conn
        self.uri = uri
        self._pools: dict[str, libvirt.virStoragePool] = {}
        self._domains: dict[str, libvirt.virDomain] = {}
        self._volumes: dict[tuple[str, str], libvirt.virStorageVol] = {}
        # Streams get a connection of their own, one at a time: libvirt 9.0's client can lose replies
        # (and hang, or drop the connection) when a stream shares a connection with concurrent calls.
        self._stream_conn: libvirt.virConnect | None = None
        self._stream_lock = threading.Lock()
        self._pool_lock = threading.Lock()
        self._closed = False

    def close(self) -> None:
        """Close now, once: every object found through the connection holds it open, so they go first.

        (Were the last of them to go later, the close would happen then: on libvirt 9.0, behind any
        lock domain libvirtd is destroying at that moment, which takes it 0.2 s.)
        """
        if self._closed:
            return
        self._closed = True
        self._pools.clear()
        self._domains.clear()
        self._volumes.clear()
        for conn in (self._stream_conn, self.conn):
            if conn is not None:
                with suppress(libvirt.libvirtError):
                    conn.close()

    # Domains

    def list_domains(self) -> list[libvirt.virDomain]:
        """Every domain, remembered by name (instead of those remembered so far)."""
        with translated("list domains"):
            domains: list[libvirt.virDomain] = self.conn.listAllDomains(0)
        self._domains = {d.name(): d for d in domains}
        return domains

    def find_domain(self, name: str) -> libvirt.virDomain | None:
        if name in self._domains:
            return self._domains[name]
        try:
            dom = self.conn.lookupByName(name)
        except libvirt.libvirtError as exc:
            if is_missing(exc):
                return None
            raise HypervisorError("find domain", error_detail(exc), guest=name) from None
        self._domains[name] = dom
        return dom

    def domain(self, name: str) -> libvirt.virDomain:
        dom = self.find_domain(name)
        if dom is None:
            raise HypervisorError("find domain", f"no domain named {name}", guest=name)
        return dom

    def remember_domain(self, name: str, dom: libvirt.virDomain) -> None:
        self._domains[name] = dom

    def forget_domain(self, name: str) -> None:
        self._domains.pop(name, None)

    # Pools

    def pool(self, name: str) -> libvirt.virStoragePool:
        with self._pool_lock:
            if name not in self._pools:
                with translated(f"find pool {name}"):
                    self._pools[name] = self.conn.storagePoolLookupByName(name)
            return self._pools[name]

    def remember_pool(self, name: str, pool: libvirt.virStoragePool) -> None:
        self._pools[name] = pool

    def forget_pool(self, name: str) -> None:
        self._pools.pop(name, None)

    # Volumes

    def volume(self, pool: str, name: str) -> libvirt.virStorageVol | None:
        if (pool, name) in self._volumes:
            return self._volumes[(pool, name)]
        try:
            vol = self.pool(pool).storageVolLookupByName(name)
        except libvirt.libvirtError as exc:
            if is_missing(exc):
                return None
            raise HypervisorError(f"find volume {name}", error_detail(exc)) from None
        self._volumes[(pool, name)] = vol
        return vol

    def remember_volumes(self, found: Mapping[tuple[str, str], libvirt.virStorageVol]) -> None:
        """The volumes just listed, instead of those remembered so far."""
        self._volumes = dict(found)

    def remember_volume(self, pool: str, name: str, vol: libvirt.virStorageVol) -> None:
        self._volumes[(pool, name)] = vol

    def forget_volume(self, pool: str, name: str) -> None:
        self._volumes.pop((pool, name), None)

    @contextmanager
    def streaming(self, pool: str, name: str) -> Iterator[tuple[libvirt.virConnect, libvirt.virStorageVol]]:
        """The stream connection (opened on first use) and the volume as seen through it."""
        with self._stream_lock:
            with translated(f"open a stream connection to {self.uri}"):
                if self._stream_conn is None:
                    self._stream_conn = libvirt.open(self.uri)
                vol = self._stream_conn.storagePoolLookupByName(pool).storageVolLookupByName(name)
            yield self._stream_conn, vol
