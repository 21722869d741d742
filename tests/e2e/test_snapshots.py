"""Snapshots of a real tiny guest: save, change, revert, and what was saved is back (memory and disk),
checked inside the guest through its agent; destroy leaves no snapshot behind."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tooling.images import GuestImage

from ..conftest import SCRATCH, remove_project
from .conftest import Guest, applied, vmctl, write_spec

pytestmark = [pytest.mark.e2e, pytest.mark.libvirtd]
SNAPSHOT_DIR = Path("/var/lib/libvirt/qemu/snapshot")


def tiny_spec(path: Path, project: str, pool_dir: Path, image: GuestImage, name: str) -> Path:
    return write_spec(
        path,
        f"""\
version: 1
project: {project}
pools:
  {project}pool: {{path: {pool_dir}}}
guests:
  {name}:
    memory: 256MiB
    boot: {{kernel: {image.kernel}, initrd: {image.initrd}, cmdline: "{image.cmdline}"}}
    disks:
      scratch: {{size: 64MiB}}
    nics:
      a: {{user: {{}}}}
    cloud_init:
      user_data: {{greeting: snapshots}}
    wait: {{agent: true, cloud_init: false, timeout: 2m}}
""",
    )


@pytest.fixture(scope="module")
def booted(
    libvirtd: str, tiny_image: GuestImage, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    project = f"snap{uuid.uuid4().hex[:8]}"
    pool_dir = SCRATCH / project
    pool_dir.mkdir(parents=True, exist_ok=True)
    pool_dir.chmod(0o755)
    spec = tiny_spec(tmp_path_factory.mktemp("snap") / "vmctl.yaml", project, pool_dir, tiny_image, f"{project}-g")
    try:
        applied("--wait", str(spec))
        yield f"{project}-g", spec
    finally:
        remove_project(libvirtd, project)


def ok(*args: str) -> str:
    result = vmctl(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


MARK = "dd if=/dev/vda bs=16 count=1 2>/dev/null"


def test_revert_brings_back_a_deleted_file_and_the_disk(booted: tuple[str, Path], backend: object) -> None:
    name, spec = booted
    guest = Guest(backend, name)  # type: ignore[arg-type]
    guest.sh("echo saved-state > /root/kept.txt; printf 'disk-before-save' | dd of=/dev/vda conv=fsync 2>/dev/null")
    assert "saved as snapshot clean" in ok("snapshot", "save", name, "clean", "-f", str(spec))

    guest.sh("rm /root/kept.txt; printf 'overwritten-afterward' | dd of=/dev/vda conv=fsync 2>/dev/null")
    assert guest.sh("ls /root").strip() == ""

    assert "reverted to snapshot clean" in ok("snapshot", "revert", name, "clean", "-f", str(spec))
    assert guest.eventually("cat /root/kept.txt 2>&1", lambda out: "saved-state" in out).strip() == "saved-state"
    assert guest.sh(MARK) == "disk-before-save"

    listed = json.loads(ok("snapshot", "list", "--json", "-f", str(spec)))["snapshots"]
    assert [(s["guest"], s["name"], s["memory"], s["current"]) for s in listed] == [(name, "clean", True, True)]
    # A snapshot is not drift: the plan compares the guest as it is after the revert.
    assert vmctl("plan", "--detailed-exitcode", str(spec)).returncode == 0


def test_destroy_removes_the_snapshots_with_the_guest(booted: tuple[str, Path]) -> None:
    name, spec = booted
    ok("snapshot", "save", name, "before-destroy", "-f", str(spec))
    ok("destroy", "--yes", "-f", str(spec))
    assert not (SNAPSHOT_DIR / name).exists() or not any((SNAPSHOT_DIR / name).iterdir())
    assert vmctl("snapshot", "list", name, "-f", str(spec)).returncode == 1  # the guest is gone
