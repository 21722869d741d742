"""A tiny guest booted on each of two hosts reached over ssh: apply, settle, change, destroy."""

from __future__ import annotations

import json
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tooling.images import GuestImage, ensure_image

from ..conftest import SCRATCH
from .conftest import TwoHosts

pytestmark = [pytest.mark.e2e, pytest.mark.libvirtd]


def spec_text(project: str, hosts: TwoHosts, image: GuestImage, memory: str) -> str:
    guest = f"""\
    memory: {memory}
    max_memory: 512MiB
    max_cpus: 2
    boot: {{kernel: {image.kernel}, initrd: {image.initrd}, cmdline: "{image.cmdline}"}}
    disks:
      scratch: {{size: 64MiB}}
    nics:
      a: {{user: {{}}}}
    cloud_init:
      user_data: {{greeting: hello}}
    wait: {{agent: true, cloud_init: false, timeout: 3m}}
"""
    return f"""\
version: 1
project: {project}
hosts:
  a: {{uri: "{hosts.system}"}}
  b: {{uri: "{hosts.session}"}}
pools:
  default: {{}}
  {project}pool: {{path: {SCRATCH / project}}}
guests:
  {project}-a:
    host: a
    pool: {project}pool
{guest}  {project}-b:
    host: b
{guest}"""


@pytest.fixture
def booted(two_hosts: TwoHosts, tmp_path: Path) -> Iterator[tuple[str, Path, GuestImage]]:
    image = ensure_image("tiny", log=lambda message: print(message, file=sys.stderr))
    project = f"e{uuid.uuid4().hex[:8]}"
    spec = tmp_path / "vmctl.yaml"
    spec.write_text(spec_text(project, two_hosts, image, "256MiB"))
    yield project, spec, image
    two_hosts.machines[0].vmctl("destroy", "--yes", "--images", "-f", str(spec))
    shutil.rmtree(SCRATCH / project, ignore_errors=True)


def test_a_tiny_guest_on_each_host(two_hosts: TwoHosts, booted: tuple[str, Path, GuestImage]) -> None:
    project, spec, image = booted
    machine = two_hosts.machines[0]
    applied = machine.vmctl("apply", "--yes", "--wait", str(spec))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert f"{project}-b: ready" in applied.stdout and f"{project}-a: ready" in applied.stdout
    # The session's default pool went where its user keeps images, not /var/lib/libvirt/images.
    pools = machine.virsh(two_hosts.session, "pool-dumpxml", "default")
    assert f"/home/{two_hosts.user}/.local/share/libvirt/images" in pools
    settled = machine.vmctl("plan", "--detailed-exitcode", str(spec))
    assert settled.returncode == 0, settled.stdout + settled.stderr

    status = json.loads(machine.vmctl("status", "--json", str(spec)).stdout)["guests"]
    assert [(r["name"], r["host"], r["state"], r["ready"]) for r in status] == [
        (f"{project}-a", "a", "running", True),  # ready: its guest agent answered over the ssh link
        (f"{project}-b", "b", "running", True),
    ]

    spec.write_text(spec_text(project, two_hosts, image, "320MiB"))
    plan = machine.vmctl("plan", str(spec))
    assert plan.stdout.count("memory balloon") == 2, plan.stdout
    changed = machine.vmctl("apply", "--yes", str(spec))
    assert changed.returncode == 0, changed.stdout + changed.stderr
    settled = machine.vmctl("plan", "--detailed-exitcode", str(spec))
    assert settled.returncode == 0, settled.stdout + settled.stderr

    gone = machine.vmctl("destroy", "--yes", "--images", "-f", str(spec))  # the kernel and initrd too
    assert gone.returncode == 0, gone.stdout + gone.stderr
    for uri in (two_hosts.system, two_hosts.session):
        assert [n for n in machine.virsh(uri, "list", "--all", "--name").split() if n.startswith(project)] == []
    assert machine.virsh(two_hosts.session, "pool-list", "--all", "--name").split() == []
    assert f"{project}pool" not in machine.virsh(two_hosts.system, "pool-list", "--all", "--name").split()
