"""The steps every command shares: load the spec, connect, measure, read live state, plan."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from vmctl.model import DesiredState, HostFacts, LiveState, OwnedState, Owner, Spec, VolumeRef
from vmctl.spec.load import load_spec
from vmctl.units import utc_timestamp

if TYPE_CHECKING:
    from vmctl.hypervisor import Hypervisor
    from vmctl.plan.changes import Plan
    from vmctl.resolve.localfiles import Progress
    from vmctl.spec.variables import VarInputs


@dataclass
class Session:
    """One command's view of the world: the spec, the hypervisor, and what each says."""

    spec: Spec
    uri: str
    backend: Hypervisor
    host: HostFacts
    desired: DesiredState

    @property
    def owner(self) -> Owner:
        return self.desired.owner

    def read_live(self) -> LiveState:
        disks = [VolumeRef(d.pool, d.volume) for g in self.desired.guests for d in g.disks]
        adoptable = [g.name for g in self.desired.guests if g.adopt]
        return self.backend.read_state(self.owner, disks, adoptable)

    def pool_paths(self, live: LiveState | OwnedState) -> dict[str, str]:
        paths = {p.name: p.path for p in self.desired.pools}
        paths.update({p.name: p.path for p in live.pools})
        return paths


@dataclass(frozen=True, slots=True)
class Expiry:
    """What the user said of expiry beyond the spec: `apply --expires-after`, and whether to renew."""

    after: float | None = None  # seconds; None: as the spec says
    renew: bool = False  # apply pushes a recorded expiry forward; plan only shows it set or removed


def open_session(
    paths: Sequence[str],
    workspace: str | None,
    uri_for: Any,
    progress: Progress | None = None,
    resolve: bool = True,
    inputs: VarInputs | None = None,
    expiry: Expiry = Expiry(),
) -> Session:
    """Load and check the spec first: bad input never reaches the hypervisor.

    Without `resolve` (destroy), the guests are not resolved: only the project and its pools matter.
    """
    spec = load_spec(paths, workspace, inputs)
    session = _connected(spec, uri_for, progress, resolve)
    after = expiry.after if expiry.after is not None else spec.expires_after
    expires = utc_timestamp(time.time() + after) if after else ""
    session.desired = replace(session.desired, expires=expires, renew=expiry.renew)
    return session


def _connected(spec: Spec, uri_for: Any, progress: Progress | None, resolve: bool) -> Session:
    from vmctl.hypervisor import connect

    if not resolve:
        uri = uri_for(spec.connection)
        backend = connect(uri)
        desired = DesiredState(spec.project, spec.workspace, spec.pools, (), (), (), secrets=spec.secrets)
        return Session(spec, uri, backend, HostFacts(log_dir=backend.log_dir()), desired)
    from vmctl.resolve.desired import desired_state
    from vmctl.resolve.localfiles import gather

    if progress is None:
        from vmctl.apply.progress import download_progress

        progress = download_progress()
    facts = gather(spec, progress)
    uri = uri_for(spec.connection)
    backend = connect(uri)
    host = backend.host_facts()
    return Session(spec, uri, backend, host, desired_state(spec, facts, host))


def plan_session(session: Session, targets: Sequence[str] = ()) -> tuple[Plan, LiveState]:
    from vmctl.plan.planner import make_plan

    live = session.read_live()
    return make_plan(session.desired, live, session.uri, targets), live
