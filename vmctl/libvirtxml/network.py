"""Network XML, built and read with ElementTree; vmctl's ownership lives in its <metadata>.

Fixed addresses are the network's: a DHCP <host> by MAC and a DNS <host> with the guest's names.
"""

from __future__ import annotations

import ipaddress
import xml.etree.ElementTree as ET
from typing import Literal

from vmctl.libvirtxml.metadata import find_network_owner, network_element
from vmctl.model import HostEntry, LiveNetwork, NetworkSpec, Owner


def network_xml(spec: NetworkSpec, owner: Owner) -> str:
    root = ET.Element("network")
    ET.SubElement(root, "name").text = spec.libvirt_name
    ET.SubElement(root, "metadata").append(network_element(owner))
    if spec.mode == "nat":
        ET.SubElement(root, "forward", {"mode": "nat"})
    if spec.hosts:
        dns = ET.SubElement(root, "dns")
        for host in spec.hosts:
            dns.append(dns_host_element(host))
    if spec.ipv4:
        _ip(root, spec)
    return ET.tostring(root, encoding="unicode")


def with_owner(xml: str, owner: Owner) -> str:
    """The same network definition with vmctl's record replaced by `owner`'s."""
    root = ET.fromstring(xml)
    metadata = root.find("metadata")
    if metadata is None:
        metadata = ET.Element("metadata")
        root.insert(2, metadata)
    for old in list(metadata):
        if old.tag == network_element(owner).tag:
            metadata.remove(old)
    metadata.append(network_element(owner))
    return ET.tostring(root, encoding="unicode")


def _ip(root: ET.Element, spec: NetworkSpec) -> None:
    assert spec.ipv4 is not None
    iface = ipaddress.IPv4Interface(spec.ipv4)
    ip = ET.SubElement(root, "ip", {"address": str(iface.ip), "prefix": str(iface.network.prefixlen)})
    if spec.dhcp:
        start, end = dhcp_range(spec.ipv4)
        dhcp = ET.SubElement(ip, "dhcp")
        ET.SubElement(dhcp, "range", {"start": start, "end": end})
        for host in spec.hosts:
            dhcp.append(dhcp_host_element(host))


def dhcp_host_element(host: HostEntry) -> ET.Element:
    """<host mac= ip= name=/> of a network's <dhcp>: also what virNetworkUpdate takes."""
    return ET.Element("host", {"mac": host.mac, "ip": host.ip, "name": host.names[0]})


def dns_host_element(host: HostEntry) -> ET.Element:
    """<host ip=><hostname>... of a network's <dns>: also what virNetworkUpdate takes."""
    element = ET.Element("host", {"ip": host.ip})
    for name in host.names:
        ET.SubElement(element, "hostname").text = name
    return element


def host_xml(element: ET.Element) -> str:
    return ET.tostring(element, encoding="unicode")


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
    hosts = _read_hosts(root, ip)
    spec = NetworkSpec(name=name, libvirt_name=name, mode=mode, ipv4=ipv4, dhcp=dhcp, hosts=hosts)
    return LiveNetwork(spec, find_network_owner(root.find("metadata")), active, autostart)


def _read_hosts(root: ET.Element, ip: ET.Element | None) -> tuple[HostEntry, ...]:
    """Each DHCP reservation with the DNS names of its address."""
    names = {h.get("ip", ""): tuple(n.text or "" for n in h.iter("hostname")) for h in root.iterfind("dns/host")}
    reserved = ip.iterfind("dhcp/host") if ip is not None else iter(())
    hosts = [
        HostEntry(h.get("mac", "").lower(), h.get("ip", ""), names.get(h.get("ip", ""), ()))
        for h in reserved
        if h.get("mac") and h.get("ip")
    ]
    return tuple(sorted(hosts, key=lambda h: h.mac))
