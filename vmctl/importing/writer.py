"""The spec text `vmctl import` writes: vmctl's YAML style, with a comment per guest saying where it came from.

The data goes through the YAML library; only the comments, which YAML data cannot hold, are lines of
their own between the guests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from vmctl.importing.guest import ImportedGuest


def _dump(data: dict[str, Any]) -> str:
    # Flow style for the innermost mappings, as vmctl's examples write disks and NICs.
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=120, allow_unicode=True)


def _indented(text: str, spaces: int) -> str:
    return "".join(" " * spaces + line if line.strip() else line for line in text.splitlines(keepends=True))


def spec_text(project: str, uri: str, when: str, guests: Sequence[ImportedGuest]) -> str:
    """A whole spec file adopting `guests`."""
    networks: dict[str, Any] = {}
    pools: dict[str, Any] = {}
    for guest in guests:
        networks.update(guest.networks)
        pools.update(guest.pools)
    lines = [
        f"# Written by `vmctl import` from {uri} at {when}.",
        "# `vmctl apply` adopts these domains: it writes vmctl's record into each and changes nothing else.",
        "# Disks name existing volumes and files: vmctl never deletes them.",
        yaml.safe_dump({"version": 1, "project": project}, sort_keys=False, default_flow_style=False),
    ]
    if pools:
        lines.append("# Existing storage pools the guests boot from: vmctl never removes a pool it did not make.")
        lines.append(_dump({"pools": pools}))
    if networks:
        lines.append("# Existing libvirt networks: used as they are, never changed or removed.")
        lines.append(_dump({"networks": networks}))
    lines.append("guests:")
    text = "\n".join(lines)
    for guest in guests:
        text += "\n" + "\n".join(f"  # {line}" for line in guest_comment(guest, uri)) + "\n"
        text += _indented(_dump({guest.domain: guest.body}), 2)
    return text


def guest_comment(guest: ImportedGuest, uri: str) -> list[str]:
    power = "running" if guest.active else "shut off"
    lines = [f"domain {guest.domain} (uuid {guest.uuid}) on {uri}, {power} when imported", *guest.notes]
    if guest.unmodelled:
        lines.append("imported with --force: vmctl does not model these, and drops them when it redefines the domain:")
        lines.extend(f"  - {element}" for element in guest.unmodelled)
    return lines
