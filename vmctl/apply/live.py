"""Changes to a running guest's devices: hot-plug, hot-unplug, balloon, vCPUs, seed media.

Each request is checked by reading the domain back: a guest may ignore it (an unplug it never
releases), and that is reported, never claimed as done.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from vmctl.errors import HypervisorError
from vmctl.hypervisor import LibvirtBackend
from vmctl.libvirtxml.domain import (
    assign_targets,
    disk_element,
    element_xml,
    free_target,
    nic_element,
    scsi_controller_element,
    seed_element,
)
from vmctl.model.types import GuestSpec, LiveGuest, NicSpec
from vmctl.units import format_size

if TYPE_CHECKING:
    from vmctl.apply.guest import GuestWork


class LiveDevices:
    """Hot-plug, hot-unplug, balloon and vCPU changes on a running guest, each verified."""

    def __init__(self, work: GuestWork, guest: GuestSpec, live: LiveGuest) -> None:
        self.work = work
        self.backend = work.backend
        self.name = work.name
        self.guest = guest
        self.live = live
        self.current = live.current

    def apply(self) -> None:
        self._disks()
        self._nics()
        self._seed()
        self._memory()
        self._cpus()

    def _disks(self) -> None:
        wanted = {d.name: d for d in self.guest.disks}
        have = {d.name: d for d in self.current.disks}
        taken = set(self.live.targets.values()) | {
            t for t in assign_targets(self.current.disks, self.live.targets).values()
        }
        for name in sorted(wanted.keys() - have.keys()):
            disk = wanted[name]
            if disk.bus == "scsi":
                self._ensure_scsi_controller()
            target = free_target("vd" if disk.bus == "virtio" else "sd", taken | {"sda"})
            taken.add(target)
            self.work.say(f"hot-plugging disk {name} as {target}")
            self.backend.attach(self.name, element_xml(disk_element(disk, target)), live=True)
        for name in sorted(have.keys() - wanted.keys()):
            disk = have[name]
            target = self.live.targets.get(name) or _running_target(self.backend, self.name, name)
            self.work.say(f"hot-unplugging disk {name}")
            self._detach(element_xml(disk_element(disk, target)), partial(_lacks_disk, name), f"disk {name}")

    def _ensure_scsi_controller(self) -> None:
        """libvirt would add an lsilogic controller for a hot-plugged SCSI disk, and a PCI device
        has no slot on q35's PCIe root ports: plug a virtio-scsi controller first."""
        live = ET.fromstring(self.backend.domain_xml(self.name))
        if any(c.get("type") == "scsi" for c in live.iterfind("devices/controller")):
            return
        self.work.say("hot-plugging a virtio-scsi controller")
        self.backend.attach(self.name, element_xml(scsi_controller_element()), live=True)

    def _nics(self) -> None:
        wanted = {n.name: n for n in self.guest.nics}
        have = {n.name: n for n in self.current.nics}
        for name in sorted(have.keys() - wanted.keys()):
            self._unplug_nic(have[name])
        for name in sorted(wanted.keys() & have.keys()):
            want, got = wanted[name], have[name]
            if want.mac != got.mac:
                self._unplug_nic(got)
                self._plug_nic(want)
            elif (want.kind, want.source) != (got.kind, got.source):
                self.work.say(f"moving NIC {name} to {want.source or want.kind}")
                self.backend.update_device(self.name, element_xml(nic_element(want)), live=True)
        for name in sorted(wanted.keys() - have.keys()):
            self._plug_nic(wanted[name])

    def _plug_nic(self, nic: NicSpec) -> None:
        self.work.say(f"hot-plugging NIC {nic.name}")
        self.backend.attach(self.name, element_xml(nic_element(nic)), live=True)

    def _unplug_nic(self, nic: NicSpec) -> None:
        self.work.say(f"hot-unplugging NIC {nic.name}")
        self._detach(element_xml(nic_element(nic)), partial(_lacks_nic, nic.name), f"NIC {nic.name}")

    def _detach(self, xml: str, gone: Callable[[GuestSpec], bool], what: str) -> None:
        self.backend.detach(self.name, xml, live=True)
        deadline = time.monotonic() + self.work.ctx.options.unplug_timeout
        while time.monotonic() < deadline:
            view = self.backend.read_guest(self.name, self.work.ctx.pool_paths)
            if view.guest is None or gone(view.guest):
                return
            time.sleep(0.5)
        raise HypervisorError(
            f"hot-unplug {what}",
            f"the guest did not release it within {self.work.ctx.options.unplug_timeout:g}s "
            "(removed from its config: gone at the next restart; run apply again to finish)",
            self.name,
        )

    def _seed(self) -> None:
        want, have = self.guest.seed, self.current.seed
        if want and have and want != have:
            self.work.say("swapping in the new cloud-init seed")
            self.backend.update_device(self.name, element_xml(seed_element(want)), live=True)

    def _memory(self) -> None:
        if self.guest.memory == self.current.memory or self.guest.memory > self.current.max_memory:
            return
        if not (self.guest.devices.balloon and self.current.devices.balloon):
            return
        self.work.say(f"ballooning memory to {format_size(self.guest.memory)}")
        self.backend.set_memory(self.name, self.guest.memory, live=True)  # the guest deflates it in its time

    def _cpus(self) -> None:
        want = self.guest.cpus
        if want <= self.current.cpus or want > self.current.max_cpus:
            return
        self.work.say(f"hot-plugging vCPUs up to {want}")
        self.backend.set_vcpus(self.name, want, live=True)
        if self.current.devices.agent:
            self._online_vcpus(want)

    def _online_vcpus(self, want: int) -> None:
        """Hot-added vCPUs stay offline until the guest onlines them; ask its agent to, once the guest's
        kernel has seen them arrive (which takes a moment after libvirt returns)."""
        deadline = time.monotonic() + self.work.ctx.options.settle_timeout
        online = 0
        try:
            while online < want and time.monotonic() < deadline:
                vcpus = self.backend.agent(self.name, "guest-get-vcpus", timeout=10)
                offline = [{"logical-id": v["logical-id"], "online": True} for v in vcpus if not v.get("online")]
                if offline:
                    self.backend.agent(self.name, "guest-set-vcpus", {"vcpus": offline}, timeout=10)
                online = len(vcpus)  # those that were offline have just been onlined
                if online < want:
                    time.sleep(0.5)
        except HypervisorError as exc:
            self.work.outcome.warnings.append(f"new vCPUs may be offline in the guest: {exc.detail}")
            return
        if online < want:
            self.work.outcome.warnings.append(f"the guest has {online} of {want} vCPUs online so far")


def _lacks_disk(name: str, guest: GuestSpec) -> bool:
    return guest.disk(name) is None


def _lacks_nic(name: str, guest: GuestSpec) -> bool:
    return guest.nic(name) is None


def _running_target(backend: LibvirtBackend, name: str, disk: str) -> str:
    view = backend.read_guest(name)
    return view.targets.get(disk, "")
