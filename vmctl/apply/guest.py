"""Carry out one guest's change: create, update (live where possible), replace, or delete.

Every volume a guest will own is claimed in its metadata before it is made, so an interrupted apply
never leaves a volume nobody owns; live requests are verified by reading the domain back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from vmctl.apply.live import LiveDevices
from vmctl.apply.waiting import wait_ready
from vmctl.cloudinit.seed import build_iso, seed_content
from vmctl.errors import VmctlError
from vmctl.failpoints import failpoint
from vmctl.hypervisor import LibvirtBackend
from vmctl.libvirtxml.definition import claims, domain_definition, guest_record
from vmctl.libvirtxml.domain import (
    serial_log_path,
)
from vmctl.libvirtxml.metadata import guest_xml
from vmctl.model.types import DesiredState, DiskSpec, GuestRecord, GuestSpec, HostFacts, LiveGuest, Owner, VolumeRef
from vmctl.plan.changes import Action, Change, Effect
from vmctl.plan.guest import diff_guest
from vmctl.units import format_size

UNPLUG_TIMEOUT = 20.0
BALLOON_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class ApplyOptions:
    """How apply may act: restarts, waiting, timeouts."""

    allow_restart: bool = False
    wait: bool = False
    shutdown_timeout: float = 60.0
    unplug_timeout: float = UNPLUG_TIMEOUT
    settle_timeout: float = BALLOON_TIMEOUT  # for the guest to carry out live requests


@dataclass(frozen=True, slots=True)
class ApplyContext:
    """What every guest's work shares."""

    backend: LibvirtBackend
    desired: DesiredState
    host: HostFacts
    pool_paths: dict[str, str]
    options: ApplyOptions


@dataclass
class Outcome:
    """What became of one change: done or failed, and what the user must know."""

    subject: str
    ok: bool = True
    summary: str = ""
    warnings: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)  # for a failure: what the error showed (a console's last lines)


