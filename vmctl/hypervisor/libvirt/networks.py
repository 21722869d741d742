"""Named operations on networks."""

from __future__ import annotations

import libvirt

from vmctl.errors import HypervisorError
from vmctl.hypervisor.libvirt.connection import Connection, error_detail, is_missing, translated
from vmctl.libvirtxml.network import network_xml
from vmctl.model import NetworkSpec, Owner


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
