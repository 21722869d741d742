"""The steps every command shares: load the spec, connect to each host, measure, read live state, plan.

A spec without `hosts` has one host, the URI of --connect (or the spec's `connection`). A spec with
`hosts` has a session per host, all connected before anything is read, all read at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from vmctl.errors import ConnectError, HypervisorError, VmctlError
from vmctl.model import DesiredState, HostFacts, LiveState, OwnedState, Owner, Spec, VolumeRef
from vmctl.units import utc_timestamp

if TYPE_CHECKING:
    from vmctl.hypervisor import Hypervisor
    from vmctl.plan.changes import Plan
    from vmctl.resolve.localfiles import LocalFacts, Progress
    from vmctl.spec.variables import VarInputs

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


@dataclass(frozen=True, slots=True)
class Target:
    """A host to connect to: the spec's name for it (None without hosts) and its URI."""

    name: str | None
    uri: str


def open_session(
    paths: Sequence[str],
    workspace: str | None,
    uri_for: Any,
    progress: Progress | None = None,
    resolve: bool = True,
    inputs: VarInputs | None = None,
    expiry: Expiry = Expiry(),
) -> Session:
    """One host's session (a spec without hosts, a saved plan): see `open_sessions`."""
    sessions = open_sessions(
        paths, workspace, uri_for, progress=progress, resolve=resolve, inputs=inputs, expiry=expiry
    )
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
    inputs: VarInputs | None = None,
    expiry: Expiry = Expiry(),
    for_guest: str | None = None,
) -> list[Session]:
    """Load and check the spec (with its variables' values from `inputs`) first: bad input never
    reaches a hypervisor. Then connect to every host (all at once); if one cannot be reached, the
    others are closed and nothing is read.

    Without `resolve` (destroy), the guests are not resolved: only the project and its pools matter.
    Every host's desired state carries the same expiry, computed once. A command about one guest
    (`for_guest`) connects only to the host the spec puts it on, unless --host says otherwise.
    """
    # --connect names the one host before the spec is read: connecting to it (an ssh handshake, for a
    # remote host) starts now and goes on while the spec loads. A spec that cannot be used still wins.
    early = _connect_early(Target(None, uri_for(None))) if connect_given else None
    try:
        from vmctl.spec.load import load_spec  # loaded while the connection is made

        spec = load_spec(paths, workspace, inputs)
        if for_guest and spec.hosts and not hosts:
            hosts = sorted({g.host for g in spec.guests if g.host and for_guest in (g.name, g.hostname, g.guest)})
        targets = select_targets(spec, uri_for, hosts, connect_given)
    except BaseException:
        if early is not None:
            early.add_done_callback(_close_unused)
        raise
    # Connecting goes on while the local files are measured.
    with ThreadPoolExecutor(max(1, len(targets))) as pool:
        connecting = [early] if early is not None else [pool.submit(_connect, t) for t in targets]
        try:
            facts = _local_facts(spec, progress) if resolve else None
        finally:
            backends = _connected(connecting)
    after = expiry.after if expiry.after is not None else spec.expires_after
    expires = utc_timestamp(time.time() + after) if after else ""
    try:
        sessions = in_parallel([partial_session(spec, t, b, facts) for t, b in zip(targets, backends, strict=True)])
        for session in sessions:
            session.desired = replace(session.desired, expires=expires, renew=expiry.renew)
        return sessions
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


def _connect_early(target: Target) -> Future[Hypervisor]:
    """Connecting in a thread of its own, which no one need wait for if the connection goes unused."""
    worker = ThreadPoolExecutor(1)
    try:
        return worker.submit(_connect, target)
    finally:
        worker.shutdown(wait=False)


def _close_unused(connecting: Future[Hypervisor]) -> None:
    if not connecting.cancelled() and connecting.exception() is None:
        connecting.result().close()


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
            pools = host_pools(share.pools, host)
            desired = DesiredState(spec.project, spec.workspace, pools, (), (), (), secrets=spec.secrets)
        else:
            desired = desired_state(share, facts, host)
        desired = replace(desired, host=target.name or "")  # recorded in what is made there
        return Session(share, target.uri, backend, host, desired, target.name, spec)

    return made


