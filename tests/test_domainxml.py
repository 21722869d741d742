"""Domain, network, pool and volume XML: valid by libvirt's own schema, and read back to the same spec."""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from vmctl.libvirtxml.definition import domain_definition, guest_record
from vmctl.libvirtxml.domain import carry_over
from vmctl.libvirtxml.network import network_xml, read_network
from vmctl.libvirtxml.readback import read_domain
from vmctl.libvirtxml.storage import pool_xml, read_pool, volume_xml
from vmctl.libvirtxml.tree import parse
from vmctl.model import DesiredState, HostFacts, LiveGuest, Owner
from vmctl.plan.guest import diff_guest
from vmctl.resolve.desired import desired_state
from vmctl.resolve.localfiles import gather
from vmctl.spec.load import load_spec

from .conftest import stub_qcow2

DATA = Path(__file__).parent / "data"
TCG = HostFacts(kvm_usable=False)
KVM = HostFacts(kvm_usable=True)
Resolve = Callable[[HostFacts], DesiredState]


def validate(xml: str, kind: str, tmp_path: Path) -> None:
    """libvirt's schema is the oracle, not our opinion."""
    assert shutil.which("virt-xml-validate"), "virt-xml-validate (libvirt-clients) is required"
    path = tmp_path / f"{kind}.xml"
    path.write_text(xml)
    result = subprocess.run(["virt-xml-validate", str(path), kind], capture_output=True, text=True)
    assert result.returncode == 0, f"{kind} XML rejected by libvirt's schema:\n{result.stderr}\n{xml}"


@pytest.fixture
def resolve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Resolve:
    """The everything-spec resolved for a given host."""
    folder = tmp_path / "spec"
    shutil.copytree(DATA, folder)
    stub_qcow2(folder / "images" / "base.qcow2", 2 * 1024**3)
    (folder / "images" / "raw.img").write_bytes(b"\0" * 4096)
    (folder / "files").mkdir()
    (folder / "files" / "vmlinuz").write_bytes(b"kernel")
    (folder / "files" / "initrd.img").write_bytes(b"initrd")
    monkeypatch.setenv("VMCTL_CACHE", str(tmp_path / "cache"))
    spec = load_spec([str(folder / "everything.yaml")])
    facts = gather(spec)
    return lambda host: desired_state(spec, facts, host)


def definitions(desired: DesiredState, host: HostFacts) -> dict[str, str]:
    paths = {p.name: p.path for p in desired.pools}
    return {g.name: domain_definition(g, guest_record(g, desired), host, paths) for g in desired.guests}


@pytest.mark.parametrize("host", [TCG, KVM], ids=["tcg-host", "kvm-host"])
def test_every_spec_feature_passes_libvirts_schema(resolve: Resolve, host: HostFacts, tmp_path: Path) -> None:
    desired = resolve(host)
    xmls = definitions(desired, host)
    assert set(xmls) == {"full", "pc", "hostcpu-1", "hostcpu-2"}
    for xml in xmls.values():
        validate(xml, "domain", tmp_path)


def test_domain_xml_carries_every_feature(resolve: Resolve) -> None:
    desired = resolve(TCG)
    root = ET.fromstring(definitions(desired, TCG)["full"])
    devices = root.find("devices")
    assert devices is not None
    assert root.get("type") == "qemu"
    assert root.findtext("cpu/model") == "qemu64"
    assert root.find("os").get("firmware") == "efi"  # type: ignore[union-attr]
    assert root.find("vcpu").attrib == {"placement": "static", "current": "2"}  # type: ignore[union-attr]
    assert root.findtext("vcpu") == "8"
    assert root.findtext("memory") == str(4 * 1024**2) and root.findtext("currentMemory") == str(1024**2)
    disks = {d.findtext("serial"): d for d in devices.findall("disk") if d.get("device") == "disk"}
    assert {name: d.find("target").get("bus") for name, d in disks.items()} == {  # type: ignore[union-attr]
        "root": "virtio", "rawdisk": "virtio", "data": "scsi", "logs": "virtio",
    }  # fmt: skip
    assert all(d.find("driver").get("discard") == "unmap" for d in disks.values())  # type: ignore[union-attr]
    assert any(c.get("model") == "virtio-scsi" for c in devices.findall("controller"))
    cdroms = [d for d in devices.findall("disk") if d.get("device") == "cdrom"]
    placed = [(d.find("target").get("dev"), d.find("target").get("bus")) for d in cdroms]  # type: ignore[union-attr]
    media = [d.find("source").attrib if d.find("source") is not None else None for d in cdroms]  # type: ignore[union-attr]
    # The data disk (scsi) took sdb; the seed always has sda.
    assert placed == [("sdc", "sata"), ("sdd", "scsi"), ("sde", "sata"), ("sda", "sata")]
    assert media[:3] == [{"file": "/srv/install.iso"}, {"pool": "default", "volume": "tools.iso"}, None]  # tray: empty
    aliases = [d.find("alias").get("name") for d in cdroms]  # type: ignore[union-attr]
    assert aliases == ["ua-disk-install", "ua-disk-tools", "ua-disk-tray", "ua-seed"]
    assert all(d.find("readonly") is not None for d in cdroms)
    nic_types = sorted(n.get("type", "") for n in devices.findall("interface"))
    assert nic_types == ["bridge", "bridge", "network", "network", "user", "user"]
    assert {m.get("type") for m in devices.iterfind("interface/model")} == {"virtio", "e1000"}
    assert devices.find("memballoon/stats") is not None
    assert devices.findtext("rng/backend") == "/dev/urandom"
    assert devices.find("vsock/cid").get("auto") == "yes"  # type: ignore[union-attr]
    assert devices.find("channel/target").get("name") == "org.qemu.guest_agent.0"  # type: ignore[union-attr]
    assert devices.find("serial/log").get("file") == "/var/log/libvirt/qemu/full-serial.log"  # type: ignore[union-attr]
    assert devices.find("filesystem/driver").get("type") == "virtiofs"  # type: ignore[union-attr]
    assert root.find("memoryBacking/access").get("mode") == "shared"  # type: ignore[union-attr]
    ports = [c for c in devices.findall("controller") if c.get("model") == "pcie-root-port"]
    assert len(ports) >= 8 + 4 + 6 + 1  # spares for hot-plug beyond the disks, NICs and share present at boot


