"""The libvirt implementation of the hypervisor interface: the only code that imports libvirt.

`LibvirtHypervisor` (in `hypervisor`) is one object made of parts that share a `Connection`.
Must not import: `vmctl.plan`, `vmctl.apply`, `vmctl.cli`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vmctl.hypervisor.libvirt.hypervisor import LibvirtHypervisor

__all__ = ["LibvirtHypervisor", "connect"]


def connect(uri: str) -> LibvirtHypervisor:
    """Open a connection, with a message that says how to fix the usual failures.

    Only libvirt itself is loaded first: a remote host's ssh handshake goes on while the rest of
    the backend loads (and, with --connect, while the spec is read).
    """
    from vmctl.hypervisor.libvirt.connection import open_connection

    conn = open_connection(uri)
    from vmctl.hypervisor.libvirt.hypervisor import LibvirtHypervisor

    return LibvirtHypervisor(conn, uri)


def __getattr__(name: str) -> Any:
    if name == "LibvirtHypervisor":
        from vmctl.hypervisor.libvirt.hypervisor import LibvirtHypervisor

        return LibvirtHypervisor
    raise AttributeError(name)
