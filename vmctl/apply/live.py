"""Live requests to a running guest, exactly as the plan lists them: hot-plug, hot-unplug, NIC moves,
seed swap, balloon, vCPUs.

Nothing here decides what to do: each DeviceStep names the request and its device. An unplug is
checked by reading the domain back (a guest may never release a device), and that is reported,
never claimed as done.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import ClassVar

from vmctl.apply.context import ApplyContext, Outcome
from vmctl.errors import HypervisorError
from vmctl.libvirtxml.domain import (
    disk_element,
    element_xml,
    nic_element,
    scsi_controller_element,
    seed_element,
)
from vmctl.model import DiskSpec, GuestSpec, GuestState, LiveGuest, NicSpec
from vmctl.plan.changes import DeviceStep, DeviceWork
from vmctl.units import format_size


class LiveRequests:
    """Carries out one guest's DeviceSteps in order."""

    def __init__(
        self, ctx: ApplyContext, guest: GuestSpec, live: LiveGuest, say: Callable[[str], None], outcome: Outcome
    ) -> None:
        self.ctx = ctx
        self.backend = ctx.backend
        self.name = guest.name
        self.guest = guest
        self.live = live
        self.say = say
        self.outcome = outcome

    def run(self, steps: tuple[DeviceStep, ...]) -> None:
        for step in steps:
            self._HANDLERS[step.work](self, step)

    def _add_scsi_controller(self, _step: DeviceStep) -> None:
        # libvirt would add an lsilogic controller for a hot-plugged SCSI disk, and a PCI device has no
        # slot on q35's PCIe root ports: the planner plugs a virtio-scsi controller first.
        self.say("hot-plugging a virtio-scsi controller")
        self.backend.attach(self.name, element_xml(scsi_controller_element()), live=True)

    def _attach_disk(self, step: DeviceStep) -> None:
        self.say(f"hot-plugging disk {step.device} as {step.target}")
        self.backend.attach(self.name, element_xml(disk_element(self._wanted_disk(step), step.target)), live=True)

    def _detach_disk(self, step: DeviceStep) -> None:
        disk = self.live.current.disk(step.device)
        assert disk is not None, f"the plan unplugs disk {step.device}, which it read in the guest"
        self.say(f"hot-unplugging disk {step.device}")
        shape = DiskSpec(disk.name, disk.bus, disk.pool, disk.volume)
        xml = element_xml(disk_element(shape, step.target))
        self._detach(xml, lambda guest: guest.disk(step.device) is None, f"disk {step.device}")

    def _attach_nic(self, step: DeviceStep) -> None:
        self.say(f"hot-plugging NIC {step.device}")
        self.backend.attach(self.name, element_xml(nic_element(self._wanted_nic(step))), live=True)

    def _detach_nic(self, step: DeviceStep) -> None:
        nic = self.live.current.nic(step.device)
        assert nic is not None, f"the plan unplugs NIC {step.device}, which it read in the guest"
        self.say(f"hot-unplugging NIC {step.device}")
        self._detach(element_xml(nic_element(nic)), lambda guest: guest.nic(step.device) is None, f"NIC {step.device}")

    def _move_nic(self, step: DeviceStep) -> None:
        nic = self._wanted_nic(step)
        self.say(f"moving NIC {nic.name} to {nic.source or nic.kind}")
        self.backend.update_device(self.name, element_xml(nic_element(nic)), live=True)

    def _swap_seed(self, _step: DeviceStep) -> None:
        assert self.guest.seed is not None, "the plan swaps in the spec's seed"
        self.say("swapping in the new cloud-init seed")
        self.backend.update_device(self.name, element_xml(seed_element(self.guest.seed)), live=True)

    def _balloon(self, step: DeviceStep) -> None:
        self.say(f"ballooning memory to {format_size(step.amount)}")
        self.backend.set_memory(self.name, step.amount, live=True)  # the guest deflates it in its time

    def _plug_vcpus(self, step: DeviceStep) -> None:
        self.say(f"hot-plugging vCPUs up to {step.amount}")
        self.backend.set_vcpus(self.name, step.amount, live=True)

    def _online_vcpus(self, step: DeviceStep) -> None:
        """Hot-added vCPUs stay offline until the guest onlines them; ask its agent to, once the guest's
        kernel has seen them arrive (which takes a moment after libvirt returns)."""
        want = step.amount
        deadline = time.monotonic() + self.ctx.options.settle_timeout
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
            self.outcome.warnings.append(f"new vCPUs may be offline in the guest: {exc.detail}")
            return
        if online < want:
            self.outcome.warnings.append(f"the guest has {online} of {want} vCPUs online so far")

    def _detach(self, xml: str, gone: Callable[[GuestState], bool], what: str) -> None:
        self.backend.detach(self.name, xml, live=True)
        timeout = self.ctx.options.unplug_timeout
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            view = self.backend.read_guest(self.name, self.ctx.pool_paths)
            if view.guest is None or gone(view.guest):
                return
            time.sleep(0.5)
        raise HypervisorError(
            f"hot-unplug {what}",
            f"the guest did not release it within {timeout:g}s "
            "(removed from its config: gone at the next restart; run apply again to finish)",
            guest=self.name,
        )

    def _wanted_disk(self, step: DeviceStep) -> DiskSpec:
        disk = self.guest.disk(step.device)
        assert disk is not None, f"the plan plugs disk {step.device}, which the spec has"
        return disk

    def _wanted_nic(self, step: DeviceStep) -> NicSpec:
        nic = self.guest.nic(step.device)
        assert nic is not None, f"the plan plugs NIC {step.device}, which the spec has"
        return nic

    _HANDLERS: ClassVar[dict[DeviceWork, Callable[[LiveRequests, DeviceStep], None]]] = {
        DeviceWork.ADD_SCSI_CONTROLLER: _add_scsi_controller,
        DeviceWork.ATTACH_DISK: _attach_disk,
        DeviceWork.DETACH_DISK: _detach_disk,
        DeviceWork.ATTACH_NIC: _attach_nic,
        DeviceWork.DETACH_NIC: _detach_nic,
        DeviceWork.MOVE_NIC: _move_nic,
        DeviceWork.SWAP_SEED: _swap_seed,
        DeviceWork.BALLOON: _balloon,
        DeviceWork.PLUG_VCPUS: _plug_vcpus,
        DeviceWork.ONLINE_VCPUS: _online_vcpus,
    }
