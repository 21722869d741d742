"""apply, plan, destroy and status through the CLI against a real libvirtd (guests defined, not booted).

Booting guests is tested in tests/e2e; here every guest is `state: stopped`, so each test takes seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from xml.etree import ElementTree

import libvirt
import pytest

from vmctl.apply.lock import apply_lock
from vmctl.hypervisor import connect

from .conftest import CliResult

pytestmark = [pytest.mark.libvirtd, pytest.mark.usefixtures("cleanup")]

Cli = Callable[..., CliResult]


def make_image(path: Path, size: str = "1G") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), size], check=True)
    return path


def spec_text(project: str, pool_dir: Path, guests: str, extra: str = "") -> str:
    return f"""\
version: 1
project: {project}
pools:
  {project}pool: {{path: {pool_dir}}}
images:
  base: {{path: images/base.qcow2}}
networks:
  net: {{mode: isolated, ipv4: 198.51.100.225/27}}
{extra}
guests:
{guests}
"""


WEB = """\
  web:
    state: stopped
    cpus: 1
    max_cpus: 2
    memory: 256MiB
    max_memory: 512MiB
    disks:
      root: {image: base, size: 2GiB}
      data: {size: 1GiB}
    nics:
      lan: {network: net}
    cloud_init:
      user_data: {packages: [nginx], password: hunter2}
"""


@pytest.fixture
def lab(tmp_path: Path, project: str, scratch: Path) -> Callable[[str], Path]:
    make_image(tmp_path / "images" / "base.qcow2")

    def write_spec(guests: str = WEB, extra: str = "") -> Path:
        path = tmp_path / "vmctl.yaml"
        path.write_text(spec_text(project, scratch, guests, extra))
        return path

    return write_spec


def conn() -> libvirt.virConnect:
    return libvirt.open("qemu:///system")


def project_domains(project: str) -> list[str]:
    from vmctl.libvirtxml.readback import read_domain

    c = conn()
    try:
        names = []
        for dom in c.listAllDomains(0):
            try:
                view = read_domain(dom.XMLDesc(0))
            except libvirt.libvirtError:
                continue  # another process removed it while we listed
            if view.record and view.record.owner.project == project:
                names.append(dom.name())
        return sorted(names)
    finally:
        c.close()


def pool_volumes(pool_dir: Path) -> list[str]:
    return sorted(p.name for p in pool_dir.iterdir()) if pool_dir.exists() else []


def test_apply_creates_everything_and_a_second_apply_changes_nothing(
    cli: Cli, lab: Callable[..., Path], project: str, scratch: Path
) -> None:
    spec = lab()
    first = cli("apply", "--yes", str(spec))
    assert first.code == 0, first.out + first.err
    assert "Apply complete" in first.out
    assert project_domains(project) == ["web"]
    volumes = pool_volumes(scratch)
    assert "web-root.qcow2" in volumes and "web-data.qcow2" in volumes
    assert any(v.startswith("web-seed-") for v in volumes)
    assert any(v.startswith("base-") for v in volumes)  # the image, uploaded once
    again = cli("apply", "--yes", str(spec))
    assert again.code == 0 and "No changes. Live state matches the spec." in again.out, again.out + again.err
    plan = cli("plan", "--detailed-exitcode", str(spec))
    assert plan.code == 0, plan.out + plan.err


def test_plan_reports_drift_and_detailed_exit_code(cli: Cli, lab: Callable[..., Path], project: str) -> None:
    spec = lab()
    assert cli("apply", "--yes", str(spec)).code == 0
    c = conn()
    try:
        c.lookupByName("web").setMemoryFlags(384 * 1024, libvirt.VIR_DOMAIN_AFFECT_CONFIG)  # behind vmctl's back
    finally:
        c.close()
    plan = cli("plan", "--detailed-exitcode", str(spec))
    assert plan.code == 2, plan.out + plan.err
    assert "memory  384MiB → 256MiB" in plan.out
    fixed = cli("apply", "--yes", str(spec))
    assert fixed.code == 0, fixed.out + fixed.err
    assert cli("plan", "--detailed-exitcode", str(spec)).code == 0


def test_a_plan_after_a_plan_sees_a_disk_resized_behind_vmctls_back(
    cli: Cli, lab: Callable[..., Path], project: str
) -> None:
    """What the domains read as is remembered between runs, but never over a volume's new size."""
    spec = lab()
    assert cli("apply", "--yes", str(spec)).code == 0
    assert cli("plan", "--detailed-exitcode", str(spec)).code == 0  # read, and remembered
    c = conn()
    try:
        c.storagePoolLookupByName(f"{project}pool").storageVolLookupByName("web-root.qcow2").resize(3 * 1024**3)
    finally:
        c.close()
    plan = cli("plan", "--detailed-exitcode", str(spec))
    assert plan.code != 0 and "root" in plan.out + plan.err, plan.out + plan.err
    assert "3GiB" in plan.out + plan.err, plan.out + plan.err