class GuestWork:
    """The steps of one guest's change, in an order that is safe to interrupt at any point."""

    def __init__(self, ctx: ApplyContext, change: Change, volumes: list[Change], say: Callable[[str], None]) -> None:
        self.ctx = ctx
        self.backend = ctx.backend
        self.change = change
        self.volumes = volumes
        self.name = change.name
        self.say = say
        self.outcome = Outcome(f"guest {change.name}")

    @property
    def owner(self) -> Owner:
        return self.ctx.desired.owner

    def run(self) -> Outcome:
        action = self.change.action
        if action is Action.CREATE:
            self.create()
        elif action is Action.DELETE:
            self.delete()
        elif action is Action.REPLACE:
            self.replace_guest()
        else:
            self.update()
        return self.outcome

    # -- create ---------------------------------------------------------------------------------------

    def create(self) -> None:
        guest = self._desired()
        resumed = self.change.live
        old_claims = resumed.record.claims if resumed else ()
        record = guest_record(guest, self.ctx.desired, resumed, extra_claims=old_claims, creating=True)
        if resumed:
            self.say("finishing an interrupted create: making its volumes anew")
            self.backend.power_off(self.name)
            for ref in {*old_claims, *claims(guest)}:
                self.backend.delete_volume(ref.pool, ref.name)
        self.say("defining the domain")
        self.backend.define(self._xml(guest, record, resumed), self.name)
        failpoint("create-defined")
        for disk in guest.disks:
            self._make_disk_volume(disk)
            failpoint("create-disk-made")
        if guest.seed:
            self._write_seed(guest)
        failpoint("create-volumes-made")
        done = replace(record, creating=False, claims=claims(guest))
        self.backend.set_metadata(self.name, guest_xml(done), live=False)
        failpoint("create-recorded")
        if guest.autostart:
            self.backend.set_autostart(self.name, True)
        self._settle_power(guest, restart=False)
        self.outcome.summary = "created" + (" and started" if guest.state == "running" else "")

    # -- delete -----------------------------------------------------------------------------------------

    def delete(self) -> None:
        if self._read_running():
            self._stop_gracefully()
        self._remove([VolumeRef(v.pool or "", v.name) for v in self.volumes if v.action is Action.DELETE])
        self.outcome.summary = "deleted, with its volumes"

    def _remove(self, claims: Iterable[VolumeRef]) -> None:
        """Volumes first, the domain (which holds the claims) last: an interruption leaves nothing unowned."""
        for ref in claims:
            self.say(f"deleting volume {ref.name}")
            self.backend.delete_volume(ref.pool, ref.name)
            failpoint("delete-volume-deleted")
        self.say("undefining")
        self.backend.undefine(self.name)

    # -- replace ----------------------------------------------------------------------------------------

    def replace_guest(self) -> None:
        live = self.change.live
        guest = self._desired()
        assert live is not None
        self._stop_gracefully()
        if live.record.guest != guest.guest:
            self.say("recreating the guest under its new identity")
            self._remove(live.record.claims)
            self.change = replace(self.change, live=None)
            self.create()
            self.outcome.summary = "replaced"
            return
        self._claim(guest, live)
        for op in (v for v in self.volumes if v.action is Action.REPLACE):
            self.say(f"recreating volume {op.name}")
            self.backend.delete_volume(op.pool or guest.pool, op.name)
        self._make_missing_volumes(guest)
        self._define_config(guest, live)
        self._delete_released(guest)
        self._settle_power(guest, restart=False)
        self.outcome.summary = "replaced (data on recreated disks is gone)"

    # -- update ------------------------------------------------------------------------------------------

    def update(self) -> None:
        live = self.change.live
        guest = self._desired()
        assert live is not None
        running = live.running is not None
        self._claim(guest, live)
        failpoint("update-claimed")
        self._make_missing_volumes(guest)
        self._grow_disks(guest, live, running)
        if running:
            LiveDevices(self, guest, live).apply()
        failpoint("update-live-done")
        self._define_config(guest, live)
        failpoint("update-config-defined")
        self._delete_released(guest)
        if guest.autostart != live.config.autostart:
            self.backend.set_autostart(self.name, guest.autostart)
        restart = self.change.needs_restart or self._seed_changed(live, guest)
        self._settle_power(guest, restart=restart and running)
        self._verify(guest)

    def _seed_changed(self, live: LiveGuest, guest: GuestSpec) -> bool:
        return live.current.seed != guest.seed

    # -- steps shared by the paths above -------------------------------------------------------------------

    def _desired(self) -> GuestSpec:
        assert self.change.desired is not None
        return self.change.desired

    def _xml(self, guest: GuestSpec, record: GuestRecord, live: LiveGuest | None, config_xml: str | None = None) -> str:
        return domain_definition(guest, record, self.ctx.host, self.ctx.pool_paths, live, config_xml)

    def _claim(self, guest: GuestSpec, live: LiveGuest) -> None:
        """Record the volumes about to be made before making them."""
        new = [ref for ref in claims(guest) if ref not in live.record.claims]
        if not new:
            return
        record = guest_record(guest, self.ctx.desired, live, extra_claims=live.record.claims)
        record = replace(record, cloud_init=live.record.cloud_init, seed_digest=live.record.seed_digest)
        self.backend.set_metadata(self.name, guest_xml(record), live=live.running is not None)

    def _make_missing_volumes(self, guest: GuestSpec) -> None:
        for disk in guest.disks:
            if not self.backend.volume_exists(disk.pool, disk.volume):
                self._make_disk_volume(disk)
        if guest.seed and not self.backend.volume_exists(guest.seed.pool, guest.seed.volume):
            self._write_seed(guest)

    def _make_disk_volume(self, disk: DiskSpec) -> None:
        size = disk.size or 0
        self.backend.delete_volume(disk.pool, disk.volume)  # a leftover of an interrupted apply
        if disk.image:
            image = self.ctx.desired.image_upload(disk.image, disk.image_sha256)
            if image is None:  # pragma: no cover - desired_state makes an upload for every image it uses
                raise VmctlError(f"{self.name}: no uploaded image for disk {disk.name}")
            self.say(f"creating disk {disk.name} ({format_size(size)}) on image {disk.image}")
            base = VolumeRef(image.pool, image.volume)
            self.backend.create_volume(disk.pool, disk.volume, size, "qcow2", base, image.format)
        else:
            self.say(f"creating disk {disk.name} ({format_size(size)})")
            self.backend.create_volume(disk.pool, disk.volume, size, "qcow2")

    def _write_seed(self, guest: GuestSpec) -> None:
        assert guest.seed is not None and guest.cloud_init is not None
        self.say("writing the cloud-init seed")
        iso = build_iso(seed_content(guest.cloud_init, guest.name, guest.hostname))
        self.backend.delete_volume(guest.seed.pool, guest.seed.volume)
        self.backend.write_volume(guest.seed.pool, guest.seed.volume, iso)

    def _grow_disks(self, guest: GuestSpec, live: LiveGuest, running: bool) -> None:
        for disk in guest.disks:
            have = live.current.disk(disk.name)
            if not (have and have.size and disk.size and disk.size > have.size):
                continue
            self.say(f"growing disk {disk.name} to {format_size(disk.size)}")
            target = live.targets.get(disk.name)
            if running and target:
                # qemu owns the image while the guest runs: it must do the resize itself.
                self.backend.block_resize(self.name, target, disk.size)
            else:
                self.backend.resize_volume(disk.pool, disk.volume, disk.size)

    def _define_config(self, guest: GuestSpec, live: LiveGuest) -> None:
        """Write the whole desired definition as the persistent config, keeping what the guest sees."""
        config_xml = self.backend.domain_xml(self.name, inactive=True)
        fresh = self.backend.read_live_guest(self.name, self.owner, self.ctx.pool_paths) or live
        # Every claim is kept here: only _delete_released drops one, after deleting its volume.
        record = guest_record(guest, self.ctx.desired, fresh, extra_claims=fresh.record.claims)
        self.backend.define(self._xml(guest, record, fresh, config_xml), self.name)

    @staticmethod
    def _attached_live(live: LiveGuest, ref: VolumeRef) -> bool:
        running = live.running
        if running is None:
            return False
        volumes = {(d.pool, d.volume) for d in running.disks}
        if running.seed:
            volumes.add((running.seed.pool, running.seed.volume))
        return (ref.pool, ref.name) in volumes

    def _delete_released(self, guest: GuestSpec) -> None:
        """Delete claimed volumes the guest no longer uses, then drop their claims."""
        fresh = self.backend.read_live_guest(self.name, self.owner, self.ctx.pool_paths)
        if fresh is None:
            return
        keep = []
        for ref in fresh.record.claims:
            if ref in claims(guest) or self._attached_live(fresh, ref):
                keep.append(ref)
                continue
            self.say(f"deleting volume {ref.name}")
            self.backend.delete_volume(ref.pool, ref.name)
        if tuple(keep) != fresh.record.claims:
            record = replace(fresh.record, claims=tuple(keep))
            self.backend.set_metadata(self.name, guest_xml(record), live=fresh.running is not None)

    def _read_running(self) -> bool:
        """Whether the plan read the guest running. One read moments ago is enough to skip a stopped
        guest's shutdown: nothing of vmctl's starts it meanwhile (the apply lock is held)."""
        return any(f.path == "state" and f.before != "stopped" for f in self.change.fields)

    def _stop_gracefully(self) -> None:
        if not self.backend.domain_exists(self.name) or not self.backend.is_active(self.name):
            return
        self.say("shutting down")
        if not self.backend.shutdown(self.name, self.ctx.options.shutdown_timeout):
            self.say(f"no clean shutdown within {self.ctx.options.shutdown_timeout:g}s: powering off")
            self.backend.power_off(self.name)

    def _settle_power(self, guest: GuestSpec, restart: bool) -> None:
        active = self.backend.is_active(self.name)
        if restart and active:
            if self.ctx.options.allow_restart:
                self.say("restarting to apply the changes")
                self._stop_gracefully()
                active = False
            else:
                note = "needs a restart to finish (written to its config): apply --allow-restart"
                if not self.change.needs_restart:
                    note = "the new cloud-init seed takes effect at the next boot (apply --allow-restart reboots)"
                self.outcome.warnings.append(note)
        if guest.state == "running" and not active:
            self.say("starting")
            self.backend.start(self.name)
            self._wait(guest)
        elif guest.state == "stopped" and active:
            self._stop_gracefully()

    def _wait(self, guest: GuestSpec) -> None:
        if not (self.ctx.options.wait or guest.wait.enabled):
            return
        log = serial_log_path(self.ctx.host.log_dir, guest.name) if self.ctx.host.log_dir else None
        wait_ready(self.backend, guest, log, self.say)
        self.say("ready")

    def _verify(self, guest: GuestSpec) -> None:
        """Read the domain back: a live request the guest did not honour is reported, never claimed.

        Balloon and unplug requests complete when the guest gets to them (a guest that has just
        booted has not loaded its balloon driver yet), so the domain is read again for a while.
        """
        deadline = time.monotonic() + self.ctx.options.settle_timeout
        while True:
            fresh = self.backend.read_live_guest(self.name, self.owner, self.ctx.pool_paths)
            if fresh is None:
                raise VmctlError(f"{self.name}: the domain vanished while it was being updated")
            fields = diff_guest(guest, fresh).fields
            left = [f for f in fields if f.effect in (Effect.LIVE, Effect.CONFIG)]
            if not left or time.monotonic() >= deadline:
                break
            time.sleep(0.5)
        if left:
            paths = ", ".join(sorted({f.path for f in left}))
            self.outcome.ok = False
            self.outcome.summary = f"not yet done: {paths} (the guest has not honoured the request; apply again later)"
            return
        restart_left = [f for f in fields if f.effect is Effect.RESTART]
        self.outcome.summary = "updated" + (", needs restart" if restart_left else " live" if fresh.running else "")
