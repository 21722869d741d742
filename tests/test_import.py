"""`vmctl import` and adoption on libvirt's test driver, through the CLI: hand-written domains shaped
as virt-install makes them, and the guests of every example as vmctl makes them (record taken out).

Adoption writes vmctl's record and nothing else; the next plan is empty; a change then is planned and
applied like any other. Domains with what vmctl cannot express are refused, each element named.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from vmctl.hypervisor import connect
from vmctl.libvirtxml.definition import domain_definition, guest_record

from .conftest import TEST_DRIVER, CliResult
from .test_roundtrip import example_copy, resolve

Cli = Callable[..., CliResult]
EXAMPLES = ["dev", "lab", "ci", "storage", "demo"]


def virt_install_xml(name: str, extra_devices: str = "", extra: str = "") -> str:
    """What `virt-install --graphics none --console pty` defines, trimmed to what matters here."""
    return f"""
<domain type='qemu'>
  <name>{name}</name>
  <memory unit='KiB'>1048576</memory>
  <currentMemory unit='KiB'>1048576</currentMemory>
  <vcpu placement='static'>2</vcpu>
  <os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type><boot dev='hd'/></os>
  <features><acpi/><apic/><vmport state='off'/></features>
  <cpu mode='custom' match='exact' check='none'><model fallback='forbid'>qemu64</model>{extra}</cpu>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/srv/vms/{name}.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='/srv/vms/{name}-data.img'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <controller type='usb' model='qemu-xhci' ports='15'/>
    <interface type='network'>
      <mac address='52:54:00:3c:1d:{len(name) % 100:02d}'/>
      <source network='default'/>
      <model type='virtio'/>
    </interface>
    <serial type='pty'><target type='isa-serial' port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
    <memballoon model='virtio'/>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
    {extra_devices}
  </devices>
