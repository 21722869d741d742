"""Four workspaces of one spec applied, and then destroyed, at once on one libvirtd: each converges."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from tests.tooling.private_libvirtd import PrivateLibvirtd

pytestmark = pytest.mark.libvirtd
WORKSPACES = ["w1", "w2", "w3", "w4"]


@pytest.fixture
def daemon() -> Iterator[PrivateLibvirtd]:
    private = PrivateLibvirtd()
    private.start()
    yield private
    private.remove()


def at_once(daemon: PrivateLibvirtd, tmp_path: Path, *args: str) -> list[tuple[int, str]]:
    env = {**os.environ, "NO_COLOR": "1", "VMCTL_CONNECT": daemon.uri, "VMCTL_CACHE": str(tmp_path / "cache")}
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "vmctl", "--workspace", workspace, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        for workspace in WORKSPACES
    ]
    return [(run.wait(timeout=300), run.communicate()[0]) for run in runs]


def test_four_workspaces_at_once(daemon: PrivateLibvirtd, tmp_path: Path, project: str) -> None:
    pool = daemon.pool_dir(project)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(tmp_path / "base.qcow2"), "1G"], check=True)
    spec = tmp_path / "vmctl.yaml"
    spec.write_text(
        f"version: 1\nproject: {project}\npools:\n  {project}pool: {{path: {pool}}}\n"
        "images:\n  base: {path: base.qcow2}\n"
        "guests:\n  web:\n    count: 3\n    state: stopped\n    memory: 256MiB\n"
        "    disks: {root: {image: base, size: 1GiB}}\n    nics: {lan: {user: {}}}\n"
        "    cloud_init: {user_data: {packages: [nginx]}}\n"
    )
    applied = at_once(daemon, tmp_path, "apply", "--yes", str(spec))
    assert [code for code, _ in applied] == [0] * 4, applied
    planned = at_once(daemon, tmp_path, "plan", "--detailed-exitcode", str(spec))
    assert [code for code, _ in planned] == [0] * 4, planned  # each converged
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
