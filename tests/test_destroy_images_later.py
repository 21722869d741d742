"""`vmctl destroy`, then later `vmctl destroy --images`: the project's images and its pool go then too.

The plan is checked with data alone; the whole story runs against the real libvirtd.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import libvirt
import pytest

from tests.conftest import CliResult
from tests.test_libvirtd_apply import pool_volumes
from vmctl.model import ImageSpec, LivePool, OwnedState, Owner, VolumeInfo
from vmctl.plan.changes import Action, Kind
from vmctl.plan.destroy import destroy_plan

Cli = Callable[..., CliResult]
OWNER = Owner("lab")
BASE = ImageSpec("base", "qcow2", "labpool")


def owned(pools: list[LivePool], volumes: list[tuple[str, str]]) -> OwnedState:
    return OwnedState((), (), tuple(pools), {v: VolumeInfo(v[0], v[1], None) for v in volumes})


def deletions(live: OwnedState, images: bool = True) -> list[tuple[Kind, str]]:
    plan = destroy_plan(live, OWNER, "qemu:///system", images=images, spec_images=[BASE])
    assert all(c.action is Action.DELETE for c in plan.changes)
    return [(c.kind, c.name) for c in plan.changes]


def test_images_left_in_the_projects_own_pool_are_removed_with_the_pool() -> None:
    live = owned(
        [LivePool("labpool", "/srv/lab", True, OWNER)],
        [("labpool", "base-0123456789abcdef.qcow2"), ("labpool", "kernel-0123456789abcdef")],
    )
    assert deletions(live) == [
        (Kind.IMAGE, "base-0123456789abcdef.qcow2"),
        (Kind.IMAGE, "kernel-0123456789abcdef"),
        (Kind.POOL, "labpool"),
    ]
    assert deletions(live, images=False) == [(Kind.POOL, "labpool")]  # kept by apply while it holds volumes


def test_what_is_not_the_projects_image_or_not_in_its_pool_is_left_alone() -> None:
    live = owned(
        [LivePool("labpool", "/srv/lab", True, OWNER), LivePool("default", "/var/lib/libvirt/images", True)],
        [
            ("labpool", "notes.qcow2"),  # someone's file, not a copy of an image of the spec
            ("labpool", "other-0123456789abcdef.qcow2"),  # an image this spec does not name
            ("default", "base-0123456789abcdef.qcow2"),  # a shared pool: other projects' copies look the same
        ],
    )
    assert deletions(live) == [(Kind.POOL, "labpool")]


@pytest.mark.libvirtd
@pytest.mark.usefixtures("cleanup")
def test_destroy_then_destroy_images_later_removes_the_image_and_the_pool(
    cli: Cli, tmp_path: Path, project: str, scratch: Path
) -> None:
    from tests.test_libvirtd_apply import make_image, spec_text

    make_image(tmp_path / "images" / "base.qcow2")
    guest = (
        f"  {project}-web:\n    state: stopped\n    memory: 256MiB\n    disks: {{root: {{image: base, size: 1GiB}}}}\n"
    )
    spec = tmp_path / "vmctl.yaml"
    spec.write_text(
        spec_text(project, scratch, guest).replace("networks:\n  net: {mode: isolated, ipv4: 198.51.100.225/27}\n", "")
    )
    assert cli("apply", "--yes", str(spec)).code == 0
    first = cli("destroy", "--yes", "-f", str(spec))
    assert first.code == 0, first.out + first.err
    assert "kept: it still holds volumes" in first.out + first.err
    assert [v for v in pool_volumes(scratch) if v.startswith("base-")], pool_volumes(scratch)

    later = cli("destroy", "--yes", "--images", "-f", str(spec))
    assert later.code == 0, later.out + later.err
    assert "image base-" in later.out and "pool " in later.out
    assert pool_volumes(scratch) == []
    conn = libvirt.open("qemu:///system")
    try:
        assert f"{project}pool" not in [p.name() for p in conn.listAllStoragePools(0)]
    finally:
        conn.close()
    assert cli("destroy", "--yes", "--images", "-f", str(spec)).out.strip().endswith("Nothing to destroy.")
