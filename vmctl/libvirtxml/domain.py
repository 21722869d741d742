"""Domain XML for a guest, built with lxml: paravirtualized devices, vmctl's metadata.

Per-device builders are shared by whole-domain definition and by hot-plug, so a disk attached
live is the same XML as a disk defined at boot.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from lxml import etree

from vmctl.libvirtxml.metadata import guest_element
from vmctl.libvirtxml.tree import parse
from vmctl.model import DiskSpec, GuestRecord, GuestSpec, NicSpec, SeedSpec, ShareSpec

SPARE_PCIE_PORTS = 8  # free hot-plug slots on q35 beyond the devices present at boot
SEED_TARGET = "sda"
GUEST_ARCH = "x86_64"  # the machine types (q35, pc) and firmware (OVMF) vmctl writes are x86's
AGENT_CHANNEL = "org.qemu.guest_agent.0"


@dataclass(frozen=True, slots=True)
class DomainContext:
    """What the XML needs beyond the guest: ownership, file locations, identities to keep."""

    record: GuestRecord
    pool_paths: Mapping[str, str] = field(default_factory=dict)
    log_dir: str | None = None
    uuid: str | None = None
    targets: Mapping[str, str] = field(default_factory=dict)  # disk name -> target dev already in use


def alias(kind: str, name: str) -> str:
    """User aliases ('ua-' prefix) survive in the persistent config: they carry a device's identity."""
    return f"ua-{kind}-{name}"