def spec_for_host(spec: Spec, host: str | None) -> Spec:
    """The part of the spec one host holds: its guests, the pools and networks they use (each
    network with the fixed addresses of this host's guests only), and the renames of its guests."""
    if not spec.hosts:
        return spec
    guests = tuple(g for g in spec.guests if g.host == host)
    names = {g.name for g in guests}
    macs = {nic.mac.lower() for g in guests for nic in g.nics}
    # A guest's own pool holds its seed and kernel: needed only when it has them.
    used_pools = {g.pool for g in guests if g.cloud_init or g.boot} | {d.pool for g in guests for d in g.disks}
    used_pools |= {i.pool for i in spec.images if any(d.image == i.name for g in guests for d in g.disks)}
    used_nets = {n.source for g in guests for n in g.nics if n.kind == "network"}
    return replace(
        spec,
        guests=guests,
        pools=tuple(p for p in spec.pools if p.name in used_pools),
        networks=tuple(
            replace(n, hosts=tuple(h for h in n.hosts if h.mac.lower() in macs))
            for n in spec.networks
            if n.libvirt_name in used_nets
        ),
        moves=tuple(m for m in spec.moves if m.new in names),
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


@contextmanager
def closed_before_unlock(sessions: Sequence[Session]) -> Iterator[None]:
    """Close the sessions as the block ends: inside a lock's block, before the lock is given back.
    libvirtd holds a connection's close back while it destroys a lock domain (0.2 s on libvirt 9.0),
    and giving a lock back destroys one."""
    try:
        yield
    finally:
        close_all(sessions)


def plan_session(session: Session, targets: Sequence[str] = ()) -> tuple[Plan, LiveState]:
    """Read one host and plan it; with `targets` (--target), only those guests and what they need."""
    from vmctl.plan.planner import make_plan

    with on_host(session):
        live = session.read_live()
    if session.host_name is None or not targets:
        return make_plan(session.desired, live, session.uri, targets, host=session.host_name), live
    return _targeted_plan(session, live, targets), live


def _targeted_plan(session: Session, live: LiveState, targets: Sequence[str]) -> Plan:
    """One host's share of a partial plan. Every host's plan names the whole --target list (so each
    says it is partial); a host none of them is on changes nothing; a targeted guest the spec moved
    away from this host is deleted here, as without --target, so it is never left on two hosts."""
    from vmctl.plan.changes import Action, Kind
    from vmctl.plan.changes import Plan as PlanType
    from vmctl.plan.planner import make_plan

    named = set(targets)
    here = [t for t in targets if any({g.name, g.hostname, g.guest} & {t} for g in session.desired.guests)]
    if here:
        plan = make_plan(session.desired, live, session.uri, here, host=session.host_name)
    else:
        plan = PlanType(session.owner.project, session.owner.workspace, session.uri, (), session.desired)
    whole = session.whole or session.spec
    placed = placement(whole)
    leaving = {
        g.name
        for g in whole.guests
        if {g.name, g.hostname, g.guest} & named and placed.get(g.name) != session.host_name and live.guest(g.name)
    }
    if leaving:
        full = make_plan(session.desired, live, session.uri, host=session.host_name)
        gone = [
            c
            for c in full.changes
            if c.action is Action.DELETE and ((c.kind is Kind.GUEST and c.name in leaving) or c.guest in leaving)
        ]
        plan = replace(plan, changes=(*plan.changes, *gone))
    return replace(plan, targets=tuple(sorted(named)), host=session.host_name)


def plan_sessions(sessions: Sequence[Session], targets: Sequence[str] = ()) -> list[tuple[Plan, LiveState]]:
    """Every host read at once and planned; then what one host's plan means for another (moves).

    A --target that names no guest of the spec, or only guests on hosts --host leaves out, is refused
    before any host is read."""
    from vmctl.plan.hosts import across_hosts

    whole = (sessions[0].whole or sessions[0].spec) if sessions else None
    if targets and whole is not None and whole.hosts:
        _check_targets(whole, sessions, targets)
    read = in_parallel([partial(plan_session, s, targets) for s in sessions])
    plans = across_hosts([plan for plan, _ in read], placement(whole), {p.host: live.elsewhere for p, live in read})
    return [(plan, live) for plan, (_, live) in zip(plans, read, strict=True)]


def _check_targets(whole: Spec, sessions: Sequence[Session], targets: Sequence[str]) -> None:
    from vmctl.errors import PlanError

    chosen = {s.host_name for s in sessions}
    for target in targets:
        hosts = {g.host for g in whole.guests if target in (g.name, g.hostname, g.guest)}
        if not hosts:
            names = ", ".join(sorted({g.hostname for g in whole.guests})) or "none"
            raise PlanError(f"--target: no guest named {target} in the spec", hint=f"guests: {names}")
        if not hosts & chosen:
            where = ", ".join(sorted(h for h in hosts if h))
            raise PlanError(
                f"--target {target}: it is on host {where}, which --host leaves out", hint=f"add --host {where}"
            )


def placement(spec: Spec | None) -> dict[str, str]:
    """Every guest of the whole spec (whatever --host narrows to) by the host it belongs on."""
    return {g.name: g.host for g in spec.guests if g.host} if spec else {}
