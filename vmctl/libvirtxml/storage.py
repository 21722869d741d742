"""Storage pool and volume XML, built and read with lxml."""

from __future__ import annotations

import uuid

from lxml import etree

from vmctl.libvirtxml.tree import parse
from vmctl.model import LivePool, Owner

# Pools have no <metadata>: vmctl marks the pools it creates by a UUID derived from their owner.
_POOL_NAMESPACE = uuid.UUID("5b0c8d3e-8f6a-4a55-9b0e-7d1c0f6e2a41")


def pool_uuid(owner: Owner, pool: str) -> str:
    return str(uuid.uuid5(_POOL_NAMESPACE, f"{owner.project}/{owner.workspace or ''}/{pool}"))


def pool_xml(name: str, path: str, owner: Owner) -> str:
    root = etree.Element("pool", {"type": "dir"})
    etree.SubElement(root, "name").text = name
    etree.SubElement(root, "uuid").text = pool_uuid(owner, name)
    target = etree.SubElement(root, "target")
    etree.SubElement(target, "path").text = path
    return etree.tostring(root, encoding="unicode")


def read_pool(xml: str, active: bool, owner: Owner) -> LivePool:
    """A pool as read; owned when its UUID is the one vmctl gives pools it creates for `owner`."""
    root = parse(xml)
    name = root.findtext("name", "")
    path = (root.findtext("target/path") or "").rstrip("/") or "/"
    owned = root.findtext("uuid", "") == pool_uuid(owner, name)
    return LivePool(name, path, active, owner if owned else None, root.get("type", "dir"))


# Volumes hold guest data, and seeds hold user-data with its passwords and keys: only their owner
# reads them. libvirt (dynamic_ownership, Debian's default) hands a volume to the QEMU user while a
# guest uses it and gives it back after; nobody else ever needs to read one.
VOLUME_MODE = 0o600


def volume_xml(
    name: str, capacity: int, fmt: str, backing_path: str | None = None, backing_format: str = "qcow2"
) -> str:
    root = etree.Element("volume")
    etree.SubElement(root, "name").text = name
    etree.SubElement(root, "capacity", {"unit": "bytes"}).text = str(capacity)
    target = etree.SubElement(root, "target")
    etree.SubElement(target, "format", {"type": fmt})
    etree.SubElement(etree.SubElement(target, "permissions"), "mode").text = f"{VOLUME_MODE:04o}"
    if backing_path:
        backing = etree.SubElement(root, "backingStore")
        etree.SubElement(backing, "path").text = backing_path
        etree.SubElement(backing, "format", {"type": backing_format})
    return etree.tostring(root, encoding="unicode")


def backing_path(xml: str) -> str | None:
    """The file a volume is an overlay of, if any."""
    return parse(xml).findtext("backingStore/path") or None
