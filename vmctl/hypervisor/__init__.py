"""The hypervisor: the one place vmctl talks to libvirt, behind a small typed interface.

Owns: the `Hypervisor` interface of the operations plan and apply need (`interface`), making live
state of what a hypervisor reports (`livestate`, pure), what domains read as kept between runs
(`readmemo`), and its libvirt implementation (`libvirt/`).
Importing this package does not import libvirt: `connect` does.
Must not import: `vmctl.plan`, `vmctl.apply`, `vmctl.cli`.
"""

from __future__ import annotations

from vmctl.hypervisor.interface import (
    Addresses,
    AgentReply,
    ConsoleStream,
    GuestExecStarted,
    GuestExecStatus,
    GuestVcpu,
    Hypervisor,
    JsonArg,
    JsonValue,
    UploadProgress,
)

__all__ = [
    "Addresses",
    "AgentReply",
    "ConsoleStream",
    "GuestExecStarted",
    "GuestExecStatus",
    "GuestVcpu",
    "Hypervisor",
    "JsonArg",
    "JsonValue",
    "UploadProgress",
    "connect",
]


def connect(uri: str) -> Hypervisor:
    """Connect to the hypervisor at a libvirt URI (libvirt is loaded only now)."""
    from vmctl.hypervisor.libvirt import connect as connect_libvirt

    return connect_libvirt(uri)
