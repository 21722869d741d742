"""Expiry and gc against a real libvirtd: a CI job killed mid-apply leaves nothing behind once gc
has run, and gc touches nothing else (a workspace without expiry, a foreign domain).

Networks here use 198.51.100.96/27, split in two so both workspaces' networks can run at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from .test_libvirtd_apply import make_image

pytestmark = [pytest.mark.libvirtd, pytest.mark.usefixtures("cleanup")]
KILLED = 137


def vmctl(*args: str, failpoint: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("VMCTL_FAILPOINT", None)
    if failpoint:
        env["VMCTL_FAILPOINT"] = failpoint
    return subprocess.run([sys.executable, "-m", "vmctl", *args], capture_output=True, text=True, env=env, timeout=300)


def ok(*args: str) -> str:
    result = vmctl(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def spec(path: Path, project: str, pool_dir: Path, network: str, extra: str = "") -> Path:
    path.write_text(f"""\
version: 1
project: {project}
{extra}
pools:
  {project}pool: {{path: {pool_dir}}}
images:
  base: {{path: images/base.qcow2}}
networks:
  net: {{mode: isolated, ipv4: {network}}}
guests:
  web:
    count: 2
    state: stopped
    memory: 128MiB
    disks:
      root: {{image: base, size: 1GiB}}
      data: {{size: 64MiB}}
    nics:
      lan: {{network: net}}
    cloud_init:
      user_data: {{packages: [nginx]}}
""")
    return path


@pytest.fixture
def foreign(project: str) -> Iterator[str]:
    """A domain vmctl did not make, beside the project's."""
    name = f"{project}-foreign"
    conn = libvirt.open("qemu:///system")
    xml = f"""<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory>
      <os><type arch='x86_64'>hvm</type></os></domain>"""
    conn.defineXML(xml)
    try:
        yield name
    finally:
        with contextlib.suppress(libvirt.libvirtError):
            conn.lookupByName(name).undefine()
        conn.close()


def domains(prefix: str) -> list[str]:
    conn = libvirt.open("qemu:///system")
    try:
        return sorted(d.name() for d in conn.listAllDomains(0) if d.name().startswith(prefix))
    finally:
        conn.close()


def networks(prefix: str) -> list[str]:
    conn = libvirt.open("qemu:///system")
    try:
        return sorted(n.name() for n in conn.listAllNetworks(0) if n.name().startswith(prefix))
    finally:
        conn.close()


def test_gc_removes_a_killed_jobs_workspace_and_nothing_else(
    tmp_path: Path, project: str, scratch: Path, foreign: str
) -> None:
    make_image(tmp_path / "images" / "base.qcow2", "256M")
    kept = spec(tmp_path / "kept.yaml", project, scratch, "198.51.100.113/28")
    job = spec(tmp_path / "job.yaml", project, scratch, "198.51.100.97/28", extra="expires_after: 2s")
    ok("apply", "--yes", "-w", f"{project}k", str(kept))
    killed = vmctl("apply", "--yes", "-w", f"{project}j", str(job), failpoint="create-disk-made")
    assert killed.returncode == KILLED, killed.stdout + killed.stderr
    job_domains = domains(f"{project}j-")
    assert job_domains, "the killed apply had defined its guests"
    assert networks(f"{project}j-") == [f"{project}j-{project}-net"]
    left_by_job = [v.name for v in scratch.iterdir() if v.name.startswith(f"{project}j-")]
    assert left_by_job, "the killed apply had made volumes"

    time.sleep(3)
    listed = json.loads(ok("workspaces", "--json"))["workspaces"]
    mine = {w["workspace"]: w for w in listed if w["project"] == project}
    assert mine[f"{project}j"]["expired"] is True and mine[f"{project}j"]["expires"]
    assert mine[f"{project}k"]["expired"] is False and mine[f"{project}k"]["expires"] is None
    assert mine[f"{project}k"]["guests"] == 2

    dry = ok("gc", "--dry-run")
    assert f"guest {job_domains[0]} will be deleted" in dry, dry
    assert domains(f"{project}j-") == job_domains  # a dry run changes nothing

    collected = ok("gc")
    assert "Garbage collection complete" in collected, collected
    assert domains(f"{project}j-") == []
    assert networks(f"{project}j-") == []
    assert [v.name for v in scratch.iterdir() if v.name.startswith(f"{project}j-")] == []
    # Untouched: the workspace without expiry, and the foreign domain.
    assert domains(f"{project}k-") == [f"{project}k-web-1", f"{project}k-web-2"]
    assert networks(f"{project}k-") == [f"{project}k-{project}-net"]
    assert domains(foreign) == [foreign]
    assert vmctl("plan", "--detailed-exitcode", "-w", f"{project}k", str(kept)).returncode == 0
    assert f"{project}j" not in ok("gc", "--dry-run")  # nothing of it is left to collect


def test_gc_images_removes_an_expired_workspace_s_image_once_no_other_guest_uses_it(
    tmp_path: Path, project: str, scratch: Path
) -> None:
    make_image(tmp_path / "images" / "base.qcow2", "256M")
    kept = spec(tmp_path / "kept.yaml", project, scratch, "198.51.100.113/28")
    job = spec(tmp_path / "job.yaml", project, scratch, "198.51.100.97/28", extra="expires_after: 2s")
    ok("apply", "--yes", "-w", f"{project}k", str(kept))
    ok("apply", "--yes", "-w", f"{project}j", str(job))
    images = [v for v in scratch.iterdir() if v.name.startswith("base-")]
    assert len(images) == 1, "both workspaces' guests are overlays of one uploaded image"
    time.sleep(3)

    shared = ok("gc", "--images")
    assert domains(f"{project}j-") == [] and images[0].exists()
    users = f"volume {project}k-web-1-root.qcow2, volume {project}k-web-2-root.qcow2"
    assert f"kept: still used by {users}" in shared, shared

    ok("destroy", "--yes", "-w", f"{project}k", "-f", str(kept))  # without --images: the image stays
    assert images[0].exists()
    ok("apply", "--yes", "-w", f"{project}j", str(job))
    time.sleep(3)
    alone = ok("gc", "--images")
    assert domains(f"{project}j-") == [] and not images[0].exists(), alone
    assert [v.name for v in scratch.iterdir() if v.name.startswith(f"{project}j-")] == []


def test_reapply_pushes_expiry_forward_and_a_plan_stays_empty(tmp_path: Path, project: str, scratch: Path) -> None:
    make_image(tmp_path / "images" / "base.qcow2", "256M")
    path = spec(tmp_path / "job.yaml", project, scratch, "198.51.100.97/28", extra="expires_after: 1h")
    workspace = f"{project}j"
    ok("apply", "--yes", "-w", workspace, str(path))
    first = _expiry(project, workspace)
    assert vmctl("plan", "--detailed-exitcode", "-w", workspace, str(path)).returncode == 0
    time.sleep(1.1)
    again = ok("apply", "--yes", "-w", workspace, str(path))
    assert "renewed by this apply" in again, again
    later = _expiry(project, workspace)
    assert later > first
    shorter = ok("apply", "--yes", "-w", workspace, "--expires-after", "2s", str(path))
    assert "expires" in shorter
    time.sleep(3)
    ok("gc")
    assert domains(f"{workspace}-") == [] and networks(f"{workspace}-") == []


def _expiry(project: str, workspace: str) -> str:
    listed = json.loads(ok("workspaces", "--json"))["workspaces"]
    found = [w for w in listed if (w["project"], w["workspace"]) == (project, workspace)]
    assert len(found) == 1 and found[0]["expires"], listed
    return str(found[0]["expires"])
