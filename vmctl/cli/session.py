"""The steps every command shares: load the spec, connect to each host, measure, read live state, plan.

A spec without `hosts` has one host, the URI of --connect (or the spec's `connection`). A spec with
`hosts` has a session per host, all connected before anything is read, all read at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from vmctl.errors import ConnectError, HypervisorError, VmctlError
from vmctl.model import DesiredState, HostFacts, LiveState, OwnedState, Owner, Spec, VolumeRef
from vmctl.spec.load import load_spec

if TYPE_CHECKING:
    from vmctl.hypervisor import Hypervisor
    from vmctl.plan.changes import Plan
    from vmctl.resolve.localfiles import LocalFacts, Progress

T = TypeVar("T")


@dataclass
class Session:
    """One command's view of one host: the spec, the hypervisor, and what each says."""

    spec: Spec
    uri: str
    backend: Hypervisor
    host: HostFacts
    desired: DesiredState
    host_name: str | None = None  # the spec's name for this host; None: the spec has no hosts
    whole: Spec | None = None  # the whole spec, when `spec` is this host's share of it

    @property
    def owner(self) -> Owner:
        return self.desired.owner

    @property
    def label(self) -> str:
        """How messages name this host: the spec's name and its URI."""
        return f"host {self.host_name} ({self.uri})" if self.host_name else self.uri

    def read_live(self) -> LiveState:
        disks = [VolumeRef(d.pool, d.volume) for g in self.desired.guests for d in g.disks]
        return self.backend.read_state(self.owner, disks)

    def pool_paths(self, live: LiveState | OwnedState) -> dict[str, str]:
        paths = {p.name: p.path for p in self.desired.pools}
        paths.update({p.name: p.path for p in live.pools})
        return paths


@dataclass(frozen=True, slots=True)
class Target:
    """A host to connect to: the spec's name for it (None without hosts) and its URI."""

    name: str | None
    uri: str


def open_session(
    paths: Sequence[str], workspace: str | None, uri_for: Any, progress: Progress | None = None, resolve: bool = True
) -> Session:
    """One host's session (a spec without hosts, a saved plan): see `open_sessions`."""
    sessions = open_sessions(paths, workspace, uri_for, progress=progress, resolve=resolve)
    if len(sessions) != 1:
        close_all(sessions)
        raise VmctlError("this spec spreads guests over several hosts: this command works on one")
    return sessions[0]


def open_sessions(
    paths: Sequence[str],
    workspace: str | None,
    uri_for: Callable[[str | None], str],
    hosts: Sequence[str] = (),
    progress: Progress | None = None,
    resolve: bool = True,
    connect_given: bool = False,
) -> list[Session]:
    """Load and check the spec first: bad input never reaches a hypervisor. Then connect to every
    host (all at once); if one cannot be reached, the others are closed and nothing is read.

    Without `resolve` (destroy), the guests are not resolved: only the project and its pools matter.
    """
    spec = load_spec(paths, workspace)
    targets = select_targets(spec, uri_for, hosts, connect_given)
    # Connecting (an ssh handshake, for a remote host) goes on while the local files are measured.
    with ThreadPoolExecutor(max(1, len(targets))) as pool:
        connecting = [pool.submit(_connect, t) for t in targets]
        try:
            facts = _local_facts(spec, progress) if resolve else None
        finally:
            backends = _connected(connecting)
    try:
        return in_parallel([partial_session(spec, t, b, facts) for t, b in zip(targets, backends, strict=True)])
    except BaseException:
        for backend in backends:
            backend.close()
        raise


def _local_facts(spec: Spec, progress: Progress | None) -> LocalFacts:
    from vmctl.resolve.localfiles import gather

    if progress is None:
        from vmctl.apply.progress import download_progress

        progress = download_progress()
    return gather(spec, progress)


def select_targets(
    spec: Spec, uri_for: Callable[[str | None], str], hosts: Sequence[str], connect_given: bool
) -> list[Target]:
    """The hosts a command works on: every host of the spec, or those --host names."""
    if not spec.hosts:
        if hosts:
            raise VmctlError("--host: this spec has no hosts", hint="use --connect URI, or add hosts: to the spec")
        return [Target(None, uri_for(spec.connection))]
    if connect_given:
        raise VmctlError(
            "--connect (or VMCTL_CONNECT) cannot apply to a spec with hosts: each host has its URI there",
            hint="narrow to some hosts with --host NAME",
        )
    known = {h.name: h.uri for h in spec.hosts}
    unknown = [h for h in hosts if h not in known]
    if unknown:
        raise VmctlError(f"--host: no host named {', '.join(unknown)}", hint=f"the spec's hosts: {', '.join(known)}")
    chosen = [h.name for h in spec.hosts if not hosts or h.name in hosts]
    return [Target(name, known[name]) for name in chosen]


