"""Named operations on domains, their devices and their guest agents."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import cast

import libvirt

from vmctl.hypervisor.interface import Addresses, AgentReply, JsonArg
from vmctl.hypervisor.libvirt.connection import Connection, is_missing, is_unsupported, translated
from vmctl.libvirtxml.metadata import NAMESPACE, PREFIX
from vmctl.libvirtxml.readback import DomainView, read_domain

SHUTDOWN_POLL = 0.25


def _affect(live: bool, config: bool = True) -> int:
    """The flags for changing the running guest, its persistent definition, or both."""
    flags = 0
    if live:
        flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
    if config:
        flags |= libvirt.VIR_DOMAIN_AFFECT_CONFIG
    return flags


class DomainOps:
    """Define, start, stop, change and ask the guest agent."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def _domain(self, name: str) -> libvirt.virDomain:
        return self.connection.domain(name)

    def domain_exists(self, name: str) -> bool:
        """Asked of libvirt now, not of a handle kept from reading: someone may have removed it since."""
        self.connection.forget_domain(name)
        return self.connection.find_domain(name) is not None

    def domain_xml(self, name: str, inactive: bool = False) -> str:
        flags = libvirt.VIR_DOMAIN_XML_INACTIVE if inactive else 0
        with translated("read domain", name):
            return str(self._domain(name).XMLDesc(flags))

    def read_guest(self, name: str, pool_paths: Mapping[str, str] | None = None) -> DomainView:
        return read_domain(self.domain_xml(name), pool_paths)

    def define(self, xml: str, name: str) -> None:
        with translated("define", name):
            self.connection.remember_domain(name, self.connection.conn.defineXML(xml))

    def is_active(self, name: str) -> bool:
        with translated("read state", name):
            return bool(self._domain(name).isActive())

    def start(self, name: str) -> None:
        with translated("start", name):
            dom = self._domain(name)
            if not dom.isActive():
                dom.create()

    def shutdown(self, name: str, timeout: float) -> bool:
        """Ask the guest to power off (its agent if it has one, else ACPI); True if it did in `timeout`."""
        dom = self._domain(name)
        flags = libvirt.VIR_DOMAIN_SHUTDOWN_GUEST_AGENT | libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN
        with translated("shut down", name):
            if not dom.isActive():
                return True
            try:
                _shutdown(dom, flags)
            except libvirt.libvirtError as exc:
                if not dom.isActive():
                    return True
                if exc.get_error_code() != libvirt.VIR_ERR_OPERATION_INVALID:
                    raise
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.is_active(name):
                return True
            time.sleep(SHUTDOWN_POLL)
        return False

    def power_off(self, name: str) -> None:
        with translated("power off", name):
            dom = self._domain(name)
            if dom.isActive():
                try:
                    dom.destroy()
                except libvirt.libvirtError:
                    if dom.isActive():
                        raise

    def undefine(self, name: str) -> None:
        """Forget the domain, with its NVRAM, snapshot and checkpoint metadata and managed save."""
        flags = (
            libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
            | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
            | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
            | libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
        )
        dom = self.connection.find_domain(name)
        self.connection.forget_domain(name)
        if dom is None:
            return
        with translated("undefine", name):
            try:
                dom.undefineFlags(flags)
            except libvirt.libvirtError as exc:
                if is_missing(exc):
                    return
                if not is_unsupported(exc):
                    raise
                dom.undefine()  # drivers that know none of these extras (the test driver)

    def rename(self, name: str, new_name: str) -> None:
        """Rename a stopped domain (libvirt renames no running one); its disks and MACs stay as they are."""
        dom = self._domain(name)
        self.connection.forget_domain(name)
        with translated("rename", name):
            dom.rename(new_name, 0)
        self.connection.forget_domain(new_name)

    def set_autostart(self, name: str, enabled: bool) -> None:
        with translated("set autostart", name):
            self._domain(name).setAutostart(1 if enabled else 0)

    def set_metadata(self, name: str, xml: str, live: bool) -> None:
        with translated("write vmctl metadata", name):
            self._domain(name).setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, xml, PREFIX, NAMESPACE, _affect(live))

    def attach(self, name: str, xml: str, live: bool) -> None:
        with translated("attach device", name):
            self._domain(name).attachDeviceFlags(xml, _affect(live))

    def detach(self, name: str, xml: str, live: bool) -> None:
        with translated("detach device", name):
            self._domain(name).detachDeviceFlags(xml, _affect(live))

    def update_device(self, name: str, xml: str, live: bool) -> None:
        with translated("update device", name):
            self._domain(name).updateDeviceFlags(xml, _affect(live))

    def set_memory(self, name: str, size: int, live: bool) -> None:
        with translated("set memory", name):
            self._domain(name).setMemoryFlags(size // 1024, _affect(live))

    def set_vcpus(self, name: str, count: int, live: bool) -> None:
        with translated("set vCPUs", name):
            self._domain(name).setVcpusFlags(count, _affect(live))

    def block_resize(self, name: str, target: str, size: int) -> None:
        with translated(f"resize disk {target}", name):
            self._domain(name).blockResize(target, size, libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES)

    def agent(self, name: str, command: str, arguments: Mapping[str, JsonArg] | None, timeout: int) -> AgentReply:
        """One qemu-guest-agent command; returns its 'return' value, as the agent sent it (not checked)."""
        import libvirt_qemu

        message = json.dumps({"execute": command, **({"arguments": arguments} if arguments else {})})
        with translated(f"guest agent {command}", name):
            reply = libvirt_qemu.qemuAgentCommand(self._domain(name), message, timeout, 0)
        return cast(AgentReply, json.loads(reply).get("return"))

    def addresses(self, name: str) -> Addresses:
        """IP addresses by MAC, from the guest agent, else from DHCP leases."""
        dom = self._domain(name)
        for source in (
            libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT,
            libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE,
        ):
            try:
                found = dom.interfaceAddresses(source, 0)
            except libvirt.libvirtError:
                continue
            result = {
                (info.get("hwaddr") or iface).lower(): [a["addr"] for a in info.get("addrs") or []]
                for iface, info in found.items()
                if iface != "lo"
            }
            if any(result.values()):
                return result
        return {}


def _shutdown(dom: libvirt.virDomain, flags: int) -> None:
    try:
        dom.shutdownFlags(flags)
    except libvirt.libvirtError as exc:
        if not is_unsupported(exc):
            raise
        dom.shutdown()  # drivers that cannot choose the method (the test driver)
