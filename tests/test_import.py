"""`vmctl import` and adoption on libvirt's test driver, through the CLI: hand-written domains shaped
as virt-install makes them, and the guests of every example as vmctl makes them (record taken out).

Adoption writes vmctl's record and nothing else; the next plan is empty; a change then is planned and
applied like any other. Domains with what vmctl cannot express are refused, each element named.
"""

from __future__ import annotations

import contextlib
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from vmctl.hypervisor import connect
from vmctl.libvirtxml.definition import domain_definition, guest_record
from vmctl.libvirtxml.metadata import NAMESPACE
from vmctl.libvirtxml.readback import read_domain
from vmctl.model import VolumeRef

from .conftest import TEST_DRIVER, CliResult, remove_project
from .test_roundtrip import EXAMPLE_NAMES, applied_example, example_copy, resolve

Cli = Callable[..., CliResult]


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


def cdroms(name: str, bus: str, letters: str) -> str:
    """What virt-install leaves: the drive a --cdrom install ran from, emptied, and a NoCloud seed
    (cloud-localds) given as `--disk seed.iso,device=cdrom`."""
    prefix = "hd" if bus == "ide" else "sd"
    return f"""
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <target dev='{prefix}{letters[0]}' bus='{bus}'/>
      <readonly/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='/srv/vms/{name}-cidata.iso'/>
      <target dev='{prefix}{letters[1]}' bus='{bus}'/>
      <readonly/>
    </disk>"""


def status_of(cli: Cli, spec: Path) -> list[tuple[str, str, bool, str | None]]:
    """`vmctl status --json`: each guest's name, state, drift, and pending action."""
    result = cli("status", "--json", str(spec), "-c", TEST_DRIVER)
    assert result.code == 0, result.err
    return [(g["name"], g["state"], g["drift"], g.get("pending")) for g in json.loads(result.out)["guests"]]


@pytest.mark.parametrize(("machine", "bus", "letters"), [("pc-q35-7.2", "sata", "ab"), ("pc-i440fx-7.2", "ide", "cd")])
def test_a_virt_install_domain_round_trips(
    machine: str, bus: str, letters: str, cli: Cli, domains: Callable[[str], str], project: str, tmp_path: Path
) -> None:
    name = f"{project}-web"
    domains(virt_install_xml(name, cdroms(name, bus, letters)).replace("pc-q35-7.2", machine))
    spec = tmp_path / "vmctl.yaml"
    result = cli("import", name, "-p", project, "-o", str(spec), "-c", TEST_DRIVER)
    assert result.code == 0, result.err
    text = spec.read_text()
    assert f"# domain {name} (uuid " in text and "on test:///default, shut off when imported" in text
    guest = yaml.safe_load(text)["guests"][name]
    assert guest["adopt"] is True
    prefix, on_bus = ("hd", {"bus": "ide"}) if bus == "ide" else ("sd", {})
    assert guest["disks"] == {
        "vda": {"path": f"/srv/vms/{name}.qcow2"},
        "vdb": {"path": f"/srv/vms/{name}-data.img", "format": "raw"},
        f"{prefix}{letters[0]}": {"cdrom": True, **on_bus},
        f"{prefix}{letters[1]}": {"cdrom": True, "path": f"/srv/vms/{name}-cidata.iso", **on_bus},
    }
    assert guest["nics"]["nic0"]["network"] == "default" and guest["memory"] == "1GiB" and guest["cpus"] == 2
    before = domain_xml(name)

    plan = cli("plan", str(spec), "-c", TEST_DRIVER)
    assert f"<= guest {name} will be adopted" in plan.out, plan.out + plan.err
    assert "1 to adopt" in plan.out and "unmodelled" not in plan.out
    assert status_of(cli, spec) == [(name, "stopped", True, "adopt")]  # not vmctl's yet: libvirt is asked
    applied = cli("apply", "--yes", str(spec), "-c", TEST_DRIVER)
    assert applied.code == 0, applied.out + applied.err
    assert "adopted (its definition and power are as they were)" in applied.out
    assert status_of(cli, spec) == [(name, "stopped", False, None)]
    after = domain_xml(name)
    assert without(after, "metadata") == without(before, "metadata")  # the record, nothing else
    settled = cli("plan", "--detailed-exitcode", str(spec), "-c", TEST_DRIVER)
    assert (settled.code, settled.out.strip()) == (0, "No changes. Live state matches the spec."), settled.err

    # What a user changes next: memory, vCPUs, and a new disk.
    edited = text.replace("memory: 1GiB", "memory: 2GiB").replace("cpus: 2", "cpus: 1")
    last_disk = next(line for line in edited.splitlines() if "-cidata.iso" in line)
    spec.write_text(edited.replace(last_disk, f"{last_disk}\n      scratch: {{size: 1GiB}}"))
    changed = cli("apply", "--yes", str(spec), "-c", TEST_DRIVER)
    assert changed.code == 0, changed.out + changed.err
    assert "+ disks.scratch" in changed.out and "memory" in changed.out, changed.out
    settled = cli("plan", "--detailed-exitcode", str(spec), "-c", TEST_DRIVER)
    assert (settled.code, settled.out.strip()) == (0, "No changes. Live state matches the spec."), settled.out
    disks = {
        d.find("target").get("dev"): (d.get("device"), d.find("source"))  # type: ignore[union-attr]
        for d in domain_xml(name).iterfind("devices/disk")
    }
    # Its own disks and CD-ROM media, never made anew; the empty drive is still there, with nothing in it.
    assert {
        target: (device, None if source is None else source.get("file")) for target, (device, source) in disks.items()
    } == {
        "vda": ("disk", f"/srv/vms/{name}.qcow2"),
        "vdb": ("disk", f"/srv/vms/{name}-data.img"),
        "vdc": ("disk", None),  # scratch: a volume vmctl made
        f"{prefix}{letters[0]}": ("cdrom", None),
        f"{prefix}{letters[1]}": ("cdrom", f"/srv/vms/{name}-cidata.iso"),
    }


