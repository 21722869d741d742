"""Workspaces of one spec share its pools and images on one libvirtd. Four applied, and then destroyed,
at once each converge; one's `destroy --images` never deletes an image another's apply is building a disk
on; two making the shared pool at once both succeed."""

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
WORKSPACES = ["w1", "w2", "w3", "w4"]


@pytest.fixture
def daemon() -> Iterator[PrivateLibvirtd]:
    private = PrivateLibvirtd()
    private.start()
    yield private
    private.remove()


def vmctl(
    daemon: PrivateLibvirtd, tmp_path: Path, workspace: str, *args: str, pause: str | None = None
) -> subprocess.Popen[str]:
    env = {**os.environ, "NO_COLOR": "1", "VMCTL_CONNECT": daemon.uri, "VMCTL_CACHE": str(tmp_path / "cache")}
    if pause:
        env.update(VMCTL_PAUSEPOINT=pause, VMCTL_PAUSE_DIR=str(tmp_path))
    command = [sys.executable, "-m", "vmctl", "--workspace", workspace, *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def finished(run: subprocess.Popen[str]) -> tuple[int, str]:
    return run.wait(timeout=300), run.communicate()[0]


def at_once(daemon: PrivateLibvirtd, tmp_path: Path, *args: str) -> list[tuple[int, str]]:
    runs = [vmctl(daemon, tmp_path, workspace, *args) for workspace in WORKSPACES]
    return [finished(run) for run in runs]


def paused(daemon: PrivateLibvirtd, tmp_path: Path, workspace: str, *args: str, at: str) -> subprocess.Popen[str]:
    """vmctl started and stopped at pause point `at`, until `let_go(tmp_path, at)`."""
    run = vmctl(daemon, tmp_path, workspace, *args, pause=at)
    wait_paused(run, tmp_path, at)
    return run


def still_running(run: subprocess.Popen[str], seconds: float) -> bool:
    try:
        run.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        return True
    return False


def write_spec(daemon: PrivateLibvirtd, tmp_path: Path, project: str, count: int, pool: Path | None = None) -> Path:
    pool = pool or daemon.pool_dir(project)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(tmp_path / "base.qcow2"), "1G"], check=True)
    spec = tmp_path / "vmctl.yaml"
    spec.write_text(
        f"version: 1\nproject: {project}\npools:\n  {project}pool: {{path: {pool}}}\n"
        "images:\n  base: {path: base.qcow2}\n"
        f"guests:\n  web:\n    count: {count}\n    state: stopped\n    memory: 256MiB\n"
        "    disks: {root: {image: base, size: 1GiB}}\n    nics: {lan: {user: {}}}\n"
        "    cloud_init: {user_data: {packages: [nginx]}}\n"
    )
    return spec


def test_four_workspaces_at_once(daemon: PrivateLibvirtd, tmp_path: Path, project: str) -> None:
    pool = daemon.pool_dir(project)
    spec = write_spec(daemon, tmp_path, project, count=3)
    applied = at_once(daemon, tmp_path, "apply", "--yes", str(spec))
    assert [code for code, _ in applied] == [0] * 4, "\n".join(out for code, out in applied if code)
    planned = at_once(daemon, tmp_path, "plan", "--detailed-exitcode", str(spec))
    assert [code for code, _ in planned] == [0] * 4, "\n".join(out for code, out in planned if code)  # each converged
    conn = libvirt.open(daemon.uri)
    try:
        names = sorted(d.name() for d in conn.listAllDomains(0))
        assert names == sorted(f"{w}-web-{i}" for w in WORKSPACES for i in (1, 2, 3))
        destroyed = at_once(daemon, tmp_path, "destroy", "--yes", "--images", "-f", str(spec))
        assert [code for code, _ in destroyed] == [0] * 4, "\n".join(out for code, out in destroyed if code)
        assert conn.listAllDomains(0) == []
        left = [p.name for p in pool.iterdir()] if pool.exists() else []
        # The last workspace out takes the shared image and the pool; an earlier one keeps what others use.
        assert left == [], left
    finally:
        conn.close()


def test_destroy_keeps_an_image_another_workspace_is_building_a_disk_on(
    daemon: PrivateLibvirtd, tmp_path: Path, project: str
) -> None:
    spec = write_spec(daemon, tmp_path, project, count=1)
    code, output = finished(vmctl(daemon, tmp_path, "w2", "apply", "--yes", str(spec)))
    assert code == 0, output
    # w1's apply stops just before it makes its disk on the image w2 uses; w2 then goes, with --images.
    building = paused(daemon, tmp_path, "w1", "apply", "--yes", str(spec), at="disk-on-image")
    destroying = vmctl(daemon, tmp_path, "w2", "destroy", "--yes", "--images", "-f", str(spec))
    assert still_running(destroying, 3), "destroy deleted the image while a disk was being made on it"
    let_go(tmp_path, "disk-on-image")
    built, destroyed = finished(building), finished(destroying)
    assert built[0] == 0, built[1]
    assert destroyed[0] == 0, destroyed[1]
    assert "kept: still used by volume w1-web-root.qcow2" in destroyed[1], destroyed[1]
    code, output = finished(vmctl(daemon, tmp_path, "w1", "plan", "--detailed-exitcode", str(spec)))
    assert code == 0, output  # w1's guest is whole: its disk's image is there


def test_two_workspaces_make_the_shared_pool_at_once(daemon: PrivateLibvirtd, tmp_path: Path, project: str) -> None:
    # A directory the pool's build makes: a pool started before it is built cannot start.
    spec = write_spec(daemon, tmp_path, project, count=1, pool=daemon.pool_dir(project) / "made-by-vmctl")
    first = paused(daemon, tmp_path, "w1", "apply", "--yes", str(spec), at="pool-defined")
    second = vmctl(daemon, tmp_path, "w2", "apply", "--yes", str(spec))
    still_running(second, 3)  # time to trip over a pool defined but not yet built and started
    let_go(tmp_path, "pool-defined")
    made, joined = finished(first), finished(second)
    assert made[0] == 0, made[1]
    assert joined[0] == 0, joined[1]
    conn = libvirt.open(daemon.uri)
    try:
        assert sorted(d.name() for d in conn.listAllDomains(0)) == ["w1-web", "w2-web"]
        assert conn.storagePoolLookupByName(f"{project}pool").isActive()
    finally:
        conn.close()
