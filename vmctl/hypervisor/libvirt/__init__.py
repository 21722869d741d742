"""The libvirt implementation of the hypervisor interface: the only code that imports libvirt.

Must not import: `vmctl.plan`, `vmctl.apply`, `vmctl.cli`.
"""

from __future__ import annotations

import libvirt

from vmctl.errors import ConnectError
from vmctl.hypervisor.libvirt.connection import _detail
from vmctl.hypervisor.libvirt.domains import Domains
from vmctl.hypervisor.libvirt.reading import Reading
from vmctl.hypervisor.libvirt.storage import Storage

__all__ = ["LibvirtBackend", "connect"]


class LibvirtBackend(Reading, Storage, Domains):
    """Reads live state in bulk and carries out single, named operations on libvirt objects."""


def connect(uri: str) -> LibvirtBackend:
    """Open a connection, with a message that says how to fix the usual failures."""
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError as exc:
        detail = _detail(exc)
        raise ConnectError(f"connect to {uri}", detail, hint=_connect_hint(uri, detail)) from None
    return LibvirtBackend(conn, uri)


def _connect_hint(uri: str, detail: str) -> str:
    if "No such file" in detail or "Connection refused" in detail:
        return "is libvirtd running? start it (systemctl start libvirtd, or: virtlogd -d; libvirtd -d)"
    if "Permission denied" in detail or "authentication" in detail.lower():
        return "add your user to the 'libvirt' group, or use --connect qemu:///session"
    return f"check the URI ({uri}) and that the hypervisor is reachable"