def test_a_drive_on_the_seeds_target_moves_over_when_the_guest_gets_cloud_init(
    cli: Cli, domains: Callable[[str], str], project: str, tmp_path: Path
) -> None:
    """vmctl's seed goes on sda; an adopted drive there takes the next free target when the spec gives
    the guest cloud-init: both are connected at the restart a new seed drive needs anyway."""
    from vmctl.cli.session import open_session
    from vmctl.plan.planner import make_plan

    name = f"{project}-web"
    domains(virt_install_xml(name, cdroms(name, "sata", "ab")))
    spec = tmp_path / "vmctl.yaml"
    assert cli("import", name, "-p", project, "-o", str(spec), "-c", TEST_DRIVER).code == 0
    assert cli("apply", "--yes", str(spec), "-c", TEST_DRIVER).code == 0
    spec.write_text(spec.read_text() + "    cloud_init: {user_data: {packages: [nginx]}}\n")

    session = open_session([str(spec)], None, lambda _: TEST_DRIVER)
    try:
        plan = make_plan(session.desired, session.read_live(), TEST_DRIVER)
    finally:
        session.backend.close()
    change = next(c for c in plan.changes if c.name == name)
    assert change.steps is not None
    assert dict(change.steps.targets) == {"vda": "vda", "vdb": "vdb", "sda": "sdc", "sdb": "sdb"}
    seeded = [f.effect.value for f in change.fields if f.path.startswith("cloud_init")]
    assert seeded and set(seeded) == {"config"}  # it is stopped: the new seed drive is in its config


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


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_every_examples_guests_import_as_vmctl_made_them(
    example: str, cli: Cli, domains: Callable[[str], str], project: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """vmctl's own domains, record taken out, read back as the spec would write them: nothing left over,
    the cloud-init seed a CD-ROM drive that keeps its volume."""
    backend = connect(TEST_DRIVER)
    desired = resolve(example_copy(example, tmp_path), project, backend, monkeypatch, tmp_path)
    host = backend.host_facts()
    backend.close()
    pool_paths = {p.name: p.path for p in desired.pools}
    for guest in desired.guests:
        root = ET.fromstring(domain_definition(guest, guest_record(guest, desired), host, pool_paths))
        name = domains(without(root, "metadata", "title"))
        result = cli("import", name, "-c", TEST_DRIVER)
        assert result.code == 0, result.err
        imported = yaml.safe_load(result.out)["guests"][name]
        assert {"cpus", "memory", "machine", "accel"} <= imported.keys()
        assert set(imported["disks"]) == {d.name for d in guest.disks} | ({"seed"} if guest.seed else set())
        if guest.seed:
            seed = {"cdrom": True, "volume": {"pool": guest.seed.pool, "name": guest.seed.volume}}
            assert imported["disks"]["seed"] == seed
            assert "  # disk seed: the cloud-init seed vmctl made for it before, now a CD-ROM drive" in result.out
        assert {n: v["mac"] for n, v in imported.get("nics", {}).items()} == {n.name: n.mac for n in guest.nics}
        assert "vmctl does not model" not in result.out


@pytest.mark.libvirtd
@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_every_examples_applied_guests_round_trip(
    example: str, cli: Cli, libvirtd: str, project: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The example applied (its guests defined, not booted: its kernels are stand-ins), vmctl's record
    taken out of its domains; then import, adopt, change, apply: after each apply the plan is empty."""
    import libvirt

    conn = libvirt.open(libvirtd)
    left_over: list[VolumeRef] = []
    try:
        desired = applied_example(example, libvirtd, project, tmp_path, monkeypatch)
        names = [g.name for g in desired.guests]
        left_over = strip_records(conn, names)
        spec = tmp_path / "imported.yaml"
        made = cli("import", *names, "-p", project, "-o", str(spec), "-c", libvirtd)
        assert made.code == 0, made.err  # no --force: nothing of vmctl's own domains is beyond the spec
        text = spec.read_text()
        for guest in desired.guests:
            if guest.seed:
                seed = {"cdrom": True, "volume": {"pool": guest.seed.pool, "name": guest.seed.volume}}
                assert yaml.safe_load(text)["guests"][guest.name]["disks"]["seed"] == seed
        before = {name: config_xml(conn, name) for name in names}

        adopted = cli("apply", "--yes", str(spec), "-c", libvirtd)
        assert adopted.code == 0, adopted.out + adopted.err
        assert adopted.out.count("adopted (its definition and power are as they were)") == len(names), adopted.out
        assert {name: config_xml(conn, name) for name in names} == before  # the record, nothing else
        settled = cli("plan", "--detailed-exitcode", str(spec), "-c", libvirtd)
        assert (settled.code, settled.out.strip()) == (0, "No changes. Live state matches the spec."), settled.out

        # What a user changes next: every guest's memory, and a disk for the first.
        edited = re.sub(r"(?m)^    memory: .*$", "    memory: 640MiB", text)
        spec.write_text(edited.replace("    disks:\n", "    disks:\n      scratch: {size: 64MiB}\n", 1))
        changed = cli("apply", "--yes", str(spec), "-c", libvirtd)
        assert changed.code == 0, changed.out + changed.err
        assert "+ disks.scratch" in changed.out and "~ memory" in changed.out, changed.out
        settled = cli("plan", "--detailed-exitcode", str(spec), "-c", libvirtd)
        assert (settled.code, settled.out.strip()) == (0, "No changes. Live state matches the spec."), settled.out
        for guest in desired.guests:
            # The seed is still in its drive, as it was: the guest boots with what it always had.
            media = [
                s.get("volume") for s in ET.fromstring(config_xml(conn, guest.name)).iterfind("devices/disk/source")
            ]
            assert guest.seed is None or guest.seed.volume in media, media
    finally:
        remove_project(libvirtd, project)
        for ref in left_over:
            with contextlib.suppress(libvirt.libvirtError):
                conn.storagePoolLookupByName(ref.pool).storageVolLookupByName(ref.name).delete(0)
        conn.close()


def strip_records(conn: Any, names: list[str]) -> list[VolumeRef]:
    """Take vmctl's record out of these domains, as if made by hand; the volumes they claimed."""
    import libvirt

    claims: list[VolumeRef] = []
    for name in names:
        dom = conn.lookupByName(name)
        record = read_domain(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)).record
        assert record is not None
        claims.extend(record.claims)
        dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, None, None, NAMESPACE, libvirt.VIR_DOMAIN_AFFECT_CONFIG)
    return claims


def config_xml(conn: Any, name: str) -> str:
    """The domain's persistent definition without its metadata."""
    import libvirt

    return without(ET.fromstring(conn.lookupByName(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)), "metadata")
