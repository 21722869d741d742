"""Parsing libvirt's XML, and a parsed domain's elements indexed by tag, each level found in one pass.

All of vmctl's XML is lxml's: it parses three times as fast as ElementTree and writes seven times as
fast, and a big host has a domain definition per guest to read and, on a mass update, to write.

Reading a domain looks some forty elements up by tag. lxml's find() runs a path matcher written in
Python (about 14,000 instructions a call here, the parse of a whole domain's XML about 1,000,000):
a plan of 1000 guests spent more on finding elements than on parsing them. One pass over a level's
children, kept in a dict, does the lookups of that level.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from lxml import etree

_PER_THREAD = threading.local()


def parse(xml: str) -> etree._Element:
    """An element from libvirt's XML (or vmctl's own): no entities expanded, nothing fetched."""
    return etree.fromstring(xml.encode(), _parser())


def _parser() -> etree.XMLParser:
    """One parser per thread: lxml locks a parser that threads share, so they would take turns."""
    parser: etree.XMLParser | None = getattr(_PER_THREAD, "parser", None)
    if parser is None:
        # Without the whitespace between elements (libvirt's indentation: never read, and written
        # anew), comments, and an index of id attributes (nothing looks one up), a domain parses in a
        # tenth fewer instructions.
        parser = _PER_THREAD.parser = etree.XMLParser(
            resolve_entities=False, no_network=True, remove_blank_text=True, remove_comments=True, collect_ids=False
        )
    return parser


def by_tag(children: Iterable[etree._Element]) -> dict[str, list[etree._Element]]:
    """Elements by tag, each tag's in document order (comments are left out)."""
    found: dict[str, list[etree._Element]] = {}
    for child in children:
        tag = child.tag
        if isinstance(tag, str):
            found.setdefault(tag, []).append(child)
    return found


def first(index: Mapping[str, list[etree._Element]], tag: str) -> etree._Element | None:
    found = index.get(tag)
    return found[0] if found else None


def text(index: Mapping[str, list[etree._Element]], tag: str) -> str:
    """The text of the first element named `tag`; empty if it has none, or there is none."""
    found = first(index, tag)
    return (found.text or "") if found is not None else ""


@dataclass(frozen=True, slots=True)
class DomainTree:
    """A domain's top-level elements and its devices, by tag; `devices` in document order."""

    root: etree._Element
    top: Mapping[str, list[etree._Element]]
    devices: tuple[tuple[str, etree._Element], ...]  # (tag, device): lxml makes a new string per .tag
    by_device: Mapping[str, list[etree._Element]]
    _parts: dict[int, dict[str, list[etree._Element]]] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, root: etree._Element, top: Mapping[str, list[etree._Element]] | None = None) -> DomainTree:
        """`top`: the root's children by tag, when already found."""
        top = by_tag(root) if top is None else top
        holder = first(top, "devices")
        devices: list[tuple[str, etree._Element]] = []
        by_device: dict[str, list[etree._Element]] = {}
        for device in holder if holder is not None else ():
            tag = device.tag
            if isinstance(tag, str):  # not a comment
                devices.append((tag, device))
                by_device.setdefault(tag, []).append(device)
        return cls(root, top, tuple(devices), by_device)

    def element(self, tag: str) -> etree._Element | None:
        """The first top-level element named `tag`."""
        return first(self.top, tag)

    def text(self, tag: str) -> str:
        return text(self.top, tag)

    def device(self, tag: str) -> etree._Element | None:
        """The first device named `tag`."""
        return first(self.by_device, tag)

    def devices_of(self, tag: str) -> list[etree._Element]:
        return self.by_device.get(tag, [])

    def parts(self, device: etree._Element) -> Mapping[str, list[etree._Element]]:
        """A device's children by tag, found once however many readers ask (a disk is read thrice)."""
        key = id(device)  # the tree holds the device, so its id stays its own
        if key not in self._parts:
            self._parts[key] = by_tag(device)
        return self._parts[key]