def _el(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    element = etree.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def domain_type(guest: GuestSpec) -> str:
    return "kvm" if guest.accel == "kvm" else "qemu"


def cpu_model(accel: str, chosen: str | None) -> str:
    """qemu64 is the cheapest CPU to emulate under TCG; under KVM the host's own CPU is fastest."""
    if chosen:
        return chosen
    return "host-passthrough" if accel == "kvm" else "qemu64"


def volume_path(pool_paths: Mapping[str, str], pool: str, volume: str) -> str:
    return f"{pool_paths.get(pool, '/var/lib/libvirt/images').rstrip('/')}/{volume}"


def build_domain(guest: GuestSpec, ctx: DomainContext) -> etree._Element:
    """The whole <domain> element for `guest`."""
    root = etree.Element("domain", {"type": domain_type(guest)})
    _el(root, "name", guest.name)
    if ctx.uuid:
        _el(root, "uuid", ctx.uuid)
    _el(root, "title", f"vmctl {ctx.record.owner.project}: {guest.hostname}")
    _el(root, "metadata").append(guest_element(ctx.record))
    _el(root, "memory", str(guest.max_memory // 1024), unit="KiB")
    _el(root, "currentMemory", str(guest.memory // 1024), unit="KiB")
    if guest.shares:
        _memory_backing(root)
    _el(root, "vcpu", str(guest.max_cpus), placement="static", current=str(guest.cpus))
    root.append(_os(guest, ctx))
    _features(root)
    root.append(_cpu(guest))
    _el(root, "clock", offset="utc")
    _el(root, "on_poweroff", "destroy")
    _el(root, "on_reboot", "restart")
    _el(root, "on_crash", "destroy")
    root.append(_devices(guest, ctx))
    return root


def _memory_backing(root: etree._Element) -> None:
    # virtiofs needs guest memory that virtiofsd can map: shared memfd.
    backing = _el(root, "memoryBacking")
    _el(backing, "source", type="memfd")
    _el(backing, "access", mode="shared")


def _os(guest: GuestSpec, ctx: DomainContext) -> etree._Element:
    os_el = etree.Element("os")
    if guest.firmware == "uefi":
        os_el.set("firmware", "efi")
    _el(os_el, "type", "hvm", arch=GUEST_ARCH, machine=guest.machine)
    if guest.firmware == "uefi":
        # Secure boot firmware needs SMM, which TCG emulates slowly: ask for the plain one.
        firmware = _el(os_el, "firmware")
        _el(firmware, "feature", enabled="no", name="secure-boot")
    if guest.boot:
        _el(os_el, "kernel", volume_path(ctx.pool_paths, guest.pool, guest.boot.kernel.volume))
        if guest.boot.initrd:
            _el(os_el, "initrd", volume_path(ctx.pool_paths, guest.pool, guest.boot.initrd.volume))
        if guest.boot.cmdline:
            _el(os_el, "cmdline", guest.boot.cmdline)
    return os_el


def _features(root: etree._Element) -> None:
    features = _el(root, "features")
    _el(features, "acpi")
    _el(features, "apic")


def _cpu(guest: GuestSpec) -> etree._Element:
    model = cpu_model(guest.accel, guest.cpu_model)
    if model in ("host-passthrough", "host-model"):
        return etree.Element("cpu", {"mode": model, "check": "none"})
    cpu = etree.Element("cpu", {"mode": "custom", "match": "exact", "check": "none"})
    _el(cpu, "model", model, fallback="forbid")
    return cpu


def _devices(guest: GuestSpec, ctx: DomainContext) -> etree._Element:
    devices = etree.Element("devices")
    targets = assign_targets(guest.disks, ctx.targets)
    boot_disk = None if guest.boot else next((d.name for d in guest.disks if not d.cdrom), None)
    for disk in guest.disks:
        devices.append(disk_element(disk, targets[disk.name], boot_order=1 if disk.name == boot_disk else None))
    if guest.seed:
        devices.append(seed_element(guest.seed))
    if any(d.bus == "scsi" for d in guest.disks):
        devices.append(scsi_controller_element())
    _el(devices, "controller", type="usb", model="none")
    for nic in guest.nics:
        devices.append(nic_element(nic))
    for share in guest.shares:
        devices.append(share_element(share))
    _add_paravirt_devices(devices, guest, ctx)
    if guest.machine.startswith(("q35", "pc-q35")):
        _root_ports(devices, pci_device_count(guest) + SPARE_PCIE_PORTS)
    return devices


def _add_paravirt_devices(devices: etree._Element, guest: GuestSpec, ctx: DomainContext) -> None:
    spec = guest.devices
    if spec.agent:
        channel = _el(devices, "channel", type="unix")
        _el(channel, "target", type="virtio", name=AGENT_CHANNEL)
    if spec.console == "serial":
        _serial_console(devices, guest.name, ctx.log_dir)
    balloon = _el(devices, "memballoon", model="virtio" if spec.balloon else "none")
    if spec.balloon:
        _el(balloon, "stats", period="5")
    if spec.rng:
        rng = _el(devices, "rng", model="virtio")
        _el(rng, "backend", "/dev/urandom", model="random")
    if spec.vsock:
        vsock = _el(devices, "vsock", model="virtio")
        _el(vsock, "cid", auto="yes")


def _serial_console(devices: etree._Element, name: str, log_dir: str | None) -> None:
    serial = _el(devices, "serial", type="pty")
    if log_dir:
        _el(serial, "log", file=serial_log_path(log_dir, name), append="off")
    _el(serial, "target", port="0")
    console = _el(devices, "console", type="pty")
    _el(console, "target", type="serial", port="0")


def serial_log_path(log_dir: str, name: str) -> str:
    return f"{log_dir.rstrip('/')}/{name}-serial.log"


def pci_device_count(guest: GuestSpec) -> int:
    """PCI(e) devices present at boot; each takes a root port on q35."""
    spec = guest.devices
    count = sum(1 for d in guest.disks if d.bus == "virtio") + len(guest.nics) + len(guest.shares)
    count += any(d.bus == "scsi" for d in guest.disks)
    count += spec.agent or spec.console == "serial"  # virtio-serial controller (agent channel)
    count += spec.balloon + spec.rng + spec.vsock
    return int(count) + 1  # the SATA controller for the seed sits on the root complex; keep one for luck


def _root_ports(devices: etree._Element, count: int) -> None:
    _el(devices, "controller", type="pci", index="0", model="pcie-root")
    for index in range(1, count + 1):
        _el(devices, "controller", type="pci", index=str(index), model="pcie-root-port")


def assign_targets(
    disks: Iterable[DiskSpec], existing: Mapping[str, str], also_taken: Iterable[str] = ()
) -> dict[str, str]:
    """Target devs by disk name: a disk keeps the target it has; new disks take the first free one."""
    taken = set(existing.values()) | set(also_taken) | {SEED_TARGET}
    result = {}
    for disk in disks:
        if disk.name in existing:
            result[disk.name] = existing[disk.name]
            continue
        target = free_target(_TARGET_PREFIX.get(disk.bus, "sd"), taken)
        taken.add(target)
        result[disk.name] = target
    return result


_TARGET_PREFIX = {"virtio": "vd", "ide": "hd"}  # scsi and sata: sd


def free_target(prefix: str, taken: set[str]) -> str:
    for index in range(26 * 27):
        name = prefix + _letters(index)
        if name not in taken:
            return name
    raise ValueError("no free disk target")  # pragma: no cover - 700 disks


def _letters(index: int) -> str:
    # vda..vdz, vdaa..vdaz, ... as libvirt and Linux name them
    if index < 26:
        return chr(ord("a") + index)
    return chr(ord("a") + index // 26 - 1) + chr(ord("a") + index % 26)


def scsi_controller_element() -> etree._Element:
    return etree.Element("controller", {"type": "scsi", "index": "0", "model": "virtio-scsi"})


def disk_element(disk: DiskSpec, target: str, boot_order: int | None = None) -> etree._Element:
    """A <disk> on a volume (or an existing file): virtio-blk or virtio-scsi, discard passed down, serial = disk name."""
    if disk.cdrom:
        return cdrom_element(disk, target)
    kind = "file" if disk.source == "path" else "volume"
    element = etree.Element("disk", {"type": kind, "device": "disk"})
    _el(element, "driver", name="qemu", type=disk.format, discard="unmap")
    if kind == "file":
        _el(element, "source", file=disk.volume)
    else:
        _el(element, "source", pool=disk.pool, volume=disk.volume)
    _el(element, "target", dev=target, bus=disk.bus)
    _el(element, "serial", disk.name)
    if boot_order is not None:
        _el(element, "boot", order=str(boot_order))
    _el(element, "alias", name=alias("disk", disk.name))
    return element


def cdrom_element(disk: DiskSpec, target: str) -> etree._Element:
    """A read-only CD-ROM drive with an existing volume or file in it, or empty."""
    element = etree.Element("disk", {"type": "volume" if disk.source == "volume" else "file", "device": "cdrom"})
    _el(element, "driver", name="qemu", type=disk.format)
    if disk.source == "volume":
        _el(element, "source", pool=disk.pool, volume=disk.volume)
    elif disk.source == "path":
        _el(element, "source", file=disk.volume)
    _el(element, "target", dev=target, bus=disk.bus)
    _el(element, "readonly")
    _el(element, "alias", name=alias("disk", disk.name))
    return element


def seed_element(seed: SeedSpec) -> etree._Element:
    """The cloud-init seed as a read-only SATA CD-ROM."""
    element = etree.Element("disk", {"type": "volume", "device": "cdrom"})
    _el(element, "driver", name="qemu", type="raw")
    _el(element, "source", pool=seed.pool, volume=seed.volume)
    _el(element, "target", dev=SEED_TARGET, bus="sata")
    _el(element, "readonly")
    _el(element, "alias", name="ua-seed")
    return element


def nic_element(nic: NicSpec) -> etree._Element:
    element = etree.Element("interface", type=nic.kind)
    _el(element, "mac", address=nic.mac)
    if nic.kind == "network":
        _el(element, "source", network=nic.source)
    elif nic.kind == "bridge":
        _el(element, "source", bridge=nic.source)
    _el(element, "model", type=nic.model)
    _el(element, "alias", name=alias("nic", nic.name))
    return element


def share_element(share: ShareSpec) -> etree._Element:
    element = etree.Element("filesystem", {"type": "mount", "accessmode": "passthrough"})
    _el(element, "driver", type="virtiofs")
    _el(element, "source", dir=share.source)
    _el(element, "target", dir=share.name)
    if share.readonly:
        _el(element, "readonly")
    _el(element, "alias", name=alias("share", share.name))
    return element


def element_xml(element: etree._Element) -> str:
    return etree.tostring(element, encoding="unicode")


def _device_key(device: etree._Element) -> tuple[str, str]:
    """How a device is recognised across definitions: its user alias, else its kind and model."""
    found = device.find("alias")
    name = found.get("name", "") if found is not None else ""
    if name.startswith("ua-"):
        return ("alias", name)
    if device.tag == "channel":
        target = device.find("target")
        return (device.tag, target.get("name", "") if target is not None else "")
    return (device.tag, device.get("type") or device.get("model") or "")


def carry_over(new: etree._Element, old_xml: str) -> etree._Element:
    """Keep what the guest already sees when redefining: PCI addresses and controllers.

    Without this, libvirt would number devices afresh and a NIC could change its name in the guest.
    """
    old = parse(old_xml)
    old_devices, new_devices = old.find("devices"), new.find("devices")
    if old_devices is None or new_devices is None:
        return new
    addresses = {
        _device_key(d): d.find("address")
        for d in old_devices
        if d.tag != "controller" and d.find("address") is not None
    }
    for device in new_devices:
        address = addresses.get(_device_key(device))
        if device.tag != "controller" and address is not None and device.find("address") is None:
            device.append(copy.deepcopy(address))  # appending moves an element: two alike get one each
    for controller in [c for c in new_devices if c.tag == "controller"]:
        new_devices.remove(controller)
    for controller in old_devices.findall("controller"):
        new_devices.append(controller)
    _keep_needed_controllers(new_devices)
    return new


def _keep_needed_controllers(devices: etree._Element) -> None:
    # A virtio-scsi controller must exist when a scsi disk does; libvirt adds any other controller it needs.
    has_scsi_disk = any(t.get("bus") == "scsi" for t in devices.iterfind("disk/target"))
    has_scsi = any(c.get("type") == "scsi" for c in devices.findall("controller"))
    if has_scsi_disk and not has_scsi:
        devices.append(scsi_controller_element())
