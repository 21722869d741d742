"""A real Debian cloud-init guest driven through the vmctl CLI only, checked from inside the guest.

1. apply --wait: hostname, write_files, a user's SSH key, runcmd, network-config matched by MAC.
2. add a disk and a NIC, grow the root disk, raise memory, add a vCPU: all live, no reboot.
3. change user-data and apply --allow-restart: after the reboot the new user-data has run.
4. destroy: the running guest shuts down cleanly, and nothing of the project is left in libvirt or in
   the pool.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import libvirt
import pytest

from tests.tooling.images import GuestImage
from vmctl.hypervisor import Hypervisor

from ..conftest import SCRATCH, remove_project
from .conftest import Guest, applied, vmctl, write_spec

pytestmark = [pytest.mark.e2e, pytest.mark.libvirtd]

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2eVmctlEndToEndTestKeyOnlyForTests alice@e2e"
MAC1, MAC2 = "52:54:00:e2:e0:01", "52:54:00:e2:e0:02"


@dataclass
class Setup:
    project: str
    spec: Path
    pool_dir: Path
    image: GuestImage
    guest: Guest
    boot_id: str = ""

    def text(
        self,
        *,
        cpus: int = 1,
        memory: str = "768MiB",
        root: str = "4GiB",
        data: bool = False,
        second_nic: bool = False,
        greeting: str = "written by cloud-init",
        runcmd: str = "runcmd-ran",
    ) -> str:
        disks = f"      root: {{image: debian12, size: {root}}}\n"
        if data:
            disks += "      data: {size: 2GiB}\n"
        nics = f'      primary: {{user: {{}}, mac: "{MAC1}"}}\n'
        if second_nic:
            nics += f'      second: {{user: {{}}, mac: "{MAC2}"}}\n'
        return f"""\
version: 1
project: {self.project}
pools:
  {self.project}pool: {{path: {self.pool_dir}}}
images:
  debian12: {{path: {self.image.disk}}}
guests:
  e2e:
    cpus: {cpus}
    max_cpus: 2
    memory: {memory}
    max_memory: 1280MiB
    boot: {{kernel: {self.image.kernel}, initrd: {self.image.initrd}, cmdline: "{self.image.cmdline}"}}
    disks:
{disks}    nics:
{nics}    cloud_init:
      user_data:
        users:
          - {{name: alice, shell: /bin/bash, ssh_authorized_keys: ["{KEY}"]}}
        write_files:
          - {{path: /etc/vmctl-e2e.txt, content: "{greeting}\\n"}}
        runcmd:
          - [sh, -c, "echo {runcmd} > /var/tmp/runcmd.out"]
      network_config:
        version: 2
        ethernets:
          primary:
            match: {{macaddress: "{MAC1}"}}
            set-name: lan0
            dhcp4: true
    wait: {{agent: true, cloud_init: true, timeout: 6m}}
