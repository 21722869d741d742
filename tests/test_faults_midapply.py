"""Faults in the middle of an apply: libvirtd restarted, the pool's disk full, objects removed behind
vmctl's back, a saved plan outdated. Each ends in a clear error naming the object; the next apply
converges with nothing leaked.

These run against a libvirtd of the tests' own (tests/tooling/private_libvirtd.py), which they may
restart and whose pool may sit on a tiny tmpfs, without disturbing the shared qemu:///system daemon.
Guests use user-mode NICs: no network range is needed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from tests.tooling.pausing import let_go, wait_paused
from tests.tooling.private_libvirtd import PrivateLibvirtd

pytestmark = pytest.mark.libvirtd

GUEST = """\
  web:
    state: stopped
    memory: 256MiB
    disks: {root: {image: base, size: 1GiB}, data: {size: 1GiB}}
    nics: {lan: {user: {}}}
    cloud_init: {user_data: {packages: [nginx]}}
"""


@pytest.fixture(scope="module")
def daemon() -> Iterator[PrivateLibvirtd]:
    if not shutil_which("libvirtd"):
        pytest.skip("libvirtd is not installed")
    private = PrivateLibvirtd()
    private.start()
    yield private
    private.remove()


def shutil_which(name: str) -> str | None:
    import shutil

    return shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")


class Lab:
    """One project on the private daemon: its spec, its pool directory, and vmctl run against them."""

    def __init__(self, daemon: PrivateLibvirtd, tmp_path: Path, project: str) -> None:
        self.daemon = daemon
        self.tmp = tmp_path
        self.pool = daemon.pool_dir(project)
        self.spec = tmp_path / "vmctl.yaml"
        image = tmp_path / "images" / "base.qcow2"
        image.parent.mkdir()
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "1G"], check=True)
        # 12MiB of real data: an upload of several chunks, and something to fill a small disk with.
        write = ["qemu-io", "-f", "qcow2", "-c", "write -P 0xa5 0 12M", str(image)]
        subprocess.run(write, check=True, capture_output=True)
        self.write(GUEST, project)

    def write(self, guest: str, project: str | None = None) -> None:
        project = project or self.spec.read_text().split("project: ", 1)[1].split("\n", 1)[0]
        self.spec.write_text(
            f"version: 1\nproject: {project}\npools:\n  {project}pool: {{path: {self.pool}}}\n"
            f"images:\n  base: {{path: images/base.qcow2}}\nguests:\n{guest}"
        )

    def vmctl(self, *args: str, pause: str | None = None) -> subprocess.Popen[str]:
        env = {**os.environ, "NO_COLOR": "1", "VMCTL_CONNECT": self.daemon.uri, "VMCTL_CACHE": str(self.tmp / "c")}
        if pause:
            env.update(VMCTL_PAUSEPOINT=pause, VMCTL_PAUSE_DIR=str(self.tmp))
        command = [sys.executable, "-m", "vmctl", *args]
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)

    def run(self, *args: str) -> tuple[int, str]:
        proc = self.vmctl(*args)
        out, err = proc.communicate(timeout=300)
        return proc.returncode, out + err

    def paused(self, *args: str, at: str) -> subprocess.Popen[str]:
        """vmctl started and stopped at pause point `at`, until `let_go(lab.tmp, at)`."""
        proc = self.vmctl(*args, pause=at)
        wait_paused(proc, self.tmp, at)
        return proc

    def converges(self) -> None:
        code, output = self.run("apply", "--yes", str(self.spec))
        assert code == 0, output
        code, output = self.run("plan", "--detailed-exitcode", str(self.spec))
        assert code == 0, output
        assert self.domains() == ["web"]
        names = sorted(p.name for p in self.pool.iterdir() if p.name != "lost+found")
        seeds = [n for n in names if n.startswith("web-seed-")]
        images = [n for n in names if n.startswith("base-")]
        assert len(seeds) == 1 and len(images) == 1 and not images[0].endswith(".part"), names
        assert names == sorted(["web-root.qcow2", "web-data.qcow2", *seeds, *images])  # nothing leaked

    def domains(self) -> list[str]:
        conn = libvirt.open(self.daemon.uri)
        try:
            return sorted(d.name() for d in conn.listAllDomains(0))
        finally:
            conn.close()

    def remove(self, kind: str, name: str) -> None:
        """What someone does with virsh while vmctl is not looking."""
        conn = libvirt.open(self.daemon.uri)
        try:
            if kind == "domain":
                conn.lookupByName(name).undefine()
            else:
                pool = conn.storagePoolLookupByName(self.spec.read_text().split("pools:\n  ", 1)[1].split(":")[0])
                pool.refresh(0)
                pool.storageVolLookupByName(name).delete(0)
        finally:
            conn.close()

    def destroy(self) -> None:
        self.run("destroy", "--yes", "--images", "-f", str(self.spec))


@pytest.fixture
def lab(daemon: PrivateLibvirtd, tmp_path: Path, project: str) -> Iterator[Lab]:
    made = Lab(daemon, tmp_path, project)
    yield made
    made.destroy()


def test_libvirtd_restarted_mid_apply(lab: Lab) -> None:
    proc = lab.paused("apply", "--yes", str(lab.spec), at="create-disk-made")
    lab.daemon.restart()
    let_go(lab.tmp, "create-disk-made")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, out + err
    assert "guest web: " in err and "volume web-data.qcow2" in err, err  # the object it was making
    assert "Traceback" not in err and "internal error" not in err
    lab.converges()


@pytest.mark.skipif(os.getuid() != 0, reason="mounting a tmpfs needs root")
def test_the_pools_disk_fills_up_during_volume_creation(lab: Lab) -> None:
    # 16MiB: room for the 12MiB upload, not for the copy that gives it its final name.
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,uid=65534,gid=65534,mode=0755", "tmpfs", str(lab.pool)])
    try:
        code, output = lab.run("apply", "--yes", str(lab.spec))
        assert code == 1, output
        assert "image base-" in output and "No space left on device" in output, output
        assert lab.domains() == []  # no guest was started on what could not be made
        subprocess.run(["mount", "-o", "remount,size=64m", str(lab.pool)], check=True)
        lab.converges()
    finally:
        lab.destroy()
        subprocess.run(["umount", "-l", str(lab.pool)], check=False)


@pytest.mark.parametrize(("kind", "name"), [("domain", "web"), ("volume", "web-data.qcow2")])
def test_removed_behind_vmctls_back_between_plan_and_apply(lab: Lab, kind: str, name: str) -> None:
    assert lab.run("apply", "--yes", str(lab.spec))[0] == 0
    lab.write(GUEST.replace("256MiB", "384MiB").replace("data: {size: 1GiB}", "data: {size: 2GiB}"))
    proc = lab.paused("apply", "--yes", str(lab.spec), at="apply-planned")
    lab.remove(kind, name)
    let_go(lab.tmp, "apply-planned")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, out + err
    assert f"{name}" in err and "Traceback" not in err, err
    lab.converges()


def test_a_saved_plan_names_what_was_removed_since(lab: Lab) -> None:
    assert lab.run("apply", "--yes", str(lab.spec))[0] == 0
    lab.write(GUEST.replace("data: {size: 1GiB}", "data: {size: 2GiB}"))
    saved = lab.tmp / "plan.json"
    assert lab.run("plan", "-o", str(saved), str(lab.spec))[0] == 0
    lab.remove("volume", "web-data.qcow2")
    code, output = lab.run("apply", str(saved))
    assert code == 1
    assert "volume web-data.qcow2 in pool" in output and "removed on the hypervisor since the plan was made" in output
    assert "nothing was changed" in output
    lab.converges()


def test_a_saved_plan_applied_after_the_spec_changed_names_the_guest(lab: Lab) -> None:
    saved = lab.tmp / "plan.json"
    assert lab.run("plan", "-o", str(saved), str(lab.spec))[0] == 0
    lab.write(GUEST.replace("256MiB", "512MiB"))
    code, output = lab.run("apply", str(saved))
    assert code == 1, output
    assert "guest web: changed in the spec since the plan was made" in output, output
    assert lab.domains() == []  # refused before anything was made
    lab.converges()
