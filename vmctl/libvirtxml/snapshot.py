"""Domain snapshot XML, built and read with lxml."""

from __future__ import annotations

from lxml import etree

from vmctl.libvirtxml.tree import parse
from vmctl.model import SnapshotInfo


def snapshot_xml(name: str) -> str:
    """An internal snapshot under `name`: libvirt takes the memory too when the guest runs."""
    root = etree.Element("domainsnapshot")
    etree.SubElement(root, "name").text = name
    etree.SubElement(root, "description").text = "made by vmctl snapshot save"
    return etree.tostring(root, encoding="unicode")


def read_snapshot(guest: str, xml: str, current: bool) -> SnapshotInfo:
    root = parse(xml)
    created = root.findtext("creationTime") or "0"
    return SnapshotInfo(guest, root.findtext("name", ""), int(created), root.findtext("state", ""), current)