"""


@pytest.fixture(scope="module")
def setup(libvirtd: str, debian_image: GuestImage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    from vmctl.hypervisor import connect

    project = f"e2e{uuid.uuid4().hex[:8]}"
    pool_dir = SCRATCH / project
    backend = connect(libvirtd)
    state = Setup(project, tmp_path_factory.mktemp("e2e") / "vmctl.yaml", pool_dir, debian_image, Guest(backend, "e2e"))
    yield state
    remove_project(libvirtd, project)
    backend.close()


def test_1_apply_boots_a_configured_guest(setup: Setup) -> None:
    write_spec(setup.spec, setup.text())
    output = applied("--wait", str(setup.spec))
    assert "guest e2e: ready" in output
    guest = setup.guest
    assert guest.run("hostname").strip() == "e2e"
    assert guest.run("cat", "/etc/vmctl-e2e.txt") == "written by cloud-init\n"
    assert KEY in guest.run("cat", "/home/alice/.ssh/authorized_keys")
    assert guest.run("cat", "/var/tmp/runcmd.out").strip() == "runcmd-ran"
    link = guest.run("ip", "-o", "link", "show", "lan0")  # renamed by our network-config, matched by MAC
    assert MAC1 in link
    assert "status: done" in guest.run("cloud-init", "status")
    setup.boot_id = guest.run("cat", "/proc/sys/kernel/random/boot_id").strip()
    again = vmctl("plan", "--detailed-exitcode", str(setup.spec))
    assert again.returncode == 0, again.stdout + again.stderr


def test_2_live_changes_reach_the_running_guest_without_a_restart(setup: Setup) -> None:
    guest = setup.guest
    mem_before = int(guest.sh("awk '/MemTotal/ {print $2}' /proc/meminfo"))
    df_before = int(guest.sh("df --output=size -B1 / | tail -1"))
    write_spec(setup.spec, setup.text(cpus=2, memory="1GiB", root="5GiB", data=True, second_nic=True))
    plan = vmctl("plan", str(setup.spec)).stdout
    assert "needs a restart" not in plan and "will be replaced" not in plan, plan
    output = applied(str(setup.spec))
    assert "restarting" not in output and "needs a restart" not in output, output
    assert "done: updated live" in output
    assert guest.run("cat", "/proc/sys/kernel/random/boot_id").strip() == setup.boot_id  # no reboot
    guest.eventually("ls /dev/disk/by-id/", lambda out: "virtio-data" in out)
    guest.eventually("ip -o link", lambda out: MAC2 in out)
    guest.eventually("cat /sys/block/vda/size", lambda out: int(out) * 512 == 5 * 1024**3)
    guest.eventually("nproc", lambda out: out.strip() == "2")
    mem_after = guest.eventually(
        "awk '/MemTotal/ {print $2}' /proc/meminfo", lambda out: int(out) > mem_before + 200 * 1024, timeout=60
    )
    assert int(mem_after) > mem_before
    guest.run("resize2fs", "/dev/vda")
    df_after = int(guest.sh("df --output=size -B1 / | tail -1"))
    assert df_after > df_before + 800 * 1024**2
    assert guest.sh("lsblk -b -d -n -o NAME,SIZE").count("\n") >= 3  # vda, the data disk, the seed CD
    settled = vmctl("plan", "--detailed-exitcode", str(setup.spec))
    assert settled.returncode == 0, settled.stdout


def test_3_new_user_data_runs_after_apply_with_allow_restart(setup: Setup) -> None:
    guest = setup.guest
    write_spec(
        setup.spec,
        setup.text(
            cpus=2, memory="1GiB", root="5GiB", data=True, second_nic=True, greeting="edited", runcmd="second-run"
        ),
    )
    plan = vmctl("plan", str(setup.spec)).stdout
    assert "cloud_init.user_data" in plan and "next boot" in plan, plan
    output = applied("--allow-restart", str(setup.spec))
    assert "restarting" in output
    assert guest.run("cat", "/proc/sys/kernel/random/boot_id").strip() != setup.boot_id
    assert guest.run("cat", "/etc/vmctl-e2e.txt") == "edited\n"
    assert guest.run("cat", "/var/tmp/runcmd.out").strip() == "second-run"
    assert vmctl("plan", "--detailed-exitcode", str(setup.spec)).returncode == 0


def test_4_destroy_leaves_nothing_of_the_project(setup: Setup, backend: Hypervisor) -> None:
    result = vmctl("destroy", "--yes", "--images", "-f", str(setup.spec))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "shutting down" in result.stdout and "powering off" not in result.stdout  # the guest shut itself down
    conn = libvirt.open("qemu:///system")
    try:
        assert "e2e" not in [d.name() for d in conn.listAllDomains(0)]
        assert f"{setup.project}pool" not in [p.name() for p in conn.listAllStoragePools(0)]
    finally:
        conn.close()
    assert not setup.pool_dir.exists() or list(setup.pool_dir.iterdir()) == []