def test_plan_json_is_versioned_and_masks_secrets(cli: Cli, lab: Callable[..., Path]) -> None:
    result = cli("plan", "--json", str(lab()))
    assert result.code == 0, result.err
    document = json.loads(result.out)
    assert document["format_version"] == "1"
    assert document["summary"]["create"] >= 1
    assert "hunter2" not in result.out
    guest = next(c for c in document["changes"] if c["kind"] == "guest")
    password = next(f for f in guest["fields"] if f["path"] == "cloud_init.user_data.password")
    assert password["after"] == "(sensitive)" and password["sensitive"] is True


def test_secrets_never_reach_libvirts_xml(cli: Cli, lab: Callable[..., Path]) -> None:
    assert cli("apply", "--yes", str(lab())).code == 0
    c = conn()
    try:
        assert "hunter2" not in c.lookupByName("web").XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    finally:
        c.close()


def test_stopped_guest_changes_are_written_to_its_config(cli: Cli, lab: Callable[..., Path], project: str) -> None:
    assert cli("apply", "--yes", str(lab())).code == 0
    changed = (
        WEB.replace("max_memory: 512MiB", "max_memory: 1GiB")
        .replace("data: {size: 1GiB}", "data: {size: 2GiB}")
        .replace("packages: [nginx]", "packages: [nginx, curl]")
    )
    spec = lab(changed + "    autostart: true\n")
    plan = cli("plan", str(spec))
    assert "max_memory" in plan.out and "disks.data.size" in plan.out, plan.out
    applied = cli("apply", "--yes", str(spec))
    assert applied.code == 0, applied.out + applied.err
    c = conn()
    try:
        dom = c.lookupByName("web")
        assert dom.maxMemory() == 1024 * 1024
        assert dom.autostart() == 1
        pool = c.storagePoolLookupByName(f"{project}pool")
        assert pool.storageVolLookupByName("web-data.qcow2").info()[1] == 2 * 1024**3
        seeds = [v.name() for v in pool.listAllVolumes(0) if v.name().startswith("web-seed-")]
        assert len(seeds) == 1  # the old seed is deleted, not left behind
    finally:
        c.close()
    assert cli("plan", "--detailed-exitcode", str(spec)).code == 0


def test_destroy_removes_everything_of_the_project_and_nothing_else(
    cli: Cli, lab: Callable[..., Path], project: str, scratch: Path
) -> None:
    spec = lab()
    assert cli("apply", "--yes", str(spec)).code == 0
    c = conn()
    try:
        bystander = c.defineXML(
            f"<domain type='qemu'><name>{project}-bystander</name><memory>65536</memory><os><type>hvm</type></os></domain>"
        )
        result = cli("destroy", "--yes", "--images", "-f", str(spec))
        assert result.code == 0, result.out + result.err
        assert project_domains(project) == []
        assert pool_volumes(scratch) == []
        assert not [n for n in c.listAllNetworks(0) if n.name().startswith(f"{project}-")]
        assert not [p for p in c.listAllStoragePools(0) if p.name() == f"{project}pool"]
        assert c.lookupByName(f"{project}-bystander").name() == f"{project}-bystander"
    finally:
        bystander.undefine()
        c.close()


def test_foreign_domain_with_a_guests_name_is_never_touched(cli: Cli, lab: Callable[..., Path], project: str) -> None:
    name = f"{project}-web"
    guests = WEB.replace("  web:", f"  {name}:")
    spec = lab(guests)
    c = conn()
    foreign = c.defineXML(
        f"<domain type='qemu'><name>{name}</name><memory>65536</memory><os><type>hvm</type></os></domain>"
    )
    try:
        before = foreign.XMLDesc(0)
        result = cli("apply", "--yes", str(spec))
        assert result.code == 1
        assert "exists and is not managed by vmctl" in result.err
        destroyed = cli("destroy", "--yes", "-f", str(spec))
        assert destroyed.code == 0 and "Nothing to destroy" in destroyed.out
        assert c.lookupByName(name).XMLDesc(0) == before
    finally:
        foreign.undefine()
        c.close()


def test_bad_spec_leaves_the_hypervisor_untouched(
    cli: Cli, lab: Callable[..., Path], project: str, scratch: Path
) -> None:
    spec = lab(WEB.replace("memory: 256MiB", "memory: 256"))
    result = cli("apply", "--yes", str(spec))
    assert result.code == 1
    assert "Traceback" not in result.err
    assert "vmctl.yaml:" in result.err and "guests.web.memory" in result.err
    assert project_domains(project) == [] and pool_volumes(scratch) == []


