"""One guest's volume steps, as the plan lists them: disks made on their images, seeds written,
volumes grown (in the pool, or by QEMU for a running guest), recreated and deleted."""

from __future__ import annotations

from collections.abc import Callable

from vmctl.apply.context import ApplyContext
from vmctl.apply.lock import image_lock
from vmctl.cloudinit.seed import build_iso, seed_content
from vmctl.errors import VmctlError
from vmctl.failpoints import failpoint
from vmctl.model import GuestSpec, VolumeRef
from vmctl.plan.changes import VolumeStep, VolumeWork
from vmctl.units import format_size


class VolumeSteps:
    """Carries out VolumeSteps for one guest."""

    def __init__(self, ctx: ApplyContext, guest: GuestSpec | None, say: Callable[[str], None]) -> None:
        """`guest` is the spec's guest; None for a guest being deleted (its volumes are only deleted)."""
        self.ctx = ctx
        self.backend = ctx.backend
        self.guest = guest
        self.say = say

    def run(self, step: VolumeStep) -> None:
        if step.work is VolumeWork.CREATE:
            self.make(step)
        elif step.work is VolumeWork.RECREATE:
            self.say(f"recreating volume {step.ref.name}")
            self.make(step)
        elif step.work is VolumeWork.GROW:
            self.say(f"growing disk {step.disk} to {format_size(step.size or 0)}")
            self.backend.resize_volume(step.ref.pool, step.ref.name, step.size or 0)
        elif step.work is VolumeWork.GROW_LIVE:
            self.say(f"growing disk {step.disk} to {format_size(step.size or 0)}")
            assert step.target and self.guest, "the plan names the running guest's device to grow"
            self.backend.block_resize(self.guest.name, step.target, step.size or 0)
        else:
            self.delete(step.ref)

    def make(self, step: VolumeStep) -> None:
        """Make a disk's volume or the seed; a volume of that name is a leftover of an interrupted apply."""
        self.backend.delete_volume(step.ref.pool, step.ref.name)
        if step.disk is None:
            self._write_seed(step.ref)
        else:
            self._make_disk(step)

    def delete(self, ref: VolumeRef) -> None:
        self.say(f"deleting volume {ref.name}")
        self.backend.delete_volume(ref.pool, ref.name)
        failpoint("delete-volume-deleted")

    def _make_disk(self, step: VolumeStep) -> None:
        assert self.guest is not None, "the plan makes volumes only for a guest the spec has"
        disk = self.guest.disk(step.disk or "")
        assert disk is not None, f"the plan makes disk {step.disk}, which the spec has"
        size = step.size or 0
        if disk.image is None:
            self.say(f"creating disk {disk.name} ({format_size(size)})")
            self.backend.create_volume(step.ref.pool, step.ref.name, size, "qcow2")
            return
        image = self.ctx.desired.image_upload(disk.image, disk.image_sha256)
        if image is None:  # pragma: no cover - desired_state makes an upload for every image it uses
            raise VmctlError(f"{self.guest.name}: no uploaded image for disk {disk.name}")
        self.say(f"creating disk {disk.name} ({format_size(size)}) on image {disk.image}")
        base = VolumeRef(image.pool, image.volume)
        with image_lock(self.ctx.pool_path(image.pool), image.volume, shared=True):  # not deleted meanwhile
            failpoint("disk-on-image")
            self.backend.create_volume(step.ref.pool, step.ref.name, size, "qcow2", base, image.format)

    def _write_seed(self, ref: VolumeRef) -> None:
        guest = self.guest
        assert guest and guest.cloud_init, "the plan writes a seed only for a guest with cloud-init"
        self.say("writing the cloud-init seed")
        iso = build_iso(seed_content(guest.cloud_init, guest.name, guest.hostname))
        self.backend.write_volume(ref.pool, ref.name, iso)
