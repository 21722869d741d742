"""Domain snapshot XML, built and read with ElementTree."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from vmctl.model import SnapshotInfo


def snapshot_xml(name: str) -> str:
    """An internal snapshot under `name`: libvirt takes the memory too when the guest runs."""
    root = ET.Element("domainsnapshot")
    ET.SubElement(root, "name").text = name
    ET.SubElement(root, "description").text = "made by vmctl snapshot save"
    return ET.tostring(root, encoding="unicode")


def read_snapshot(guest: str, xml: str, current: bool) -> SnapshotInfo:
    root = ET.fromstring(xml)
    created = root.findtext("creationTime") or "0"
    return SnapshotInfo(guest, root.findtext("name", ""), int(created), root.findtext("state", ""), current)
