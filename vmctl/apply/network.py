"""Carry out one network's update as the plan describes it: start it, rewrite its record, change its
fixed addresses on the running network, or (only with --allow-restart) recreate it and plug the
running guests' NICs back in."""

from __future__ import annotations

import time
from collections.abc import Callable

from vmctl.apply.context import ApplyContext
from vmctl.errors import HypervisorError
from vmctl.libvirtxml.domain import element_xml, nic_element
from vmctl.model import NetworkSpec
from vmctl.plan.changes import HostStep, HostWork, NetworkSteps, NicRef


class NetworkWork:
    """The steps of one network's update."""

    def __init__(self, ctx: ApplyContext, spec: NetworkSpec, steps: NetworkSteps, say: Callable[[str], None]) -> None:
        self.ctx = ctx
        self.backend = ctx.backend
        self.spec = spec
        self.name = spec.libvirt_name
        self.steps = steps
        self.say = say

    def run(self) -> str:
        if self.steps.restart:
            return self._recreate()
        done = []
        if self.steps.start:
            self.backend.start_network(self.name)
            done.append("started")
        for step in self.steps.hosts:
            self._host(step)
        if self.steps.hosts:
            done.append(f"{len(self.steps.hosts)} fixed address(es) changed live")
        if self.steps.write_owner:
            self.backend.set_network_owner(self.name, self.ctx.desired.owner)
            done.append("expiry recorded")
        return ", ".join(done) or "unchanged"

    def _host(self, step: HostStep) -> None:
        if step.work is HostWork.ADD and step.after:
            self.say(f"reserving {step.after.ip} for {step.after.names[0]}")
            self.backend.add_network_host(self.name, step.after)
        elif step.work is HostWork.REMOVE and step.before:
            self.say(f"releasing {step.before.ip} of {step.before.names[0]}")
            self.backend.remove_network_host(self.name, step.before)
        elif step.before and step.after:
            self.say(f"moving {step.after.names[0]} from {step.before.ip} to {step.after.ip}")
            self.backend.change_network_host(self.name, step.before, step.after)

    def _recreate(self) -> str:
        if not self.ctx.options.allow_restart:
            return "left as it is: recreating it (its range or mode changed) needs apply --allow-restart"
        self.say("recreating the network")
        self.backend.delete_network(self.name)
        self.backend.create_network(self.spec, self.ctx.desired.owner)
        for ref in self.steps.reattach:
            self._reattach(ref)
        plugged = f", {len(self.steps.reattach)} running NIC(s) plugged back" if self.steps.reattach else ""
        return "recreated" + plugged

    def _reattach(self, ref: NicRef) -> None:
        """A recreated network's bridge is new: the guest's NIC is unplugged and plugged back into it."""
        self.say(f"plugging guest {ref.guest}'s NIC {ref.nic.name} back in")
        xml = element_xml(nic_element(ref.nic))
        self.backend.detach(ref.guest, xml, live=True)
        deadline = time.monotonic() + self.ctx.options.unplug_timeout
        while time.monotonic() < deadline:
            view = self.backend.read_guest(ref.guest, self.ctx.pool_paths)
            if view.guest is None or view.guest.nic(ref.nic.name) is None:
                self.backend.attach(ref.guest, xml, live=True)
                return
            time.sleep(0.5)
        raise HypervisorError(
            f"plug NIC {ref.nic.name} back in",
            f"the guest did not release it within {self.ctx.options.unplug_timeout:g}s",
            guest=ref.guest,
        )
