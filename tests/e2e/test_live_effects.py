"""Every row of the plan's effects table on a running guest, verified in the domain's live XML.

The tiny guest (the Debian kernel and an initramfs with qemu-ga) boots in seconds, honours hot-plug,
unplug, balloon and vCPU onlining like a full guest, and answers its agent. Restart rows are
applied with and without --allow-restart.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import libvirt
import pytest

from tests.tooling.images import GuestImage

from ..conftest import SCRATCH, remove_project
from .conftest import applied, vmctl, write_spec

pytestmark = [pytest.mark.e2e, pytest.mark.libvirtd]


@dataclass
class Tiny:
    project: str
    spec: Path
    pool_dir: Path
    image: GuestImage
    name: str

    def write(self, **overrides: str) -> None:
        fields = {
            "cpus": "1",
            "max_cpus": "2",
            "memory": "256MiB",
            "max_memory": "512MiB",
            "state": "running",
            "autostart": "false",
            "disks": "      scratch: {size: 64MiB}\n",
            "nics": "      a: {user: {}}\n",
            "greeting": "one",
        } | overrides
        write_spec(
            self.spec,
            f"""\
version: 1
project: {self.project}
pools:
  {self.project}pool: {{path: {self.pool_dir}}}
guests:
  {self.name}:
    cpus: {fields["cpus"]}
    max_cpus: {fields["max_cpus"]}
    memory: {fields["memory"]}
    max_memory: {fields["max_memory"]}
    state: {fields["state"]}
    autostart: {fields["autostart"]}
    boot: {{kernel: {self.image.kernel}, initrd: {self.image.initrd}, cmdline: "{self.image.cmdline}"}}
    disks:
{fields["disks"]}    nics:
{fields["nics"]}    cloud_init:
      user_data: {{greeting: {fields["greeting"]}}}
    wait: {{agent: true, cloud_init: false, timeout: 2m}}
