"""Named operations on networks."""

from __future__ import annotations

import libvirt

from vmctl.errors import HypervisorError
from vmctl.hypervisor.libvirt.connection import Connection, error_detail, is_missing, translated
from vmctl.hypervisor.libvirt.reading import persistent_network_xml
from vmctl.libvirtxml.network import dhcp_host_element, dns_host_element, host_xml, network_xml, with_owner
from vmctl.model import HostEntry, NetworkSpec, Owner

_DHCP_HOST = libvirt.VIR_NETWORK_SECTION_IP_DHCP_HOST
_DNS_HOST = libvirt.VIR_NETWORK_SECTION_DNS_HOST


class NetworkOps:
    """Create, start and delete networks."""

    def __init__(self, connection: Connection) -> None:
        self.conn = connection.conn

    def create_network(self, spec: NetworkSpec, owner: Owner) -> None:
        with translated(f"create network {spec.libvirt_name}"):
            net = self.conn.networkDefineXML(network_xml(spec, owner))
            net.create()
            net.setAutostart(1)

    def start_network(self, name: str) -> None:
        with translated(f"start network {name}"):
            net = self.conn.networkLookupByName(name)
            if not net.isActive():
                net.create()
            net.setAutostart(1)

    def delete_network(self, name: str) -> None:
        try:
            net = self.conn.networkLookupByName(name)
        except libvirt.libvirtError as exc:
            if is_missing(exc):
                return
            raise HypervisorError(f"delete network {name}", error_detail(exc)) from None
        with translated(f"delete network {name}"):
            if net.isActive():
                net.destroy()
            net.undefine()

    def set_network_owner(self, name: str, owner: Owner) -> None:
        # libvirt 9.0 has no virNetworkSetMetadata: the persistent definition is written again, which
        # leaves the running network alone; vmctl reads networks' persistent definitions.
        with translated(f"write vmctl metadata of network {name}"):
            net = self.conn.networkLookupByName(name)
            self.conn.networkDefineXML(with_owner(persistent_network_xml(net), owner))

    def add_network_host(self, name: str, host: HostEntry) -> None:
        with translated(f"reserve {host.ip} on network {name}"):
            net = self.conn.networkLookupByName(name)
            _update(net, libvirt.VIR_NETWORK_UPDATE_COMMAND_ADD_LAST, _DHCP_HOST, host_xml(dhcp_host_element(host)))
            _update(net, libvirt.VIR_NETWORK_UPDATE_COMMAND_ADD_LAST, _DNS_HOST, host_xml(dns_host_element(host)))

    def remove_network_host(self, name: str, host: HostEntry) -> None:
        with translated(f"release {host.ip} on network {name}"):
            net = self.conn.networkLookupByName(name)
            _update(net, libvirt.VIR_NETWORK_UPDATE_COMMAND_DELETE, _DNS_HOST, host_xml(dns_host_element(host)))
            _update(net, libvirt.VIR_NETWORK_UPDATE_COMMAND_DELETE, _DHCP_HOST, host_xml(dhcp_host_element(host)))

    def change_network_host(self, name: str, before: HostEntry, after: HostEntry) -> None:
        with translated(f"move {after.names[0]} to {after.ip} on network {name}"):
            net = self.conn.networkLookupByName(name)
            _update(net, libvirt.VIR_NETWORK_UPDATE_COMMAND_MODIFY, _DHCP_HOST, host_xml(dhcp_host_element(after)))
            _update(net, libvirt.VIR_NETWORK_UPDATE_COMMAND_DELETE, _DNS_HOST, host_xml(dns_host_element(before)))
            _update(net, libvirt.VIR_NETWORK_UPDATE_COMMAND_ADD_LAST, _DNS_HOST, host_xml(dns_host_element(after)))


def _update(net: libvirt.virNetwork, command: int, section: int, xml: str) -> None:
    """One virNetworkUpdate, on the running network (if it runs: dnsmasq is told, nothing restarts)
    and in its persistent definition."""
    flags = libvirt.VIR_NETWORK_UPDATE_AFFECT_CONFIG
    if net.isActive():
        flags |= libvirt.VIR_NETWORK_UPDATE_AFFECT_LIVE
    net.update(command, section, -1, xml, flags)