def test_apply_without_a_terminal_or_yes_refuses(cli: Cli, lab: Callable[..., Path], project: str) -> None:
    result = cli("apply", str(lab()))
    assert result.code == 1
    assert "--yes" in result.err
    assert project_domains(project) == []


def test_a_fixed_address_added_then_removed_is_reserved_and_released_on_the_running_network(
    cli: Cli, lab: Callable[..., Path], project: str
) -> None:
    assert cli("apply", "--yes", str(lab())).code == 0
    fixed = lab(WEB.replace("lan: {network: net}", "lan: {network: net, ipv4: 198.51.100.230}"))
    added = cli("apply", "--yes", str(fixed))
    assert added.code == 0, added.out + added.err
    assert reservations(project) == [[("198.51.100.230", "web")], [("198.51.100.230", "web")]]
    assert cli("plan", "--detailed-exitcode", str(fixed)).code == 0
    removed = cli("apply", "--yes", str(lab()))
    assert removed.code == 0, removed.out + removed.err
    assert reservations(project) == [[], []]
    assert cli("plan", "--detailed-exitcode", str(lab())).code == 0


def reservations(project: str) -> list[list[tuple[str, str]]]:
    """The project network's DHCP reservations (address, name), running and persistent."""
    c = conn()
    try:
        net = c.networkLookupByName(f"{project}-net")
        found = []
        for flags in (0, libvirt.VIR_NETWORK_XML_INACTIVE):
            root = ElementTree.fromstring(net.XMLDesc(flags))
            found.append([(h.get("ip", ""), h.get("name", "")) for h in root.iterfind("ip/dhcp/host")])
        return found
    finally:
        c.close()


def test_saved_plan_applies_and_a_stale_one_is_refused(
    cli: Cli, lab: Callable[..., Path], project: str, tmp_path: Path
) -> None:
    spec = lab()
    saved = tmp_path / "plan.json"
    assert cli("plan", "-o", str(saved), str(spec)).code == 0
    applied = cli("apply", str(saved))
    assert applied.code == 0, applied.out + applied.err
    assert project_domains(project) == ["web"]
    stale_plan = tmp_path / "stale.json"
    assert cli("plan", "-o", str(stale_plan), str(spec)).code == 0
    lab(WEB.replace("cpus: 1", "cpus: 2"))  # the spec changes after the plan was saved
    refused = cli("apply", str(stale_plan))
    assert refused.code == 1 and "stale" in refused.err, refused.err
    c = conn()
    try:
        assert c.lookupByName("web").vcpusFlags(libvirt.VIR_DOMAIN_AFFECT_CONFIG) == 1
    finally:
        c.close()


def test_a_second_apply_waits_for_the_lock(cli: Cli, lab: Callable[..., Path], project: str) -> None:
    spec = lab()
    hypervisor = connect("qemu:///system")
    with apply_lock([("qemu:///system", hypervisor)], project, None, timeout=5):
        blocked = cli("apply", "--yes", "--lock-timeout", "1s", str(spec))
    assert blocked.code == 1 and "another vmctl" in blocked.err, blocked.err
    assert f"pid {os.getpid()} on " in blocked.err  # who holds it: the process, its machine, since when
    assert project_domains(project) == []

    def hold() -> None:
        with apply_lock([("qemu:///system", hypervisor)], project, None, timeout=5):
            time.sleep(1.5)

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.2)
    waited = cli("apply", "--yes", "--lock-timeout", "30s", str(spec))
    holder.join()
    assert waited.code == 0, waited.err
    assert project_domains(project) == ["web"]


def test_no_lock_domain_outlives_its_lock(project: str) -> None:
    """Once a lock has been given back, its domain is no longer listed: vmctl destroys it. (Closing the
    lock's connection gives the lock back too, but libvirtd answers the close before it has destroyed
    the domain: now and then, the domain was still listed.)"""
    from vmctl.libvirtxml.lock import lock_name
    from vmctl.model import Owner

    name = lock_name(Owner(project, None))
    watcher = libvirt.open("qemu:///system")
    try:
        for _ in range(10):
            hypervisor = connect("qemu:///system")
            with apply_lock([("qemu:///system", hypervisor)], project, None, timeout=5):
                assert name in [d.name() for d in watcher.listAllDomains(0)]
            hypervisor.close()
            assert name not in [d.name() for d in watcher.listAllDomains(0)]
    finally:
        watcher.close()


