"""What a domain has that vmctl's spec cannot express: a redefinition from the spec would drop it.

Import refuses a domain with any of these (unless forced) and the plan lists them as going, so
nothing is lost without being named. Devices libvirt adds by itself (controllers, PS/2 input, a
silent audio backend) and devices vmctl writes are not listed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from lxml import etree

from vmctl.libvirtxml.domain import AGENT_CHANNEL
from vmctl.libvirtxml.tree import DomainTree, first

_TUNING = ("cputune", "numatune", "memtune", "blkiotune", "iothreads", "sysinfo", "idmap")
_ALWAYS_UNMODELLED = ("hostdev", "graphics", "sound", "redirdev", "smartcard", "tpm", "shmem", "hub", "parallel")
_MODELLED = {"controller", "emulator", "memballoon", "vsock", "disk", "interface", "filesystem", "channel"}
_MODELLED |= {"serial", "console", "rng", "input", "audio", "video", "watchdog"}
_NOTHING_TO_CHECK = {"controller", "emulator", "memballoon", "vsock"}  # most of a domain's devices


def unmodelled(tree: DomainTree) -> tuple[str, ...]:
    """One line per element of the domain that vmctl does not model, in document order."""
    found = [f"<{tag}> settings" for tag in _TUNING if tag in tree.top]
    backing = tree.element("memoryBacking")
    if backing is not None and backing.find("hugepages") is not None:
        found.append("huge pages (memoryBacking)")
    found.extend(_cpu_topology(tree))
    for tag, device in tree.devices:
        if tag in _NOTHING_TO_CHECK:
            continue
        problem = _device_problem(tag, device, tree)
        if problem:
            found.append(problem)
    return tuple(found)


def _cpu_topology(tree: DomainTree) -> list[str]:
    cpu = tree.element("cpu")
    topology = cpu.find("topology") if cpu is not None else None
    vcpu = tree.element("vcpu")
    if topology is None:
        return []
    count = str(int(vcpu.text or 1)) if vcpu is not None else "1"
    layout = {k: topology.get(k, "1") for k in ("sockets", "dies", "cores", "threads")}
    if layout == {"sockets": count, "dies": "1", "cores": "1", "threads": "1"}:
        return []  # one vCPU a socket: what vmctl's domains get without a topology
    shown = ", ".join(f"{v} {k}" for k, v in layout.items() if k != "dies" or v != "1")
    return [f"CPU topology ({shown})"]


def _device_problem(tag: str, device: etree._Element, tree: DomainTree) -> str | None:
    if tag == "disk":
        return _disk_problem(device, tree.parts(device))
    if tag == "interface":
        return _interface_problem(device, tree.parts(device))
    if tag in _ALWAYS_UNMODELLED:
        kind = device.get("type") or device.get("model") or device.get("mode") or ""
        return f"{tag} {kind}".strip() + _source_hint(device)
    if tag not in _MODELLED:
        return f"{tag} device"
    check = _CHECKS.get(tag)
    return check(device) if check else None


def _source_hint(device: etree._Element) -> str:
    address = device.find("source/address")
    if address is None:
        return ""
    parts = [(address.get(k) or "0").removeprefix("0x") for k in ("domain", "bus", "slot", "function")]
    if not any(address.get(k) for k in ("bus", "slot")):
        return ""
    return f" at {parts[0]}:{parts[1]}:{parts[2]}.{parts[3]}"  # as lspci writes a PCI address


def _disk_problem(disk: etree._Element, parts: Mapping[str, list[etree._Element]]) -> str | None:
    kind, role = disk.get("type", "file"), disk.get("device", "disk")
    target = first(parts, "target")
    dev = target.get("dev", "?") if target is not None else "?"
    if role == "cdrom":
        return _cdrom_problem(target, kind, dev)
    if role != "disk":
        source = first(parts, "source")
        media = (source.get("file") or source.get("volume") or source.get("dev")) if source is not None else None
        return f"{role} {dev}" + (f" with {media}" if media else " (empty)")
    if kind not in ("file", "volume"):
        return f"disk {dev} of type {kind}"
    bus = target.get("bus", "virtio") if target is not None else "virtio"
    if bus not in ("virtio", "scsi"):
        return f"disk {dev} on bus {bus}"
    driver = first(parts, "driver")
    fmt = driver.get("type", "raw") if driver is not None else "raw"
    if fmt not in ("qcow2", "raw"):
        return f"disk {dev} in format {fmt}"
    if "readonly" in parts or "shareable" in parts:
        return f"disk {dev} that is read-only or shared"
    return None


def _cdrom_problem(target: etree._Element | None, kind: str, dev: str) -> str | None:
    """A CD-ROM drive with a volume or file in it, or none, on SATA, IDE or SCSI is modelled (vmctl's
    cloud-init seed is one)."""
    if kind not in ("file", "volume"):
        return f"cdrom {dev} of type {kind}"
    bus = target.get("bus", "") if target is not None else ""
    return None if bus in ("sata", "ide", "scsi") else f"cdrom {dev} on bus {bus}"


def _interface_problem(nic: etree._Element, parts: Mapping[str, list[etree._Element]]) -> str | None:
    kind = nic.get("type", "")
    if kind not in ("network", "bridge", "user"):
        return f"interface of type {kind}"
    if parts.keys() & {"vlan", "virtualport", "bandwidth"}:
        return f"interface {kind} with VLAN, virtual port or bandwidth settings"
    return None


def _filesystem_problem(fs: etree._Element) -> str | None:
    driver = fs.find("driver")
    kind = driver.get("type", "path") if driver is not None else "path"
    return None if kind == "virtiofs" else f"filesystem shared by {kind}"


def _channel_problem(channel: etree._Element) -> str | None:
    target = channel.find("target")
    name = target.get("name", "") if target is not None else ""
    return None if name == AGENT_CHANNEL else f"channel {channel.get('type', '')} {name}".rstrip()


def _character_problem(device: etree._Element) -> str | None:
    kind = device.get("type", "pty")
    return None if kind == "pty" else f"{device.tag} of type {kind}"


def _input_problem(device: etree._Element) -> str | None:
    bus = device.get("bus", "ps2")
    return None if bus == "ps2" else f"input {device.get('type', '')} on {bus}"


def _audio_problem(device: etree._Element) -> str | None:
    return None if device.get("type") == "none" else f"audio {device.get('type', '')}"


def _video_problem(device: etree._Element) -> str | None:
    model = device.find("model")
    kind = model.get("type", "") if model is not None else ""
    return None if kind == "none" else f"video {kind}"


def _watchdog_problem(device: etree._Element) -> str | None:
    return None if device.get("model") == "itco" else f"watchdog {device.get('model', '')}"


def _rng_problem(device: etree._Element) -> str | None:
    return None if device.get("model") == "virtio" else f"rng {device.get('model', '')}"


# What each modelled device may carry that vmctl cannot express, checked per device kind.
_CHECKS: dict[str, Callable[[etree._Element], str | None]] = {
    "filesystem": _filesystem_problem,
    "channel": _channel_problem,
    "serial": _character_problem,
    "console": _character_problem,
    "input": _input_problem,
    "audio": _audio_problem,
    "video": _video_problem,
    "watchdog": _watchdog_problem,
    "rng": _rng_problem,
}
