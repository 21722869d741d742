"""Network XML, built and read with ElementTree; vmctl's ownership lives in its <metadata>."""

from __future__ import annotations

import ipaddress
import xml.etree.ElementTree as ET
from typing import Literal

from vmctl.libvirtxml.metadata import find_network_owner, network_element
from vmctl.model import LiveNetwork, NetworkSpec, Owner


def network_xml(spec: NetworkSpec, owner: Owner) -> str:
    root = ET.Element("network")
    ET.SubElement(root, "name").text = spec.libvirt_name
    ET.SubElement(root, "metadata").append(network_element(owner))
    if spec.mode == "nat":
        ET.SubElement(root, "forward", {"mode": "nat"})
    if spec.ipv4:
        _ip(root, spec.ipv4, spec.dhcp)
    return ET.tostring(root, encoding="unicode")


def _ip(root: ET.Element, ipv4: str, dhcp: bool) -> None:
    iface = ipaddress.IPv4Interface(ipv4)
    ip = ET.SubElement(root, "ip", {"address": str(iface.ip), "prefix": str(iface.network.prefixlen)})
    if dhcp:
        start, end = dhcp_range(ipv4)
        ET.SubElement(ET.SubElement(ip, "dhcp"), "range", {"start": start, "end": end})


def dhcp_range(ipv4: str) -> tuple[str, str]:
    """Every usable address of the network except the host's own."""
    iface = ipaddress.IPv4Interface(ipv4)
    hosts = [h for h in (iface.network.network_address + 1, iface.network.broadcast_address - 1)]
    start = hosts[0] + 1 if hosts[0] == iface.ip else hosts[0]
    end = hosts[1] - 1 if hosts[1] == iface.ip else hosts[1]
    return str(start), str(end)


def read_network(xml: str, active: bool, autostart: bool) -> LiveNetwork:
    root = ET.fromstring(xml)
    forward = root.find("forward")
    mode: Literal["nat", "isolated", "bridge"] = "isolated"
    if forward is not None:
        mode = "nat" if forward.get("mode", "nat") == "nat" else "bridge"
    ip = next((i for i in root.findall("ip") if i.get("family", "ipv4") == "ipv4"), None)
    ipv4 = None
    if ip is not None and ip.get("address"):
        prefix = ip.get("prefix") or str(ipaddress.IPv4Network(f"0.0.0.0/{ip.get('netmask', '24')}").prefixlen)
        ipv4 = f"{ip.get('address')}/{prefix}"
    dhcp = ip is not None and ip.find("dhcp") is not None
    name = root.findtext("name", "")
    spec = NetworkSpec(name=name, libvirt_name=name, mode=mode, ipv4=ipv4, dhcp=dhcp)
    return LiveNetwork(spec, find_network_owner(root.find("metadata")), active, autostart)
