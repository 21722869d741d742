"""The hypervisor: the one place vmctl talks to libvirt, behind a small typed interface.

Owns: the `Hypervisor` interface of the operations plan and apply need (`interface`), making live
state of what a hypervisor reports (`livestate`, pure), and its libvirt implementation (`libvirt/`).
Importing this package does not import libvirt: `connect` does.
Must not import: `vmctl.plan`, `vmctl.apply`, `vmctl.cli`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vmctl.hypervisor.interface import (
    Addresses,
    AgentReply,
    GuestExecStarted,
    GuestExecStatus,
    GuestVcpu,
    Hypervisor,
    JsonArg,
    JsonValue,
    UploadProgress,
)

if TYPE_CHECKING:
    from vmctl.hypervisor.libvirt import LibvirtBackend, LibvirtHypervisor

__all__ = [
    "Addresses",
    "AgentReply",
    "GuestExecStarted",
    "GuestExecStatus",
    "GuestVcpu",
    "Hypervisor",
    "JsonArg",
    "JsonValue",
    "LibvirtBackend",
    "UploadProgress",
    "connect",
]


def connect(uri: str) -> LibvirtHypervisor:
    """Connect to the hypervisor at a libvirt URI.

    Typed as the libvirt implementation until every caller holds a `Hypervisor`; then `-> Hypervisor`.
    """
    from vmctl.hypervisor.libvirt import connect as connect_libvirt

    return connect_libvirt(uri)


if not TYPE_CHECKING:  # hidden from mypy, which would take any misspelt name for this

    def __getattr__(name: str) -> Any:
        # `LibvirtBackend`, the old name of the implementation, loads libvirt only when asked for.
        if name == "LibvirtBackend":
            from vmctl.hypervisor.libvirt import LibvirtBackend

            return LibvirtBackend
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
