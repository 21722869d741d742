"""Network XML, built and read with lxml; vmctl's ownership lives in its <metadata>.

Fixed addresses are the network's: a DHCP <host> by MAC and a DNS <host> with the guest's names.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from lxml import etree

from vmctl.libvirtxml.metadata import find_network_owner, network_element
from vmctl.libvirtxml.tree import parse
from vmctl.model import HostEntry, LiveNetwork, NetworkSpec, Owner


def network_xml(spec: NetworkSpec, owner: Owner) -> str:
    root = etree.Element("network")
    etree.SubElement(root, "name").text = spec.libvirt_name
    etree.SubElement(root, "metadata").append(network_element(owner))
    if spec.mode == "nat":
        etree.SubElement(root, "forward", {"mode": "nat"})
    if spec.hosts:
        dns = etree.SubElement(root, "dns")
        for host in spec.hosts:
            dns.append(dns_host_element(host))
    if spec.ipv4:
        _ip(root, spec)
    return etree.tostring(root, encoding="unicode")


def with_owner(xml: str, owner: Owner) -> str:
    """The same network definition with vmctl's record replaced by `owner`'s."""
    root = parse(xml)
    metadata = root.find("metadata")
    if metadata is None:
        metadata = etree.Element("metadata")
        root.insert(2, metadata)
    for old in list(metadata):
        if old.tag == network_element(owner).tag:
            metadata.remove(old)
    metadata.append(network_element(owner))
    return etree.tostring(root, encoding="unicode")


def _ip(root: etree._Element, spec: NetworkSpec) -> None:
    assert spec.ipv4 is not None
    iface = ipaddress.IPv4Interface(spec.ipv4)
    ip = etree.SubElement(root, "ip", {"address": str(iface.ip), "prefix": str(iface.network.prefixlen)})
    if spec.dhcp:
        start, end = dhcp_range(spec.ipv4)
        dhcp = etree.SubElement(ip, "dhcp")
        etree.SubElement(dhcp, "range", {"start": start, "end": end})
        for host in spec.hosts:
            dhcp.append(dhcp_host_element(host))


def dhcp_host_element(host: HostEntry) -> etree._Element:
    """<host mac= ip= name=/> of a network's <dhcp>: also what virNetworkUpdate takes."""
    return etree.Element("host", {"mac": host.mac, "ip": host.ip, "name": host.names[0]})


def dns_host_element(host: HostEntry) -> etree._Element:
    """<host ip=><hostname>... of a network's <dns>: also what virNetworkUpdate takes."""
    element = etree.Element("host", {"ip": host.ip})
    for name in host.names:
        etree.SubElement(element, "hostname").text = name
    return element


def host_xml(element: etree._Element) -> str:
    return etree.tostring(element, encoding="unicode")


def dhcp_range(ipv4: str) -> tuple[str, str]:
    """Every usable address of the network except the host's own."""
    iface = ipaddress.IPv4Interface(ipv4)
    hosts = [h for h in (iface.network.network_address + 1, iface.network.broadcast_address - 1)]
    start = hosts[0] + 1 if hosts[0] == iface.ip else hosts[0]
    end = hosts[1] - 1 if hosts[1] == iface.ip else hosts[1]
    return str(start), str(end)


def read_network(xml: str, active: bool, autostart: bool) -> LiveNetwork:
    root = parse(xml)
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


def _read_hosts(root: etree._Element, ip: etree._Element | None) -> tuple[HostEntry, ...]:
    """Each DHCP reservation with the DNS names of its address."""
    names = {h.get("ip", ""): tuple(n.text or "" for n in h.iter("hostname")) for h in root.iterfind("dns/host")}
    reserved = ip.iterfind("dhcp/host") if ip is not None else iter(())
    hosts = [
        HostEntry(h.get("mac", "").lower(), h.get("ip", ""), names.get(h.get("ip", ""), ()))
        for h in reserved
        if h.get("mac") and h.get("ip")
    ]
    return tuple(sorted(hosts, key=lambda h: h.mac))