def _connect(target: Target) -> Hypervisor:
    from vmctl.hypervisor import connect

    try:
        return connect(target.uri)
    except ConnectError as exc:
        if target.name is None:
            raise
        raise ConnectError(f"host {target.name}: connect to {target.uri}", exc.detail, hint=exc.hint) from None


def _connected(connecting: Sequence[Future[Hypervisor]]) -> list[Hypervisor]:
    """Every connection, or none: if one host could not be reached, the others are closed."""
    backends, failure = [], None
    for future in connecting:
        try:
            backends.append(future.result())
        except VmctlError as exc:
            failure = failure or exc
    if failure is not None:
        for backend in backends:
            backend.close()
        raise failure
    return backends


def partial_session(spec: Spec, target: Target, backend: Hypervisor, facts: LocalFacts | None) -> Callable[[], Session]:
    """Measure the host and resolve its share of the spec (called in a worker thread)."""

    def made() -> Session:
        from vmctl.resolve.desired import desired_state, host_pools

        share = spec_for_host(spec, target.name)
        with on_host(target):
            host = backend.host_facts()
        if facts is None:
            desired = DesiredState(spec.project, spec.workspace, host_pools(share.pools, host), (), (), ())
        else:
            desired = desired_state(share, facts, host)
        return Session(share, target.uri, backend, host, desired, target.name, spec)

    return made


def spec_for_host(spec: Spec, host: str | None) -> Spec:
    """The part of the spec one host holds: its guests, and the pools and networks they use."""
    if not spec.hosts:
        return spec
    guests = tuple(g for g in spec.guests if g.host == host)
    # A guest's own pool holds its seed and kernel: needed only when it has them.
    used_pools = {g.pool for g in guests if g.cloud_init or g.boot} | {d.pool for g in guests for d in g.disks}
    used_pools |= {i.pool for i in spec.images if any(d.image == i.name for g in guests for d in g.disks)}
    used_nets = {n.source for g in guests for n in g.nics if n.kind == "network"}
    return replace(
        spec,
        guests=guests,
        pools=tuple(p for p in spec.pools if p.name in used_pools),
        networks=tuple(n for n in spec.networks if n.libvirt_name in used_nets),
    )


class on_host:
    """Errors from one host's hypervisor name the host and its URI (a spec with hosts only)."""

    def __init__(self, target: Target | Session) -> None:
        name = target.name if isinstance(target, Target) else target.host_name
        self.prefix = f"host {name} ({target.uri}): " if name else ""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, _tb: object) -> None:
        if self.prefix and isinstance(exc, HypervisorError) and not exc.message.startswith("host "):
            exc.message = self.prefix + exc.message
            exc.args = (exc.message,)


def in_parallel(work: Sequence[Callable[[], T]]) -> list[T]:
    """Each callable in its own thread (one per host); results in order; the first error raised."""
    if len(work) == 1:
        return [work[0]()]
    with ThreadPoolExecutor(len(work)) as pool:
        futures = [pool.submit(w) for w in work]
    return [f.result() for f in futures]


def close_all(sessions: Sequence[Session]) -> None:
    for session in sessions:
        session.backend.close()


def plan_session(session: Session) -> tuple[Plan, LiveState]:
    from vmctl.plan.planner import make_plan

    with on_host(session):
        live = session.read_live()
    return make_plan(session.desired, live, session.uri, session.host_name), live


def plan_sessions(sessions: Sequence[Session]) -> list[tuple[Plan, LiveState]]:
    """Every host read at once and planned; then what one host's plan means for another (moves)."""
    from vmctl.plan.hosts import across_hosts

    read = in_parallel([partial(plan_session, s) for s in sessions])
    whole = (sessions[0].whole or sessions[0].spec) if sessions else None
    plans = across_hosts([plan for plan, _ in read], placement(whole))
    return [(plan, live) for plan, (_, live) in zip(plans, read, strict=True)]


def placement(spec: Spec | None) -> dict[str, str]:
    """Every guest of the whole spec (whatever --host narrows to) by the host it belongs on."""
    return {g.name: g.host for g in spec.guests if g.host} if spec else {}
