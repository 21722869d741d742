"""Carry out a plan: pools, images, networks, then guests in parallel, then deletions.

One guest's failure does not stop the others; the report says exactly what succeeded and what failed.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from vmctl.apply.context import ApplyContext, Outcome
from vmctl.apply.guest import GuestWork
from vmctl.apply.lock import image_lock, pool_lock
from vmctl.apply.network import NetworkWork
from vmctl.apply.progress import Reporter
from vmctl.errors import VmctlError
from vmctl.plan.changes import Action, Change, Kind, NetworkSteps, Plan


@dataclass
class ApplyReport:
    """Every change's outcome, in plan order."""

    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outcomes)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]


def execute(plan: Plan, ctx: ApplyContext, reporter: Reporter, parallel: int = 4) -> ApplyReport:
    report = ApplyReport()
    runner = _Runner(ctx, reporter, report)
    for change in _of_kind(plan, Kind.POOL, deletes=False):
        runner.run(f"pool {change.name}", partial(runner.pool, change))
    for change in _of_kind(plan, Kind.IMAGE, deletes=False):
        runner.run(f"image {change.name}", partial(runner.upload, change))
    for change in _of_kind(plan, Kind.NETWORK, deletes=False):
        runner.run(f"network {change.name}", partial(runner.network, change))
    if not report.ok:
        report.outcomes.append(Outcome("guests", False, "not started: what they need could not be made"))
        return report
    runner.guests([c for c in plan.guest_changes() if c.action is not Action.DELETE], plan, parallel)
    runner.guests([c for c in plan.guest_changes() if c.action is Action.DELETE], plan, parallel)
    for change in _of_kind(plan, Kind.IMAGE, deletes=True):
        runner.run(f"image {change.name}", partial(runner.delete_image, change))
    for change in _of_kind(plan, Kind.NETWORK, deletes=True):
        runner.run(f"network {change.name}", partial(runner.delete_network, change))
    for change in _of_kind(plan, Kind.POOL, deletes=True):
        runner.run(f"pool {change.name}", partial(runner.delete_pool, change))
    return report


def _of_kind(plan: Plan, kind: Kind, deletes: bool) -> list[Change]:
    return [c for c in plan.of_kind(kind) if (c.action is Action.DELETE) == deletes]


class _Runner:
    def __init__(self, ctx: ApplyContext, reporter: Reporter, report: ApplyReport) -> None:
        self.ctx = ctx
        self.backend = ctx.backend
        self.reporter = reporter
        self.report = report

    def run(self, subject: str, work: Callable[[], str]) -> None:
        try:
            summary = work()
            outcome = Outcome(subject, True, summary)
        except VmctlError as exc:
            outcome = Outcome(subject, False, exc.message)
        self.reporter.finished(subject, outcome.ok, outcome.summary)
        self.report.outcomes.append(outcome)

    def pool(self, change: Change) -> str:
        spec = next(p for p in self.ctx.desired.pools if p.name == change.name)
        with pool_lock(self.ctx.pool_path(spec.name)):
            if change.action is Action.CREATE and not self.backend.pool_exists(spec.name):
                try:
                    self.backend.create_pool(spec.name, spec.path, self.ctx.desired.owner)
                    return f"created at {spec.path}"
                except VmctlError:
                    if not self.backend.pool_exists(spec.name):
                        raise  # else a vmctl on another machine made it meanwhile
            self.backend.start_pool(spec.name)
        if change.action is Action.CREATE:
            return "made meanwhile by another vmctl; started"  # another workspace of the spec
        return "started"

    def upload(self, change: Change) -> str:
        upload = next(u for u in self.ctx.desired.uploads if u.volume == change.name and u.pool == change.pool)
        if upload.source is None:
            raise VmctlError(f"image {upload.name}: no local file to upload")
        subject = f"image {change.name}"
        shown = [-1]

        def progress(done: int, total: int) -> None:
            percent = done * 100 // max(total, 1)
            if percent >= shown[0] + 10 or (percent == 100 and shown[0] != 100):
                shown[0] = percent
                self.reporter.event(subject, f"uploading {percent}%")

        with image_lock(self.ctx.pool_path(upload.pool), upload.volume):
            if self.backend.volume_exists(upload.pool, upload.volume):
                return f"uploaded into pool {upload.pool} meanwhile, by another vmctl"
            self.backend.upload_file(upload.pool, upload.volume, Path(upload.source), upload.format, progress)
        return f"uploaded into pool {upload.pool}"

    def network(self, change: Change) -> str:
        spec = next(n for n in self.ctx.desired.networks if n.libvirt_name == change.name)
        if change.action is Action.CREATE:
            self.backend.create_network(spec, self.ctx.desired.owner)
            return "created and started"
        return NetworkWork(self.ctx, spec, change.network or NetworkSteps(), self._say(change)).run()

    def _say(self, change: Change) -> Callable[[str], None]:
        subject = f"{change.kind.value} {change.name}"
        return lambda message: self.reporter.event(subject, message)

    def delete_network(self, change: Change) -> str:
        self.backend.delete_network(change.name)
        return "deleted"

    def delete_pool(self, change: Change) -> str:
        with pool_lock(self.ctx.pool_path(change.name)):
            if not self.backend.pool_exists(change.name):
                return "already gone: another vmctl removed it"
            self.backend.delete_pool(change.name)
            if self.backend.pool_exists(change.name):
                return "kept: it still holds volumes"
        return "deleted"

    def delete_image(self, change: Change) -> str:
        pool = change.pool or ""
        with image_lock(self.ctx.pool_path(pool), change.name):
            if not self.backend.volume_exists(pool, change.name):
                return "already gone: another vmctl removed it"  # another workspace of the spec, at once
            users = self.backend.volume_users(pool, change.name)
            if users:
                return f"kept: still used by {', '.join(sorted(users))}"
            self.backend.delete_volume(pool, change.name)
        return "deleted"

    def guests(self, changes: list[Change], plan: Plan, parallel: int) -> None:
        if not changes:
            return
        volumes = plan.volumes_by_guest()
        updating = any(c.action not in (Action.CREATE, Action.DELETE) for c in changes)
        defined = frozenset(self.backend.domain_names() if updating else ())  # see GuestWork._still_defined
        with ThreadPoolExecutor(max(1, parallel)) as pool:
            futures = [pool.submit(self._guest, c, volumes.get(c.name, ()), defined) for c in changes]
            for future in futures:
                outcome = future.result()
                self.report.outcomes.append(outcome)

    def _guest(self, change: Change, volumes: tuple[Change, ...], defined: frozenset[str]) -> Outcome:
        subject = f"guest {change.name}"
        work = GuestWork(self.ctx, change, volumes, self._say(change), defined=defined)
        try:
            outcome = work.run()
        except VmctlError as exc:
            outcome = work.outcome
            outcome.ok = False
            outcome.summary = exc.message
            outcome.details = exc.details()
        except Exception as exc:  # a bug must not hide what the other guests did
            outcome = work.outcome
            outcome.ok = False
            outcome.summary = f"internal error: {type(exc).__name__}: {exc}"
        message = outcome.summary + "".join(f"; {w}" for w in outcome.warnings)
        self.reporter.finished(subject, outcome.ok, message)
        return outcome
