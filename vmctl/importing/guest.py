"""One existing domain as a guest of a spec: what the spec language can say of it, and what it cannot.

Pure: the domain's XML (read as a foreign domain) in, a guest body out. A disk is written by its
volume (pool and name) when it is a volume or a file of a pool's directory, else by its file's path;
a NIC by its MAC, on the libvirt network or bridge it is on. Nothing is written as a default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from vmctl.libvirtxml.readback import read_domain
from vmctl.model import DevicesSpec, DiskState, GuestState, NicSpec
from vmctl.units import format_size

_SPEC_NAME = re.compile(r"^[a-z0-9]([a-z0-9_-]{0,30}[a-z0-9])?$")
_GUEST_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,50}[a-z0-9])?$")


@dataclass(frozen=True, slots=True)
class ImportedGuest:
    """A domain as a spec's guest: its body, the networks it needs, and what the spec cannot hold."""

    domain: str
    uuid: str
    active: bool
    body: dict[str, Any]
    networks: dict[str, dict[str, Any]] = field(default_factory=dict)  # spec key -> network body
    pools: dict[str, dict[str, Any]] = field(default_factory=dict)  # pools the guest's boot files live in
    unmodelled: tuple[str, ...] = ()  # what adoption would drop at the next redefinition
    problems: tuple[str, ...] = ()  # why it cannot be imported at all
    notes: tuple[str, ...] = ()  # worth a comment in the spec


def imported_guest(xml: str, pool_paths: dict[str, str], autostart: bool, active: bool) -> ImportedGuest:
    """The guest a spec needs to adopt this domain as it is: its persistent definition, its power now."""
    view = replace(read_domain(xml, pool_paths, autostart, foreign=True), active=active)
    assert view.guest is not None
    state = view.guest
    problems = [] if _GUEST_NAME.match(view.name) else [f"'{view.name}' is not a usable guest (host) name"]
    body: dict[str, Any] = {"adopt": True, **_machine(state), **_sizes(state)}
    if not active:
        body["state"] = "stopped"
    if state.autostart:
        body["autostart"] = True
    pools: dict[str, dict[str, Any]] = {}
    if state.boot is not None:
        # Boot files in a pool's directory are that pool's volumes: the guest's pool, so they stay there.
        directory = str(state.boot.kernel.path.parent)
        pool = next((p for p, path in pool_paths.items() if path.rstrip("/") == directory), None)
        if pool is not None:
            body["pool"] = pool
            pools[pool] = {"path": pool_paths[pool]}
        boot = {"kernel": str(state.boot.kernel.path)}
        if state.boot.initrd is not None:
            boot["initrd"] = str(state.boot.initrd.path)
        if state.boot.cmdline:
            boot["cmdline"] = state.boot.cmdline
        body["boot"] = boot
    disks, disk_problems = _disks(state.disks)
    problems.extend(disk_problems)
    if disks:
        body["disks"] = disks
    nics, networks = _nics(state.nics)
    if nics:
        body["nics"] = nics
    if state.shares:
        body["shares"] = {
            s.name: {"source": s.source, **({"readonly": True} if s.readonly else {})} for s in state.shares
        }
    devices = _devices(state.devices)
    if devices:
        body["devices"] = devices
    notes = SEED_NOTE if "seed" in disks and disks["seed"].get("cdrom") else ()
    return ImportedGuest(
        view.name, view.uuid, view.active, body, networks, pools, state.unmodelled, tuple(problems), notes
    )


SEED_NOTE = (
    "disk seed: the cloud-init seed vmctl made for it before, now a CD-ROM drive: kept as it is, never deleted",
    "(for new cloud-init content, put cloud_init: in its place)",
)


def _machine(state: GuestState) -> dict[str, Any]:
    body: dict[str, Any] = {"accel": state.accel, "machine": state.machine, "firmware": state.firmware}
    if not state.machine:
        del body["machine"]
    if state.cpu_model:
        body["cpu_model"] = state.cpu_model
    return body


def _sizes(state: GuestState) -> dict[str, Any]:
    body: dict[str, Any] = {"cpus": state.cpus}
    if state.max_cpus != state.cpus:
        body["max_cpus"] = state.max_cpus
    body["memory"] = format_size(state.memory)
    if state.max_memory != state.memory:
        body["max_memory"] = format_size(state.max_memory)
    return body


def _disks(disks: tuple[DiskState, ...]) -> tuple[dict[str, Any], list[str]]:
    body: dict[str, Any] = {}
    problems = []
    for disk in disks:
        if not disk.path and not disk.pool and not disk.cdrom:
            continue  # not on a volume or a file (a network disk, a block device): listed as unmodelled
        name = disk.name.strip("<>")
        if not _SPEC_NAME.match(name):
            problems.append(f"disk {disk.target}: '{name}' is not a usable disk name")
            continue
        body[name] = _disk(disk)
    return body, problems


def _disk(disk: DiskState) -> dict[str, Any]:
    """A disk by its file or volume; a CD-ROM drive by what is in it, if anything."""
    entry: dict[str, Any] = {"cdrom": True} if disk.cdrom else {}
    # A file is named as the domain names it: a pool may come and go around it.
    if disk.path or (disk.volume and not disk.pool):
        entry["path"] = disk.path or disk.volume
    elif disk.pool:
        entry["volume"] = {"pool": disk.pool, "name": disk.volume}
    if disk.bus != ("sata" if disk.cdrom else "virtio"):
        entry["bus"] = disk.bus
    if disk.format != ("raw" if disk.cdrom else "qcow2"):
        entry["format"] = disk.format
    return entry


def _nics(nics: tuple[NicSpec, ...]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    body: dict[str, Any] = {}
    networks: dict[str, dict[str, Any]] = {}
    for index, nic in enumerate(nics):
        name = nic.name if not nic.name.startswith("<") else f"nic{index}"
        entry: dict[str, Any]
        if nic.kind == "network":
            key = network_key(nic.source)
            networks[key] = {"mode": "existing", **({"name": nic.source} if key != nic.source else {})}
            entry = {"network": key}
        elif nic.kind == "bridge":
            entry = {"bridge": nic.source}
        else:
            entry = {"user": {}}
        entry["mac"] = nic.mac
        if nic.model != "virtio":
            entry["model"] = nic.model
        body[name] = entry
    return body, networks


def network_key(libvirt_name: str) -> str:
    """A spec key for an existing libvirt network: its name where the spec allows it."""
    key = re.sub(r"[^a-z0-9_-]", "-", libvirt_name.lower()).strip("-_")[:32] or "net"
    return key


def _devices(devices: DevicesSpec) -> dict[str, Any]:
    default = DevicesSpec()
    return {
        name: getattr(devices, name)
        for name in ("rng", "balloon", "agent", "vsock", "console")
        if getattr(devices, name) != getattr(default, name)
    }
