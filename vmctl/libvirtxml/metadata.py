"""vmctl's ownership record inside libvirt objects' <metadata>: built and read with lxml.

What libvirt's own XML cannot tell (which project owns a domain, the spec name of each disk's image,
the cloud-init content, the volumes the domain claims) lives here, in vmctl's XML namespace.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from lxml import etree

from vmctl.libvirtxml.tree import by_tag, first, parse
from vmctl.model import CloudInitSpec, DeviceName, DiskRecord, GuestRecord, Owner, VolumeRef

NAMESPACE = "urn:vmctl:metadata:1"
PREFIX = "vmctl"
_Q = f"{{{NAMESPACE}}}"
etree.register_namespace(PREFIX, NAMESPACE)


def _sub(parent: etree._Element, tag: str, **attrs: str | None) -> etree._Element:
    element = etree.SubElement(parent, tag)
    for key, value in attrs.items():
        if value is not None:
            element.set(key.replace("_", "-"), value)
    return element


def _owner_attrs(owner: Owner) -> dict[str, str | None]:
    return {
        "project": owner.project,
        "workspace": owner.workspace,
        "created": owner.created or None,
        "digest": owner.digest or None,
        "expires": owner.expires or None,
        "host": owner.host or None,
    }


def _qualified(element: etree._Element) -> etree._Element:
    """The same tree with every tag in vmctl's namespace, for embedding in a domain's <metadata>."""
    for node in element.iter():
        node.tag = _Q + node.tag
    return element


def guest_element(record: GuestRecord) -> etree._Element:
    """<vmctl:guest> for a domain's <metadata>."""
    return _qualified(_guest_tree(record))


def _guest_tree(record: GuestRecord) -> etree._Element:
    root = etree.Element("guest", {"version": "1"})
    _sub(root, "owner", **_owner_attrs(record.owner))
    _sub(
        root,
        "instance",
        name=record.guest,
        hostname=record.hostname,
        pool=record.pool,
        prevent_destroy="true" if record.prevent_destroy else None,
        creating="true" if record.creating else None,
    )
    for disk in record.disks:
        volume = disk.image_volume
        _sub(
            root,
            "disk",
            name=disk.name,
            image=disk.image,
            image_sha256=disk.image_sha256,
            image_pool=volume.pool if volume else None,
            image_volume=volume.name if volume else None,
        )
    for claim in record.claims:
        _sub(root, "volume", pool=claim.pool, name=claim.name)
    for device in record.devices:
        _sub(root, "device", kind=device.kind, name=device.name, key=device.key)
    if record.cloud_init is not None:
        element = _sub(root, "cloud-init", seed_digest=record.seed_digest)
        element.text = json.dumps(_cloud_init_json(record.cloud_init), sort_keys=True)
    return root


def guest_xml(record: GuestRecord) -> str:
    """The element as text for virDomainSetMetadata, which puts it in the namespace itself."""
    return etree.tostring(_guest_tree(record), encoding="unicode")


def _cloud_init_json(spec: CloudInitSpec) -> dict[str, Any]:
    return {
        "user_data": spec.user_data,
        "meta_data": dict(spec.meta_data),
        "network_config": spec.network_config,
        "sensitive": list(spec.sensitive),
    }


def find_guest_record(metadata: etree._Element | None) -> GuestRecord | None:
    """Read vmctl's record from a domain's <metadata>, or None when vmctl does not own it."""
    root = first(by_tag(metadata), _Q + "guest") if metadata is not None else None
    if root is None:
        return None
    parts = by_tag(root)
    owner_el, instance = first(parts, _Q + "owner"), first(parts, _Q + "instance")
    if owner_el is None or instance is None or not owner_el.get("project"):
        return None
    cloud = first(parts, _Q + "cloud-init")
    return GuestRecord(
        owner=_read_owner(owner_el),
        guest=instance.get("name", ""),
        hostname=instance.get("hostname", ""),
        pool=instance.get("pool", "default"),
        prevent_destroy=instance.get("prevent-destroy") == "true",
        disks=tuple(_read_disk(d) for d in parts.get(_Q + "disk", ())),
        claims=tuple(VolumeRef(v.get("pool", ""), v.get("name", "")) for v in parts.get(_Q + "volume", ())),
        cloud_init=_read_cloud_init(cloud),
        seed_digest=cloud.get("seed-digest") if cloud is not None else None,
        creating=instance.get("creating") == "true",
        devices=tuple(_read_device(d) for d in parts.get(_Q + "device", ()) if d.get("kind") in ("disk", "nic")),
    )


def _read_device(element: etree._Element) -> DeviceName:
    kind: Literal["disk", "nic"] = "disk" if element.get("kind") == "disk" else "nic"
    return DeviceName(kind, element.get("name", ""), element.get("key", ""))


def read_guest_record(xml: str) -> GuestRecord | None:
    """The record as virDomainGetMetadata returns it: the <guest> element alone, outside any namespace."""
    holder = etree.Element("metadata")
    holder.append(_qualified(parse(xml)))
    return find_guest_record(holder)


def _read_disk(element: etree._Element) -> DiskRecord:
    pool, volume = element.get("image-pool"), element.get("image-volume")
    image_volume = VolumeRef(pool, volume) if pool and volume else None
    return DiskRecord(element.get("name", ""), element.get("image"), element.get("image-sha256"), image_volume)


def _read_owner(element: etree._Element) -> Owner:
    return Owner(
        project=element.get("project", ""),
        workspace=element.get("workspace"),
        created=element.get("created", ""),
        digest=element.get("digest", ""),
        expires=element.get("expires", ""),
        host=element.get("host", ""),
    )


def _read_cloud_init(element: etree._Element | None) -> CloudInitSpec | None:
    if element is None or not element.text:
        return None
    try:
        data = json.loads(element.text)
    except ValueError:
        return None
    return CloudInitSpec(
        data.get("user_data"),
        data.get("meta_data") or {},
        data.get("network_config"),
        tuple(data.get("sensitive") or ()),
    )


def network_element(owner: Owner) -> etree._Element:
    """<vmctl:network> for a network's <metadata>."""
    root = etree.Element("network", {"version": "1"})
    _sub(root, "owner", **_owner_attrs(owner))
    return _qualified(root)


def find_network_owner(metadata: etree._Element | None) -> Owner | None:
    root = metadata.find(_Q + "network") if metadata is not None else None
    owner = root.find(_Q + "owner") if root is not None else None
    return _read_owner(owner) if owner is not None and owner.get("project") else None
