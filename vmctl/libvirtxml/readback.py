"""Read libvirt domain XML back into the live model (GuestState), so live state diffs field by field.

Reads what it understands and ignores the rest: libvirt adds controllers, aliases, addresses and
expands machine types; domains vmctl did not write parse too (only their name matters then).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Literal, cast

from lxml import etree

from vmctl.libvirtxml.domain import AGENT_CHANNEL
from vmctl.libvirtxml.metadata import NAMESPACE, find_guest_record
from vmctl.libvirtxml.tree import DomainTree, by_tag, first, parse, text
from vmctl.libvirtxml.unmodelled import unmodelled
from vmctl.model import (
    BootSpec,
    DevicesSpec,
    DiskState,
    FileRef,
    GuestRecord,
    GuestState,
    NicSpec,
    Owner,
    SeedSpec,
    ShareSpec,
)

_UNITS = {
    "b": 1,
    "bytes": 1,
    "k": 1024,
    "kib": 1024,
    "kb": 1000,
    "m": 1024**2,
    "mib": 1024**2,
    "mb": 1000**2,
    "g": 1024**3,
    "gib": 1024**3,
    "gb": 1000**3,
    "t": 1024**4,
    "tib": 1024**4,
    "tb": 1000**4,
}


@dataclass(frozen=True, slots=True)
class DomainView:
    """One domain as read: its vmctl record (None if not vmctl's), and what the XML says."""

    name: str
    uuid: str
    active: bool
    record: GuestRecord | None
    guest: GuestState | None = None  # None for domains vmctl does not own


def domain_name(xml: str) -> str:
    """A domain's name, found without parsing the whole XML (it comes first, and is escaped there)."""
    start = xml.find("<name>")
    end = xml.find("</name>", start)
    if start < 0 or end < 0:
        return parse(xml).findtext("name", "")
    from xml.sax.saxutils import unescape

    return unescape(xml[start + len("<name>") : end], {"&quot;": '"', "&apos;": "'"})


def is_vmctl_xml(xml: str) -> bool:
    """A cheap test before parsing: foreign domains are most of a big host."""
    return NAMESPACE in xml


DiskSize = Callable[[str, str, str], int | None]  # (pool, volume, format) -> bytes; None: the volume is missing


def read_domain(
    xml: str,
    pool_paths: Mapping[str, str] | None = None,
    autostart: bool = False,
    disk_size: DiskSize | None = None,
    foreign: bool = False,
    owner: Owner | None = None,
) -> DomainView:
    """Parse domain XML (live or config). The guest is filled for domains vmctl owns (with `owner`:
    for those it claims only, its project and workspace's on its host; another's guests are not read
    further, their disks not sized), and for any domain if `foreign` (one to adopt or import: its
    guest has no name, hostname or pool then).

    Disk sizes are not in domain XML: `disk_size` supplies them (they stay None without it).
    """
    root = parse(xml)
    top = by_tag(root)
    name, uuid = text(top, "name"), text(top, "uuid")
    active = root.get("id", "-1") != "-1"
    record = find_guest_record(first(top, "metadata")) if is_vmctl_xml(xml) else None
    if record is None and not foreign:
        return DomainView(name, uuid, active, None)
    if record is not None and owner is not None and not owner.claims(record.owner):
        return DomainView(name, uuid, active, record)
    reading = record or GuestRecord(Owner(""), guest="", hostname="", pool="")
    tree = DomainTree.of(root, top)
    guest = _guest_from(tree, reading, active, autostart, pool_paths or {}, disk_size or _unknown_size)
    return DomainView(name, uuid, active, record, guest)


def serial_log_file(xml: str) -> str | None:
    """Where the domain's first serial port is logged on the hypervisor host, if it is."""
    log = parse(xml).find("devices/serial/log")
    return log.get("file") if log is not None else None


def domain_uses(xml: str, pool: str, volume: str, path: str) -> bool:
    """Whether a domain (anyone's) boots from or has as a disk this pool volume, by name or by path."""
    root = parse(xml)
    if path in (root.findtext("os/kernel"), root.findtext("os/initrd")):
        return True
    for source in root.iterfind("devices/disk/source"):
        if (source.get("pool"), source.get("volume")) == (pool, volume) or path in (
            source.get("file"),
            source.get("dev"),
        ):
            return True
    return False


def _unknown_size(_pool: str, _volume: str, _format: str) -> None:
    return None


def _guest_from(
    tree: DomainTree,
    record: GuestRecord,
    active: bool,
    autostart: bool,
    pool_paths: Mapping[str, str],
    disk_size: DiskSize,
) -> GuestState:
    root = tree.root
    os_el = tree.element("os")
    os_parts = by_tag(os_el) if os_el is not None else {}
    vcpu = tree.element("vcpu")
    max_cpus = int(vcpu.text or 1) if vcpu is not None else 1
    os_type = first(os_parts, "type")
    return GuestState(
        name=tree.text("name"),
        guest=record.guest,
        hostname=record.hostname,
        accel="kvm" if root.get("type") == "kvm" else "tcg",
        machine=os_type.get("machine", "") if os_type is not None else "",
        firmware="uefi" if _is_uefi(os_el, os_parts) else "bios",
        cpu_model=_cpu_model(tree.element("cpu")),
        cpus=int(vcpu.get("current", max_cpus)) if vcpu is not None else 1,
        max_cpus=max_cpus,
        memory=_memory(tree, "currentMemory") or _memory(tree, "memory"),
        max_memory=_memory(tree, "memory"),
        state="running" if active else "stopped",
        autostart=autostart,
        pool=record.pool,
        boot=_boot(os_parts),
        disks=_disks(tree, record, pool_paths, disk_size),
        nics=_nics(tree, record),
        shares=_shares(tree),
        devices=_paravirt(tree),
        cloud_init=record.cloud_init,
        seed=_seed(tree, record, pool_paths) if record.owner.project else None,
        prevent_destroy=record.prevent_destroy,
        scsi_controller=any(c.get("type") == "scsi" for c in tree.devices_of("controller")),
        unmodelled=unmodelled(tree),
    )


def _is_uefi(os_el: etree._Element | None, os_parts: Mapping[str, list[etree._Element]]) -> bool:
    if os_el is None:
        return False
    loader = first(os_parts, "loader")
    return os_el.get("firmware") == "efi" or (loader is not None and loader.get("type") == "pflash")


def _cpu_model(cpu: etree._Element | None) -> str | None:
    if cpu is None:
        return None
    mode = cpu.get("mode", "custom")
    if mode != "custom":
        return mode
    return text(by_tag(cpu), "model") or None


def _memory(tree: DomainTree, tag: str) -> int:
    element = tree.element(tag)
    if element is None or not element.text:
        return 0
    return int(element.text) * _UNITS.get(element.get("unit", "KiB").lower(), 1024)


def _boot(os_parts: Mapping[str, list[etree._Element]]) -> BootSpec | None:
    kernel = text(os_parts, "kernel")
    if not kernel:
        return None
    initrd = text(os_parts, "initrd")
    return BootSpec(
        FileRef(PurePosixPath(kernel), PurePosixPath(kernel).name),
        FileRef(PurePosixPath(initrd), PurePosixPath(initrd).name) if initrd else None,
        text(os_parts, "cmdline"),
    )


def _alias(parts: Mapping[str, list[etree._Element]]) -> str:
    found = first(parts, "alias")
    return found.get("name", "") if found is not None else ""


def _source_volume(source: etree._Element | None, pool_paths: Mapping[str, str]) -> tuple[str, str]:
    """(pool, volume) of a disk, whether it names a pool volume or a file inside a pool's directory."""
    if source is None:
        return "", ""
    if source.get("volume"):
        return source.get("pool", ""), source.get("volume", "")
    path = PurePosixPath(source.get("file") or source.get("dev") or "")
    for pool, directory in pool_paths.items():
        if str(path.parent) == directory.rstrip("/"):
            return pool, path.name
    return "", str(path)


def _disks(
    tree: DomainTree, record: GuestRecord, pool_paths: Mapping[str, str], disk_size: DiskSize
) -> tuple[DiskState, ...]:
    disks = []
    for device in tree.devices_of("disk"):
        role = device.get("device", "disk")
        parts = tree.parts(device)
        if role not in ("disk", "cdrom") or _is_seed(device, parts, record):
            continue
        target, source, driver = first(parts, "target"), first(parts, "source"), first(parts, "driver")
        dev = target.get("dev", "") if target is not None else ""
        name = _device_name(parts, "disk", dev, record)
        pool, volume = _source_volume(source, pool_paths)
        made = record.disk(name)
        bus = cast(Any, target.get("bus", "virtio") if target is not None else "virtio")
        image, sha = (made.image, made.image_sha256) if made else (None, None)
        fmt = driver.get("type", "raw") if driver is not None else "raw"
        size = disk_size(pool, volume, fmt) if pool else None
        path = (source.get("file") or "") if source is not None else ""
        disks.append(DiskState(name, bus, pool, volume, size, dev, image, sha, fmt, path, cdrom=role == "cdrom"))
    return tuple(disks)


def _device_name(
    parts: Mapping[str, list[etree._Element]], kind: Literal["disk", "nic"], key: str, record: GuestRecord
) -> str:
    """vmctl's alias names a device; an adopted one without it has its name in the record; else <key>."""
    alias_ = _alias(parts)
    if alias_.startswith(f"ua-{kind}-"):
        return alias_.removeprefix(f"ua-{kind}-")
    # A seed that is not the guest's own (its domain was vmctl's before) is a CD-ROM drive like any.
    return record.device_name(kind, key) or ("<seed>" if alias_ == "ua-seed" else f"<{key}>")


def _is_seed(device: etree._Element, parts: Mapping[str, list[etree._Element]], record: GuestRecord) -> bool:
    """vmctl's cloud-init seed of the guest. Not a seed of a domain vmctl does not own, nor one adopted
    with its seed: that is a CD-ROM drive of the spec's, which the record names."""
    if device.get("device") != "cdrom" or _alias(parts) != "ua-seed" or first(parts, "source") is None:
        return False
    target = first(parts, "target")
    return bool(record.owner.project) and not record.device_name(
        "disk", target.get("dev", "") if target is not None else ""
    )


def _seed(tree: DomainTree, record: GuestRecord, pool_paths: Mapping[str, str]) -> SeedSpec | None:
    for device in tree.devices_of("disk"):
        parts = tree.parts(device)
        if _is_seed(device, parts, record):
            pool, volume = _source_volume(first(parts, "source"), pool_paths)
            return SeedSpec(volume, pool, record.seed_digest or "")
    return None


def _nics(tree: DomainTree, record: GuestRecord) -> tuple[NicSpec, ...]:
    nics = []
    for device in tree.devices_of("interface"):
        parts = tree.parts(device)
        kind = device.get("type", "user")
        mac_el, source, model_el = first(parts, "mac"), first(parts, "source"), first(parts, "model")
        mac = mac_el.get("address", "").lower() if mac_el is not None else ""
        name = _device_name(parts, "nic", mac, record)
        source_name = (source.get("network") or source.get("bridge") or "") if source is not None else ""
        model = model_el.get("type", "") if model_el is not None else ""
        nics.append(NicSpec(name, cast(Any, kind), source_name, mac, model))
    return tuple(nics)


def _shares(tree: DomainTree) -> tuple[ShareSpec, ...]:
    shares = []
    for device in tree.devices_of("filesystem"):
        driver = device.find("driver")
        if driver is None or driver.get("type") != "virtiofs":
            continue
        source, target = device.find("source"), device.find("target")
        shares.append(
            ShareSpec(
                target.get("dir", "") if target is not None else "",
                source.get("dir", "") if source is not None else "",
                device.find("readonly") is not None,
            )
        )
    return tuple(shares)


def _paravirt(tree: DomainTree) -> DevicesSpec:
    balloon = tree.device("memballoon")
    agent = any(
        (t := first(tree.parts(channel), "target")) is not None and t.get("name") == AGENT_CHANNEL
        for channel in tree.devices_of("channel")
    )
    return DevicesSpec(
        rng=tree.device("rng") is not None,
        balloon=balloon is not None and balloon.get("model") != "none",
        agent=agent,
        vsock=tree.device("vsock") is not None,
        console="serial" if tree.device("serial") is not None else "none",
    )
