"""The steps every command shares: load the spec, connect, measure, read live state, plan."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass
from typing import TYPE_CHECKING, Any

from vmctl.desired import desired_state
from vmctl.localfiles import LocalFacts, Progress, gather
from vmctl.model import DesiredState, HostFacts, LiveState, Owner, Spec, VolumeRef
from vmctl.plan import Plan
from vmctl.planner import make_plan
from vmctl.spec import load_spec

if TYPE_CHECKING:
    from vmctl.hypervisor import LibvirtBackend


@dataclass
class Session:
    """One command's view of the world: the spec, the hypervisor, and what each says."""

    spec: Spec
    uri: str
    backend: LibvirtBackend
    host: HostFacts
    facts: LocalFacts
    desired: DesiredState

    @property
    def owner(self) -> Owner:
        return self.desired.owner

    def read_live(self, sized: bool = True) -> LiveState:
        disks = [VolumeRef(d.pool, d.volume) for g in self.desired.guests for d in g.disks] if sized else []
        return self.backend.read_state(self.owner, disks, sized)

    def pool_paths(self, live: LiveState) -> dict[str, str]:
        paths = {p.name: p.path for p in self.desired.pools}
        paths.update({p.name: p.path for p in live.pools})
        return paths


def open_session(
    paths: Sequence[str], workspace: str | None, uri_for: Any, progress: Progress | None = None, resolve: bool = True
) -> Session:
    """Load and check the spec first: bad input never reaches the hypervisor.

    Without `resolve` (destroy), the guests are not resolved: only the project and its pools matter.
    """
    from vmctl.hypervisor import connect

    spec = load_spec(paths, workspace)
    if progress is None:
        from vmctl.progress import download_progress

        progress = download_progress()
    facts = gather(spec, progress) if resolve else LocalFacts()
    uri = uri_for(spec.connection)
    backend = connect(uri)
    if resolve:
        host = backend.host_facts()
        desired = desired_state(spec, facts, host)
    else:
        host = HostFacts(log_dir=backend.log_dir())
        desired = DesiredState(spec.project, spec.workspace, spec.pools, (), (), ())
    return Session(spec, uri, backend, host, facts, desired)


def plan_session(session: Session) -> tuple[Plan, LiveState]:
    live = session.read_live()
    return make_plan(session.desired, live, session.uri), live


def fingerprint(value: Any) -> str:
    """A stable digest of what a plan depends on: compared fields only (not source lines or paths)."""
    text = json.dumps(_plain(value), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value) if f.compare}
    if isinstance(value, Mapping):
        return {_key(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _key(key: Any) -> str:
    return "/".join(map(str, key)) if isinstance(key, tuple) else str(key)


def spec_fingerprint(session: Session) -> str:
    return fingerprint({"desired": session.desired, "uri": session.uri})


def live_fingerprint(live: LiveState) -> str:
    return fingerprint(live)
