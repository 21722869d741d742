"""`moved:` on a real running guest: the plan says it needs a restart, apply without --allow-restart
leaves it alone, with --allow-restart it is stopped, renamed and started, and the data on its disk
is still there (written and read through the guest agent). The plan after it is empty.

The tiny guest has no filesystem driver in its initramfs, so the data is a marker written straight to
its data disk's block device (and synced) rather than a file in a filesystem.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from tests.tooling.images import GuestImage
from vmctl.hypervisor import Hypervisor

from ..conftest import SCRATCH, SYSTEM, remove_project
from .conftest import Guest, applied, vmctl, write_spec

pytestmark = [pytest.mark.e2e, pytest.mark.libvirtd]


def spec_text(project: str, name: str, image: GuestImage, moved: str = "") -> str:
    return f"""\
version: 1
project: {project}
{moved}pools:
  {project}pool: {{path: {SCRATCH / project}}}
guests:
  {name}:
    memory: 256MiB
    boot: {{kernel: {image.kernel}, initrd: {image.initrd}, cmdline: "{image.cmdline}"}}
    disks:
      data: {{size: 16MiB}}
    nics:
      a: {{user: {{}}}}
    wait: {{agent: true, cloud_init: false, timeout: 2m}}
"""


@pytest.fixture
def project(libvirtd: str) -> Iterator[str]:
    name = f"mv{uuid.uuid4().hex[:8]}"
    yield name
    remove_project(libvirtd, name)


def domains(project: str) -> dict[str, bool]:
    conn = libvirt.open(SYSTEM)
    try:
        return {d.name(): bool(d.isActive()) for d in conn.listAllDomains() if d.name().startswith(project)}
    finally:
        conn.close()


def test_a_running_guest_is_renamed_with_allow_restart_and_keeps_its_data(
    project: str, tiny_image: GuestImage, backend: Hypervisor, tmp_path: Path
) -> None:
    old, new = f"{project}-old", f"{project}-new"
    spec = write_spec(tmp_path / "vmctl.yaml", spec_text(project, old, tiny_image))
    applied("--wait", str(spec))
    marker = f"vmctl-rename-{uuid.uuid4().hex}"
    # the only virtio disk is vda; conv=fsync so the bytes are on the volume, not in the guest's cache
    Guest(backend, old).sh(f"printf %s {marker} | dd of=/dev/vda conv=fsync 2>/dev/null")

    write_spec(spec, spec_text(project, new, tiny_image, moved=f"moved:\n  - {{from: {old}, to: {new}}}\n"))
    plan = vmctl("plan", str(spec))
    assert plan.returncode == 0, plan.stderr
    assert f"~! guest {new} will be updated, needs a restart" in plan.stdout
    assert f"name  {old} → {new}  # restart: libvirt renames only a stopped domain" in plan.stdout
    assert "0 to replace, 0 to delete" in plan.stdout

    refused = applied(str(spec))
    assert "apply --allow-restart renames it" in refused
    assert domains(project) == {old: True}

    done = applied("--allow-restart", "--wait", str(spec))
    assert f"renamed from {old}" in done
    assert domains(project) == {new: True}
    read = Guest(backend, new).sh(f"dd if=/dev/vda bs={len(marker)} count=1 2>/dev/null")
    assert read == marker

    settled = vmctl("plan", "--detailed-exitcode", str(spec))
    assert settled.returncode == 0, settled.stdout + settled.stderr