def test_user_text_is_escaped_by_construction(resolve: Resolve) -> None:
    xml = definitions(resolve(TCG), TCG)["full"]
    assert ET.fromstring(xml).findtext("os/cmdline") == "root=/dev/vda console=ttyS0 x=<&\"'>"


def test_kvm_host_gets_kvm_and_the_host_cpu(resolve: Resolve) -> None:
    desired = resolve(KVM)
    roots = {n: ET.fromstring(x) for n, x in definitions(desired, KVM).items()}
    assert roots["hostcpu-1"].get("type") == "kvm"
    assert roots["hostcpu-1"].find("cpu").get("mode") == "host-model"  # type: ignore[union-attr]
    assert roots["full"].get("type") == "qemu"  # accel: tcg is kept even where kvm works


def test_pc_machine_has_no_pcie_ports_and_devices_off(resolve: Resolve) -> None:
    root = ET.fromstring(definitions(resolve(TCG), TCG)["pc"])
    devices = root.find("devices")
    assert devices is not None
    assert not [c for c in devices.findall("controller") if c.get("type") == "pci"]
    assert devices.find("memballoon").get("model") == "none"  # type: ignore[union-attr]
    assert devices.find("rng") is None and devices.find("channel") is None and devices.find("serial") is None
    # The first disk boots, not the CD-ROM drive before it in the spec.
    boots = {d.findtext("serial") or d.get("device"): d.find("boot") for d in devices.findall("disk")}
    assert boots["cdrom"] is None and boots["root"].get("order") == "1"  # type: ignore[union-attr]
    assert devices.find("disk/target").attrib == {"dev": "hda", "bus": "ide"}  # type: ignore[union-attr]


@pytest.mark.parametrize("host", [TCG, KVM], ids=["tcg-host", "kvm-host"])
def test_domain_xml_reads_back_to_the_same_guest(resolve: Resolve, host: HostFacts) -> None:
    desired = resolve(host)
    paths = {p.name: p.path for p in desired.pools}
    for guest in desired.guests:
        record = guest_record(guest, desired)
        view = read_domain(domain_definition(guest, record, host, paths), paths, autostart=guest.autostart)
        assert view.record == record
        assert view.guest is not None
        sizes = {d.name: d.size for d in guest.disks}
        parsed = replace(view.guest, disks=tuple(replace(d, size=sizes[d.name]) for d in view.guest.disks))
        live = LiveGuest(guest.name, "uuid", record, replace(parsed, state=guest.state), None)
        assert diff_guest(guest, live).fields == [], guest.name


def test_redefinition_keeps_addresses_and_uuid(resolve: Resolve) -> None:
    desired = resolve(TCG)
    guest = desired.guest("full")
    assert guest is not None
    first = ET.fromstring(definitions(desired, TCG)["full"])
    for index, device in enumerate(first.find("devices") or []):
        ET.SubElement(device, "address", {"type": "pci", "bus": f"0x{index:02x}"})
    merged = carry_over(parse(definitions(desired, TCG)["full"]), ET.tostring(first, encoding="unicode"))
    addressed = {
        (d.tag, (d.find("alias").get("name") if d.find("alias") is not None else "")): d.find("address")
        for d in merged.find("devices")
    }  # type: ignore[union-attr]
    assert all(address is not None for address in addressed.values())


def test_network_pool_volume_xml_pass_libvirts_schema(resolve: Resolve, tmp_path: Path) -> None:
    desired = resolve(TCG)
    owner = Owner("every", "ws1")
    for net in desired.networks:
        xml = network_xml(net, owner)
        validate(xml, "network", tmp_path)
        live = read_network(xml, True, True)
        assert (live.spec.mode, live.spec.ipv4, live.spec.dhcp) == (net.mode, net.ipv4, net.dhcp)
        assert live.owner == owner
    for pool in desired.pools:
        xml = pool_xml(pool.name, pool.path, owner)
        validate(xml, "storagepool", tmp_path)
        assert read_pool(xml, True, owner).owner == owner
        assert read_pool(xml, True, Owner("every", "other")).owner is None
    validate(volume_xml("v.qcow2", 10 * 1024**3, "qcow2", "/var/lib/libvirt/images/base.qcow2"), "storagevol", tmp_path)
    validate(volume_xml("seed.iso", 69632, "raw"), "storagevol", tmp_path)
