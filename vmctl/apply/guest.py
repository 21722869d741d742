"""Carry out one guest's change as the plan describes it: create, update, replace, or delete.

The plan has decided everything (which volumes, which live requests, the disk targets, whether the
config or only vmctl's record is written, what happens to the power); this module walks it in an
order that is safe to interrupt at any point. Every volume a guest will own is claimed in its
metadata before it is made, so an interrupted apply never leaves a volume nobody owns.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import replace

from vmctl.apply.context import ApplyContext, Outcome
from vmctl.apply.live import LiveRequests
from vmctl.apply.volumes import VolumeSteps
from vmctl.apply.waiting import wait_ready
from vmctl.errors import VmctlError
from vmctl.failpoints import failpoint
from vmctl.libvirtxml.definition import claims, domain_definition, guest_record
from vmctl.libvirtxml.domain import serial_log_path
from vmctl.libvirtxml.metadata import guest_xml
from vmctl.model import GuestRecord, GuestSpec, LiveGuest, Owner, VolumeRef
from vmctl.plan.changes import Action, Change, Effect, GuestSteps, Power, VolumeStep, VolumeWork
from vmctl.plan.guest import diff_guest

_MADE_BEFORE_DEVICES = (VolumeWork.CREATE, VolumeWork.RECREATE, VolumeWork.GROW, VolumeWork.GROW_LIVE)


class GuestWork:
    """The steps of one guest's change, in an order that is safe to interrupt at any point."""

    def __init__(
        self,
        ctx: ApplyContext,
        change: Change,
        volumes: tuple[Change, ...],
        say: Callable[[str], None],
        *,
        defined: Collection[str],
    ) -> None:
        """`defined`: the domains libvirtd listed as the guests' work began."""
        self.ctx = ctx
        self.defined = defined
        self.backend = ctx.backend
        self.change = change
        self.name = change.name
        self.say = say
        self.outcome = Outcome(f"guest {change.name}")
        self.volume_steps = tuple(v.volume for v in volumes if v.volume is not None)
        self.steps = change.steps or GuestSteps()

    @property
    def owner(self) -> Owner:
        return self.ctx.desired.owner

    def run(self) -> Outcome:
        action = self.change.action
        if action is Action.CREATE:
            self.create()
        elif action is Action.ADOPT:
            self.adopt()
        elif action is Action.DELETE:
            self.delete()
        elif action is Action.REPLACE and self._new_identity():
            self.recreate()
        elif self.steps.rename_from is not None:
            self.rename(self.steps.rename_from)
        else:
            self._still_defined()
            self.update()
        return self.outcome

    def _still_defined(self) -> None:
        """Defining the config of a domain removed since the plan was made would quietly bring it back,
        as the plan never said: refuse instead. One listing serves every guest: a look-up each would
        cost every guest a round trip to libvirtd, and slow its defines down (a quarter of an update
        of 1000 guests)."""
        if self.name not in self.defined:
            raise VmctlError(
                f"guest {self.name}: its domain was removed since the plan was made; nothing was changed",
                hint="apply again: a new plan creates it anew",
            )

    # -- rename (moved:) --------------------------------------------------------------------------------

    def rename(self, old: str) -> None:
        """libvirt renames only a stopped domain: a running one (the plan says so) is stopped first,
        which takes --allow-restart; then the update finishes the job under the new name."""
        if self.steps.power is Power.RESTART:
            if not self.ctx.options.allow_restart:
                self.outcome.warnings.append(f"not renamed from {old}: it runs, and renaming needs a restart")
                self.outcome.summary = "unchanged: apply --allow-restart renames it"
                return
            self.say(f"shutting down {old} to rename it")
            self._stop_gracefully(old)
        assert self.change.live is not None, "the plan renames a domain it read"
        # The record first: interrupted before the rename, the next plan still renames, and after it,
        # the domain is already the new guest's.
        self.backend.set_metadata(old, guest_xml(self.change.live.record), live=False)
        self.say(f"renaming {old}")
        self.backend.rename(old, self.name)
        failpoint("rename-done")
        self.update()
        self.outcome.summary = f"renamed from {old}" + (", restarted" if self.steps.power is Power.RESTART else "")

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
        volumes = VolumeSteps(self.ctx, guest, self.say)
        for step in self._volume_steps(VolumeWork.CREATE):
            volumes.make(step)
            failpoint("create-disk-made")
        failpoint("create-volumes-made")
        done = replace(record, creating=False, claims=claims(guest))
        self.backend.set_metadata(self.name, guest_xml(done), live=False)
        failpoint("create-recorded")
        if self.steps.autostart is not None:
            self.backend.set_autostart(self.name, self.steps.autostart)
        self._settle_power(guest, active=False, restart=False)
        self.outcome.summary = "created" + (" and started" if guest.state == "running" else "")

    # -- adopt -----------------------------------------------------------------------------------------

    def adopt(self) -> None:
        """Write vmctl's record into the domain (its definition is left alone), then any planned update."""
        live = self.change.live
        assert live is not None and self.steps.adopt, "the plan adopts a domain it read"
        record = self._record(self._desired(), live, live.record.claims)
        self.say("adopting: writing vmctl's record into the domain")
        self.backend.set_metadata(self.name, guest_xml(record), live=live.running is not None)
        failpoint("adopt-recorded")
        if self.change.fields or self.volume_steps or self.steps.autostart is not None:
            self.update()
            self.outcome.summary = f"adopted, then {self.outcome.summary}"
        else:
            self.outcome.summary = "adopted (its definition and power are as they were)"

    # -- delete -----------------------------------------------------------------------------------------

    def delete(self) -> None:
        if self.steps.power is Power.SHUT_DOWN:
            self._stop_gracefully()
        self._remove(step.ref for step in self._volume_steps(VolumeWork.DELETE))
        self.outcome.summary = "deleted, with its volumes"

    def _remove(self, refs: Iterable[VolumeRef]) -> None:
        """Volumes first, the domain (which holds the claims) last: an interruption leaves nothing unowned."""
        volumes = VolumeSteps(self.ctx, self.change.desired, self.say)
        for ref in refs:
            volumes.delete(ref)
        self.say("undefining")
        self.backend.undefine(self.name)

    # -- replace under a new identity ----------------------------------------------------------------------

    def recreate(self) -> None:
        self._stop_gracefully()
        self.say("recreating the guest under its new identity")
        self._remove(step.ref for step in self._volume_steps(VolumeWork.DELETE))
        self.change = replace(self.change, live=None)
        self.create()
        self.outcome.summary = "replaced"

    def _new_identity(self) -> bool:
        live = self.change.live
        return live is not None and live.record.guest != self._desired().guest

    # -- update (and replace of some disks) -----------------------------------------------------------------

    def update(self) -> None:
        live = self.change.live
        guest = self._desired()
        assert live is not None, "the plan updates a guest it read"
        replacing = self.change.action is Action.REPLACE
        if replacing:
            self._stop_gracefully()
        running = live.running is not None and not replacing
        kept = self._claim(guest, live)
        failpoint("update-claimed")
        volumes = VolumeSteps(self.ctx, guest, self.say)
        for step in self._volume_steps(*_MADE_BEFORE_DEVICES):
            volumes.run(step)
        LiveRequests(self.ctx, guest, live, self.say, self.outcome).run(self.steps.devices)
        failpoint("update-live-done")
        if self.steps.write_config:
            self._define_config(guest, live, kept)
            failpoint("update-config-defined")
        deleted = self._delete_released(volumes)
        if deleted or self.steps.write_record:
            record = self._record(guest, live, tuple(ref for ref in kept if ref not in deleted))
            self.backend.set_metadata(self.name, guest_xml(record), live=running)
        if self.steps.autostart is not None:
            self.backend.set_autostart(self.name, self.steps.autostart)
        # The plan read the guest's power moments ago, under the apply lock; a replace stopped it since.
        restart = self.steps.power in (Power.RESTART, Power.REBOOT_FOR_SEED)
        self._settle_power(guest, active=running, restart=restart)
        if self.steps.verify:
            self._verify(guest)
        elif replacing:
            self.outcome.summary = "replaced (data on recreated disks is gone)"
        else:
            self._summarize(running)

    def _claim(self, guest: GuestSpec, live: LiveGuest) -> tuple[VolumeRef, ...]:
        """Record the volumes about to be made before making them; returns every claim now held."""
        held = tuple(dict.fromkeys((*claims(guest), *live.record.claims)))
        if self.steps.claim_first:
            # The record still describes the seed the guest has: the new one is not attached yet.
            record = replace(
                self._record(guest, live, live.record.claims),
                cloud_init=live.record.cloud_init,
                seed_digest=live.record.seed_digest,
            )
            self.backend.set_metadata(self.name, guest_xml(record), live=live.running is not None)
        return held

    def _define_config(self, guest: GuestSpec, live: LiveGuest, held: tuple[VolumeRef, ...]) -> None:
        """Write the whole desired definition as the persistent config, keeping what the guest sees."""
        # Live requests also changed the persistent config: carry over its addresses as they are now.
        current_xml = live.config_xml
        if self.steps.devices or not current_xml:
            current_xml = self.backend.domain_xml(self.name, inactive=True)
        record = self._record(guest, live, held)
        self.backend.define(self._xml(guest, record, live, current_xml), self.name)

    def _delete_released(self, volumes: VolumeSteps) -> set[VolumeRef]:
        """Delete the volumes the plan releases (unplugs were verified, the config no longer has them)."""
        deleted: set[VolumeRef] = set()
        for step in self._volume_steps(VolumeWork.DELETE):
            volumes.delete(step.ref)
            deleted.add(step.ref)
        return deleted

    # -- steps shared by the paths above -------------------------------------------------------------------

    def _volume_steps(self, *works: VolumeWork) -> list[VolumeStep]:
        return [step for step in self.volume_steps if step.work in works]

    def _desired(self) -> GuestSpec:
        assert self.change.desired is not None, "the plan creates or updates a guest the spec has"
        return self.change.desired

    def _record(self, guest: GuestSpec, live: LiveGuest | None, held: tuple[VolumeRef, ...]) -> GuestRecord:
        return guest_record(guest, self.ctx.desired, live, extra_claims=held)

    def _xml(self, guest: GuestSpec, record: GuestRecord, live: LiveGuest | None, config_xml: str | None = None) -> str:
        return domain_definition(
            guest, record, self.ctx.host, self.ctx.pool_paths, live, config_xml, targets=self.steps.targets
        )

    def _stop_gracefully(self, name: str | None = None) -> None:
        name = name or self.name
        if not self.backend.domain_exists(name) or not self.backend.is_active(name):
            return
        self.say("shutting down")
        if not self.backend.shutdown(name, self.ctx.options.shutdown_timeout):
            self.say(f"no clean shutdown within {self.ctx.options.shutdown_timeout:g}s: powering off")
            self.backend.power_off(name)

    def _settle_power(self, guest: GuestSpec, active: bool, restart: bool) -> None:
        if restart and active:
            if self.ctx.options.allow_restart:
                self.say("restarting to apply the changes")
                self._stop_gracefully()
                active = False
            else:
                self.outcome.warnings.append(self._restart_note())
        if guest.state == "running" and not active:
            self.say("starting")
            self.backend.start(self.name)
            self._wait(guest)
        elif guest.state == "stopped" and active:
            self._stop_gracefully()

    def _restart_note(self) -> str:
        if self.steps.power is Power.REBOOT_FOR_SEED:
            return "the new cloud-init seed takes effect at the next boot (apply --allow-restart reboots)"
        return "needs a restart to finish (written to its config): apply --allow-restart"

    def _wait(self, guest: GuestSpec) -> None:
        if not (self.ctx.options.wait or guest.wait.enabled):
            return
        host = self.ctx.host
        log = serial_log_path(host.log_dir, guest.name) if host.log_dir and host.local else None  # only here
        wait_ready(self.backend, guest, log, self.say)
        self.say("ready")

    def _summarize(self, running: bool) -> None:
        waiting = self.steps.power is Power.RESTART and not self.ctx.options.allow_restart
        self.outcome.summary = "updated" + (", needs restart" if waiting else " live" if running else "")

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
            left = [f for f in diff_guest(guest, fresh).fields if f.effect in (Effect.LIVE, Effect.CONFIG)]
            if not left or time.monotonic() >= deadline:
                break
            time.sleep(0.5)
        if left:
            paths = ", ".join(sorted({f.path for f in left}))
            self.outcome.ok = False
            self.outcome.summary = f"not yet done: {paths} (the guest has not honoured the request; apply again later)"
            return
        self._summarize(fresh.running is not None)