</domain>"""


@pytest.fixture
def domains(test_driver: object, project: str) -> Iterator[Callable[[str], str]]:
    """Define a domain on the test driver (shared by the CLI's own connections); undefined afterwards."""
    import libvirt

    conn = libvirt.open(TEST_DRIVER)
    made: list[str] = []

    def define(xml: str) -> str:
        dom = conn.defineXML(xml)
        made.append(dom.name())
        return str(dom.name())

    yield define
    for name in made:
        dom = conn.lookupByName(name)
        if dom.isActive():
            dom.destroy()
        dom.undefine()
    conn.close()


def domain_xml(name: str) -> ET.Element:
    import libvirt

    conn = libvirt.open(TEST_DRIVER)
    try:
        return ET.fromstring(conn.lookupByName(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    finally:
        conn.close()


def without(root: ET.Element, *tags: str) -> str:
    for tag in tags:
        for element in root.findall(tag):
            root.remove(element)
    return ET.tostring(root, encoding="unicode")


def test_a_virt_install_domain_round_trips(
    cli: Cli, domains: Callable[[str], str], project: str, tmp_path: Path
) -> None:
    name = domains(virt_install_xml(f"{project}-web"))
    spec = tmp_path / "vmctl.yaml"
    result = cli("import", name, "-p", project, "-o", str(spec), "-c", TEST_DRIVER)
    assert result.code == 0, result.err
    text = spec.read_text()
    assert f"# domain {name} (uuid " in text and "on test:///default, shut off when imported" in text
    guest = yaml.safe_load(text)["guests"][name]
    assert guest["adopt"] is True
    assert guest["disks"] == {
        "vda": {"path": f"/srv/vms/{name}.qcow2"},
        "vdb": {"path": f"/srv/vms/{name}-data.img", "format": "raw"},
    }
    assert guest["nics"]["nic0"]["network"] == "default" and guest["memory"] == "1GiB" and guest["cpus"] == 2
    before = domain_xml(name)

    plan = cli("plan", str(spec), "-c", TEST_DRIVER)
    assert f"<= guest {name} will be adopted" in plan.out, plan.out + plan.err
    assert "1 to adopt" in plan.out and "unmodelled" not in plan.out
    applied = cli("apply", "--yes", str(spec), "-c", TEST_DRIVER)
    assert applied.code == 0, applied.out + applied.err
    assert "adopted (its definition and power are as they were)" in applied.out
    after = domain_xml(name)
    assert without(after, "metadata") == without(before, "metadata")  # the record, nothing else
    assert cli("plan", str(spec), "-c", TEST_DRIVER).out.strip() == "No changes. Live state matches the spec."

    spec.write_text(text.replace("memory: 1GiB", "memory: 2GiB").replace("cpus: 2", "cpus: 1"))
    changed = cli("apply", "--yes", str(spec), "-c", TEST_DRIVER)
    assert changed.code == 0, changed.out + changed.err
    assert cli("plan", str(spec), "-c", TEST_DRIVER).out.strip() == "No changes. Live state matches the spec."
    files = [s.get("file") for s in domain_xml(name).iterfind("devices/disk/source")]
    assert files == [f"/srv/vms/{name}.qcow2", f"/srv/vms/{name}-data.img"]  # its own disks, never made anew


def test_what_vmctl_cannot_express_refuses_the_domain(
    cli: Cli, domains: Callable[[str], str], project: str, tmp_path: Path
) -> None:
    extra_devices = """
    <graphics type='spice' autoport='yes'/>
    <video><model type='qxl'/></video>
    <hostdev mode='subsystem' type='pci' managed='yes'>
      <source><address domain='0x0000' bus='0x03' slot='0x00' function='0x0'/></source>
    </hostdev>
    <disk type='network' device='disk'>
      <driver name='qemu' type='raw'/>
      <source protocol='nbd' name='export'><host name='nbd.example' port='10809'/></source>
      <target dev='vdc' bus='virtio'/>
    </disk>"""
    topology = "<topology sockets='2' dies='1' cores='1' threads='1'/>"
    name = domains(virt_install_xml(f"{project}-gpu", extra_devices, topology))
    spec = tmp_path / "vmctl.yaml"
    refused = cli("import", name, "-o", str(spec), "-c", TEST_DRIVER)
    assert refused.code == 1
    assert not spec.exists()
    for element in ("graphics spice", "video qxl", "hostdev pci at 0000:03:00.0", "disk vdc of type network"):
        assert f"{name}: {element} (vmctl does not model it)" in refused.err
    assert "hint: --force" in refused.err

    topology2 = "<topology sockets='1' dies='1' cores='2' threads='1'/>"
    other = domains(virt_install_xml(f"{project}-sock", extra=topology2))
    assert "CPU topology (1 sockets, 2 cores, 1 threads)" in cli("import", other, "-c", TEST_DRIVER).err

    forced = cli("import", name, "--force", "-p", project, "-o", str(spec), "-c", TEST_DRIVER)
    assert forced.code == 0, forced.err
    assert "#   - graphics spice" in spec.read_text()
    plan = cli("plan", str(spec), "-c", TEST_DRIVER)
    for element in ("graphics spice", "video qxl", "disk vdc of type network"):
        assert any(" - unmodelled " in line and f" {element} → (none)" in line for line in plan.out.splitlines()), (
            plan.out
        )


def test_bad_input_changes_nothing(cli: Cli, domains: Callable[[str], str], project: str, tmp_path: Path) -> None:
    missing = cli("import", f"{project}-nosuch", "-c", TEST_DRIVER)
    assert (missing.code, missing.out) == (1, "")
    assert f"no domain named {project}-nosuch on test:///default" in missing.err
    assert cli("import", "-c", TEST_DRIVER).code == 1  # neither names nor --all

    name = domains(virt_install_xml(f"{project}-own"))
    spec = tmp_path / "vmctl.yaml"
    assert cli("import", name, "-p", project, "-o", str(spec), "-c", TEST_DRIVER).code == 0
    assert cli("apply", "--yes", str(spec), "-c", TEST_DRIVER).code == 0
    again = cli("import", name, "-c", TEST_DRIVER)
    assert again.code == 1 and f"{name} is managed by vmctl already, for project {project}" in again.err
    other = tmp_path / "other.yaml"
    other.write_text(spec.read_text().replace(f"project: {project}", f"project: {project}x"))
    refused = cli("plan", str(other), "-c", TEST_DRIVER)
    assert refused.code == 1 and f"managed by vmctl for project {project}" in refused.err
    exists = cli("import", name, "-o", str(spec), "-c", TEST_DRIVER)
    assert exists.code == 1 and "does not overwrite" in exists.err


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_examples_guests_import_as_vmctl_made_them(
    example: str, cli: Cli, domains: Callable[[str], str], project: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """vmctl's own domains, record taken out, read back as the spec would write them: only the seed is left over."""
    backend = connect(TEST_DRIVER)
    desired = resolve(example_copy(example, tmp_path), project, backend, monkeypatch, tmp_path)
    host = backend.host_facts()
    backend.close()
    pool_paths = {p.name: p.path for p in desired.pools}
    for guest in desired.guests:
        root = ET.fromstring(domain_definition(guest, guest_record(guest, desired), host, pool_paths))
        name = domains(without(root, "metadata", "title"))
        result = cli("import", name, "--force", "-c", TEST_DRIVER)
        assert result.code == 0, result.err
        imported = yaml.safe_load(result.out)["guests"][name]
        assert {"cpus", "memory", "machine", "accel"} <= imported.keys()
        assert set(imported["disks"]) == {d.name for d in guest.disks}
        assert {n: v["mac"] for n, v in imported.get("nics", {}).items()} == {n.name: n.mac for n in guest.nics}
        left_over = [line for line in result.out.splitlines() if line.startswith("  #   - ")]
        assert left_over == (["  #   - cdrom sda with " + guest.seed.volume] if guest.seed else [])
