"""Fault tests: apply killed (as by kill -9) at several points, then re-run: converged, nothing leaked.

The kill comes from a failpoint (VMCTL_FAILPOINT), so each run dies exactly where the test says.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import libvirt
import pytest

from .test_libvirtd_apply import WEB, project_domains, spec_text

pytestmark = [pytest.mark.libvirtd, pytest.mark.usefixtures("cleanup")]
KILLED = 137


def vmctl(*args: str, failpoint: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("VMCTL_FAILPOINT", None)
    if failpoint:
        env["VMCTL_FAILPOINT"] = failpoint
    return subprocess.run([sys.executable, "-m", "vmctl", *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture
def spec(tmp_path: Path, project: str, scratch: Path) -> Path:
    image = tmp_path / "images" / "base.qcow2"
    image.parent.mkdir()
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "1G"], check=True)
    # Some real data, so the upload takes several chunks and can be killed midway.
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0xa5 0 12M", str(image)], check=True, capture_output=True)
    path = tmp_path / "vmctl.yaml"
    path.write_text(spec_text(project, scratch, WEB))
    return path


def volumes(pool_dir: Path) -> list[str]:
    return sorted(p.name for p in pool_dir.iterdir())


def expected_volumes(pool_dir: Path) -> list[str]:
    names = volumes(pool_dir)
    seeds = [v for v in names if v.startswith("web-seed-")]
    images = [v for v in names if v.startswith("base-") and not v.endswith(".part")]
    assert len(seeds) == 1 and len(images) == 1, names
    return sorted(["web-root.qcow2", "web-data.qcow2", *seeds, *images])


def converged(spec: Path, scratch: Path, project: str) -> None:
    again = vmctl("apply", "--yes", str(spec))
    assert again.returncode == 0, again.stdout + again.stderr
    plan = vmctl("plan", "--detailed-exitcode", str(spec))
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert project_domains(project) == ["web"]
    assert volumes(scratch) == expected_volumes(scratch)


@pytest.mark.parametrize(
    "point", ["upload-midway", "create-defined", "create-disk-made", "create-volumes-made", "create-recorded"]
)
def test_create_killed_then_rerun_converges(point: str, spec: Path, scratch: Path, project: str) -> None:
    killed = vmctl("apply", "--yes", str(spec), failpoint=point)
    assert killed.returncode == KILLED, killed.stdout + killed.stderr
    converged(spec, scratch, project)


@pytest.mark.parametrize("point", ["update-claimed", "update-live-done", "update-config-defined"])
def test_update_killed_then_rerun_converges(point: str, spec: Path, scratch: Path, project: str) -> None:
    assert vmctl("apply", "--yes", str(spec)).returncode == 0
    spec.write_text(
        spec.read_text().replace("packages: [nginx]", "packages: [nginx, curl]").replace("size: 1GiB", "size: 2GiB")
    )
    killed = vmctl("apply", "--yes", str(spec), failpoint=point)
    assert killed.returncode == KILLED, killed.stdout + killed.stderr
    converged(spec, scratch, project)


def test_delete_killed_then_rerun_leaves_nothing(spec: Path, scratch: Path, project: str) -> None:
    assert vmctl("apply", "--yes", str(spec)).returncode == 0
    killed = vmctl("destroy", "--yes", "-f", str(spec), failpoint="delete-volume-deleted")
    assert killed.returncode == KILLED
    assert project_domains(project) == ["web"]  # the domain, holding the claims, goes last
    finished = vmctl("destroy", "--yes", "--images", "-f", str(spec))
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert project_domains(project) == []
    assert not scratch.exists() or volumes(scratch) == []


def test_a_failing_define_leaves_no_volumes(spec: Path, scratch: Path, project: str) -> None:
    spec.write_text(spec.read_text().replace("    cpus: 1\n", "    cpus: 1\n    machine: no-such-machine\n"))
    failed = vmctl("apply", "--yes", str(spec))
    assert failed.returncode == 1
    assert "web" in failed.stderr and "define" in failed.stderr, failed.stderr
    assert project_domains(project) == []
    assert [v for v in volumes(scratch) if v.startswith("web-")] == []


def test_two_applies_at_once_do_not_interleave(spec: Path, scratch: Path, project: str) -> None:
    env = {**os.environ, "NO_COLOR": "1"}
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "vmctl", "apply", "--yes", str(spec)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    results = [(run.wait(timeout=300), *run.communicate()) for run in runs]
    assert [code for code, _out, _err in results] == [0, 0], results
    outputs = [out for _code, out, _err in results]
    assert sum("No changes" in out for out in outputs) == 1  # the second waited, then found nothing to do
    assert volumes(scratch) == expected_volumes(scratch)
    conn = libvirt.open("qemu:///system")
    try:
        assert conn.lookupByName("web").isPersistent()
    finally:
        conn.close()


def test_ctrl_c_during_apply_then_rerun_converges(spec: Path, scratch: Path, project: str, tmp_path: Path) -> None:
    import signal
    import time

    many = spec.read_text().replace("  web:\n", "  web:\n    count: 12\n")
    spec.write_text(many)
    env = {**os.environ, "NO_COLOR": "1"}
    run = subprocess.Popen(
        [sys.executable, "-m", "vmctl", "apply", "--yes", str(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(p.name.startswith("web-") for p in scratch.glob("web-*")):
        time.sleep(0.05)
    run.send_signal(signal.SIGINT)
    out, err = run.communicate(timeout=60)
    assert run.returncode in (130, 0), out + err
    again = vmctl("apply", "--yes", str(spec))
    assert again.returncode == 0, again.stdout + again.stderr
    assert vmctl("plan", "--detailed-exitcode", str(spec)).returncode == 0
    names = volumes(scratch)
    assert sorted(n for n in names if n.startswith("web-")) == sorted(
        [f"web-{i}-{d}.qcow2" for i in range(1, 13) for d in ("root", "data")]
        + [n for n in names if n.startswith("web-") and "-seed-" in n]
    )
    assert len([n for n in names if "-seed-" in n]) == 12
    assert len(project_domains(project)) == 12
