"""The hypervisor: the one place vmctl talks to libvirt.

Owns: connecting, reading live state, and the named operations plan and apply need (`libvirt/`).
Must not import: `vmctl.plan`, `vmctl.apply`, `vmctl.cli`.
"""

from __future__ import annotations

from vmctl.hypervisor.libvirt import LibvirtBackend, connect

__all__ = ["LibvirtBackend", "connect"]