def test_no_lock_domain_is_listed_once_vmctl_has_exited(lab: Callable[..., Path], project: str) -> None:
    """What a script sees: the moment `vmctl` has exited, none of its lock domains is listed. (When
    vmctl left the lock to its connection's close, libvirtd dropped the domain a moment after the
    process had gone: CI's run listed one.)"""
    from vmctl.libvirtxml.lock import lock_name
    from vmctl.model import Owner

    spec = lab()
    name = lock_name(Owner(project, None))
    env = {**os.environ, "NO_COLOR": "1"}
    watcher = libvirt.open("qemu:///system")
    try:
        for _ in range(5):
            command = [sys.executable, "-m", "vmctl", "apply", "--yes", str(spec)]
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            assert done.returncode == 0, done.stderr
            assert name not in [d.name() for d in watcher.listAllDomains(0)]
    finally:
        watcher.close()


def test_the_lock_holds_on_a_host_without_the_lock_domains_architecture(
    project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lock domain is a 32-bit x86 guest where libvirtd offers one (the fastest to start); a host
    that has no emulator for it gets a lock domain of its default architecture, and the lock holds."""
    from vmctl.apply.lock import me
    from vmctl.hypervisor.libvirt import locking
    from vmctl.libvirtxml.lock import lock_name
    from vmctl.model import Owner

    owner = Owner(project, None)
    monkeypatch.setattr(locking, "LOCK_ARCH", "sparc")  # no emulator for it on this host
    holder, other = connect("qemu:///system"), connect("qemu:///system")  # as two machines would
    try:
        with apply_lock([("qemu:///system", holder)], project, None, timeout=5):
            assert other.try_lock(owner, me()) is not None  # held: the other waits
            c = libvirt.open("qemu:///system")
            arch = c.lookupByName(lock_name(owner)).XMLDesc(0).split("<type arch='", 1)[1].split("'", 1)[0]
            c.close()
            assert arch == "x86_64"
        assert other.try_lock(owner, me()) is None  # given back: its domain is gone already
        other.lock_ready(owner)
        other.unlock(owner)
    finally:
        holder.close()
        other.close()


def test_status_reports_state_and_drift(cli: Cli, lab: Callable[..., Path]) -> None:
    spec = lab()
    assert cli("apply", "--yes", str(spec)).code == 0
    status = cli("status", "--json", str(spec))
    assert status.code == 0, status.err
    rows = json.loads(status.out)["guests"]
    assert rows == [
        {"host": "qemu:///system", "name": "web", "state": "stopped", "drift": False, "ips": [], "ready": False}
    ]
    text = cli("status", str(lab(WEB.replace("cpus: 1", "cpus: 2"))))
    assert "web" in text.out and "yes (update)" in text.out, text.out


def test_destroy_images_keeps_an_image_another_project_still_uses(
    cli: Cli, lab: Callable[..., Path], project: str, scratch: Path, tmp_path: Path
) -> None:
    from .conftest import remove_project

    mine = lab()
    other = tmp_path / "other.yaml"
    # Another project's guest on the same base image, in the same pool (which that project does not own).
    other.write_text(
        f"version: 1\nproject: {project}b\npools:\n  {project}pool: {{path: {scratch}}}\n"
        f"images:\n  base: {{path: {tmp_path / 'images' / 'base.qcow2'}}}\n"
        "guests:\n  webb:\n    state: stopped\n    memory: 256MiB\n    disks:\n      root: {image: base}\n"
    )
    try:
        assert cli("apply", "--yes", str(mine)).code == 0
        result = cli("apply", "--yes", str(other))
        assert result.code == 0, result.out + result.err
        image = next(p.name for p in scratch.iterdir() if p.name.startswith("base-"))
        first = cli("destroy", "--yes", "--images", "-f", str(mine))
        assert first.code == 0, first.out + first.err
        assert "kept: still used by volume webb-root.qcow2" in first.out
        assert (scratch / image).exists()
        assert cli("plan", "--detailed-exitcode", str(other)).code == 0  # the other project is untouched
        last = cli("destroy", "--yes", "--images", "-f", str(other))
        assert last.code == 0, last.out + last.err
        assert not (scratch / image).exists()
    finally:
        remove_project("qemu:///system", f"{project}b")


def test_uefi_guest_gets_firmware_and_its_nvram_goes_with_it(cli: Cli, lab: Callable[..., Path]) -> None:
    import xml.etree.ElementTree as ET

    spec = lab(WEB.replace("    cpus: 1\n", "    cpus: 1\n    firmware: uefi\n"))
    assert cli("apply", "--yes", str(spec)).code == 0
    c = conn()
    try:
        dom = c.lookupByName("web")
        assert ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)).find("os").get("firmware") == "efi"  # type: ignore[union-attr]
        dom.create()  # firmware auto-selection happens at start, and makes the NVRAM file
        nvram = Path(ET.fromstring(dom.XMLDesc(0)).findtext("os/nvram") or "")
        assert nvram.name and nvram.exists()
    finally:
        c.close()
    destroyed = cli("destroy", "--yes", "--shutdown-timeout", "0s", "-f", str(spec))
    assert destroyed.code == 0, destroyed.out + destroyed.err
    assert not nvram.exists()