""",
        )

    def domain(self, inactive: bool = False) -> ET.Element:
        conn = libvirt.open("qemu:///system")
        try:
            flags = libvirt.VIR_DOMAIN_XML_INACTIVE if inactive else 0
            return ET.fromstring(conn.lookupByName(self.name).XMLDesc(flags))
        finally:
            conn.close()

    def libvirt_domain(self) -> tuple[libvirt.virConnect, libvirt.virDomain]:
        conn = libvirt.open("qemu:///system")
        return conn, conn.lookupByName(self.name)


def aliases(root: ET.Element, tag: str) -> set[str]:
    return {a.get("name", "") for a in root.iterfind(f"devices/{tag}/alias")}


@pytest.fixture(scope="module")
def tiny(libvirtd: str, tiny_image: GuestImage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tiny]:
    project = f"live{uuid.uuid4().hex[:8]}"
    state = Tiny(project, tmp_path_factory.mktemp("live") / "vmctl.yaml", SCRATCH / project, tiny_image, f"{project}-g")
    state.write()
    applied("--wait", str(state.spec))
    yield state
    remove_project(libvirtd, project)


def settled(tiny: Tiny) -> None:
    plan = vmctl("plan", "--detailed-exitcode", str(tiny.spec))
    assert plan.returncode == 0, plan.stdout + plan.stderr


def test_disk_and_nic_hot_plug_and_unplug(tiny: Tiny) -> None:
    tiny.write(
        disks="      scratch: {size: 64MiB}\n      extra: {size: 32MiB, bus: scsi}\n",
        nics="      a: {user: {}}\n      b: {user: {}}\n",
    )
    out = applied(str(tiny.spec))
    assert "hot-plugging disk extra" in out and "hot-plugging NIC b" in out
    live = tiny.domain()
    assert {"ua-disk-scratch", "ua-disk-extra"} <= aliases(live, "disk")
    assert aliases(live, "interface") == {"ua-nic-a", "ua-nic-b"}
    settled(tiny)
    tiny.write(disks="      extra: {size: 32MiB, bus: scsi}\n", nics="      b: {user: {}}\n")
    out = applied(str(tiny.spec))
    assert "hot-unplugging disk scratch" in out and "hot-unplugging NIC a" in out
    live = tiny.domain()
    assert "ua-disk-scratch" not in aliases(live, "disk") and aliases(live, "interface") == {"ua-nic-b"}
    assert not (tiny.pool_dir / f"{tiny.name}-scratch.qcow2").exists()  # its volume went with it
    settled(tiny)


def test_memory_balloon_and_vcpu_hot_plug(tiny: Tiny) -> None:
    tiny.write(disks="      extra: {size: 32MiB, bus: scsi}\n", nics="      b: {user: {}}\n", memory="384MiB", cpus="2")
    out = applied(str(tiny.spec))
    assert "ballooning memory" in out and "hot-plugging vCPUs up to 2" in out
    live = tiny.domain()
    assert int(live.findtext("currentMemory", "0")) == 384 * 1024
    vcpu = live.find("vcpu")
    assert vcpu is not None and vcpu.get("current", vcpu.text) == "2"  # libvirt drops current= when it equals max
    conn, dom = tiny.libvirt_domain()
    try:
        online = dom.vcpusFlags(libvirt.VIR_DOMAIN_VCPU_GUEST)  # counted by the guest agent
    finally:
        conn.close()
    assert online == 2
    settled(tiny)


def test_disk_grows_live(tiny: Tiny) -> None:
    tiny.write(disks="      extra: {size: 48MiB, bus: scsi}\n", nics="      b: {user: {}}\n", memory="384MiB", cpus="2")
    out = applied(str(tiny.spec))
    assert "growing disk extra" in out
    disk = next(d for d in tiny.domain().iterfind("devices/disk") if d.find("alias[@name='ua-disk-extra']") is not None)
    conn, dom = tiny.libvirt_domain()
    try:
        capacity = dom.blockInfo(disk.find("target").get("dev"))[0]  # type: ignore[union-attr]
    finally:
        conn.close()
    assert capacity == 48 * 1024**2
    settled(tiny)


# The spec as the tests above leave it, with the new user-data the next test brings: the tests after it
# start from here (they share one guest, each changing only what it is about).
AFTER_SEED_SWAP = {
    "disks": "      extra: {size: 48MiB, bus: scsi}\n",
    "nics": "      b: {user: {}}\n",
    "memory": "384MiB",
    "cpus": "2",
    "greeting": "two",
}


def test_cloud_init_seed_is_swapped_live(tiny: Tiny) -> None:
    before = tiny.domain().find("devices/disk[@device='cdrom']/source").get("volume")  # type: ignore[union-attr]
    tiny.write(**AFTER_SEED_SWAP)
    plan = vmctl("plan", str(tiny.spec)).stdout
    assert "cloud_init.user_data.greeting" in plan and "next boot" in plan
    out = applied(str(tiny.spec))
    assert "swapping in the new cloud-init seed" in out
    after = tiny.domain().find("devices/disk[@device='cdrom']/source").get("volume")  # type: ignore[union-attr]
    assert after != before and after.startswith(f"{tiny.name}-seed-")  # type: ignore[union-attr]
    assert not (tiny.pool_dir / str(before)).exists()
    settled(tiny)


def test_restart_rows_wait_for_allow_restart(tiny: Tiny) -> None:
    tiny.write(**AFTER_SEED_SWAP, max_memory="768MiB")
    out = applied(str(tiny.spec))
    assert "needs a restart" in out
    assert int(tiny.domain().findtext("memory", "0")) == 512 * 1024  # the running guest: unchanged
    assert int(tiny.domain(inactive=True).findtext("memory", "0")) == 768 * 1024  # its config: written
    pending = vmctl("plan", "--detailed-exitcode", str(tiny.spec))
    assert pending.returncode == 2 and "already written to the persistent config" in pending.stdout
    out = applied("--allow-restart", str(tiny.spec))
    assert "restarting" in out
    assert int(tiny.domain().findtext("memory", "0")) == 768 * 1024
    settled(tiny)


def test_state_and_autostart(tiny: Tiny) -> None:
    base = {**AFTER_SEED_SWAP, "max_memory": "768MiB"}
    tiny.write(**base, state="stopped", autostart="true")
    applied(str(tiny.spec))
    conn, dom = tiny.libvirt_domain()
    try:
        assert not dom.isActive() and dom.autostart() == 1
    finally:
        conn.close()
    settled(tiny)
    tiny.write(**base, state="running", autostart="false")
    applied("--wait", str(tiny.spec))
    conn, dom = tiny.libvirt_domain()
    try:
        assert dom.isActive() and dom.autostart() == 0
    finally:
        conn.close()
    settled(tiny)


def test_a_wait_that_times_out_names_the_stage_and_shows_the_console(tiny: Tiny, tmp_path: Path) -> None:
    # A guest that never gets an agent: the kernel has no initrd to start qemu-ga from.
    spec = tmp_path / "stuck.yaml"
    spec.write_text(
        f"version: 1\nproject: {tiny.project}\npools:\n  {tiny.project}pool: {{path: {tiny.pool_dir}}}\n"
        f"guests:\n  {tiny.project}-stuck:\n    memory: 128MiB\n"
        f"    boot: {{kernel: {tiny.image.kernel}, cmdline: 'console=ttyS0 panic=0'}}\n"
        "    wait: {agent: true, timeout: 20s}\n"
    )
    result = vmctl("apply", "--yes", "--wait", str(spec))
    assert result.returncode == 1
    assert "timed out waiting for the guest agent to answer" in result.stderr
    assert "last lines of its serial console" in result.stderr
    assert "Kernel panic" in result.stderr or "VFS" in result.stderr or "Linux version" in result.stderr
