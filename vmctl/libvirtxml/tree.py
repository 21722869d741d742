"""A parsed domain's elements indexed by tag, each level found in one pass.

Reading a domain looks some forty elements up by tag. lxml's find() runs a path matcher written in
Python (about 14,000 instructions a call here, the parse of a whole domain's XML about 1,000,000):
a plan of 1000 guests spent more on finding elements than on parsing them. One pass over a level's
children, kept in a dict, does the lookups of that level.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


def by_tag(children: Iterable[ET.Element]) -> dict[str, list[ET.Element]]:
    """Elements by tag, each tag's in document order (comments are left out)."""
    found: dict[str, list[ET.Element]] = {}
    for child in children:
        tag = child.tag
        if isinstance(tag, str):
            found.setdefault(tag, []).append(child)
    return found


def first(index: Mapping[str, list[ET.Element]], tag: str) -> ET.Element | None:
    found = index.get(tag)
    return found[0] if found else None


def text(index: Mapping[str, list[ET.Element]], tag: str) -> str:
    """The text of the first element named `tag`; empty if it has none, or there is none."""
    found = first(index, tag)
    return (found.text or "") if found is not None else ""


@dataclass(frozen=True, slots=True)
class DomainTree:
    """A domain's top-level elements and its devices, by tag; `devices` in document order."""

    root: ET.Element
    top: Mapping[str, list[ET.Element]]
    devices: tuple[tuple[str, ET.Element], ...]  # (tag, device): lxml makes a new string per .tag
    by_device: Mapping[str, list[ET.Element]]
    _parts: dict[int, dict[str, list[ET.Element]]] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, root: ET.Element, top: Mapping[str, list[ET.Element]] | None = None) -> DomainTree:
        """`top`: the root's children by tag, when already found."""
        top = by_tag(root) if top is None else top
        holder = first(top, "devices")
        devices: list[tuple[str, ET.Element]] = []
        by_device: dict[str, list[ET.Element]] = {}
        for device in holder if holder is not None else ():
            tag = device.tag
            if isinstance(tag, str):  # not a comment
                devices.append((tag, device))
                by_device.setdefault(tag, []).append(device)
        return cls(root, top, tuple(devices), by_device)

    def element(self, tag: str) -> ET.Element | None:
        """The first top-level element named `tag`."""
        return first(self.top, tag)

    def text(self, tag: str) -> str:
        return text(self.top, tag)

    def device(self, tag: str) -> ET.Element | None:
        """The first device named `tag`."""
        return first(self.by_device, tag)

    def devices_of(self, tag: str) -> list[ET.Element]:
        return self.by_device.get(tag, [])

    def parts(self, device: ET.Element) -> Mapping[str, list[ET.Element]]:
        """A device's children by tag, found once however many readers ask (a disk is read thrice)."""
        key = id(device)  # the tree holds the device, so its id stays its own
        if key not in self._parts:
            self._parts[key] = by_tag(device)
        return self._parts[key]
