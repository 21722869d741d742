"""Saved plans: `vmctl plan -o FILE` writes one; `vmctl apply FILE` refuses it once stale."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from vmctl.errors import PlanError
from vmctl.model import DesiredState, LiveState
from vmctl.plan.changes import Plan
from vmctl.plan.render import hosts_json, plan_json

SAVED_FORMAT = "vmctl-saved-plan/1"


class PlannedFrom(Protocol):
    """What a plan was made from: the desired state and the hypervisor's URI."""

    @property
    def desired(self) -> DesiredState: ...

    @property
    def uri(self) -> str: ...


def save(
    path: str,
    planned: Sequence[tuple[Plan, PlannedFrom, LiveState]],
    spec_paths: list[str],
    inputs: Any = None,
) -> None:
    """Write each host's plan with what it was made from. Variables given with --var are kept, but
    never a sensitive one: applying the plan asks for those again (--var, VMCTL_VAR_NAME).

    A spec with hosts keeps, per host, its URI and what its plan was made from; `apply FILE` works
    on those hosts only.
    """
    plans = [plan for plan, _, _ in planned]
    first = planned[0][1].desired
    args = [a for a in (inputs.args if inputs else ()) if not any(s in a.partition("=")[2] for s in first.secrets)]
    document: dict[str, Any] = {
        "format": SAVED_FORMAT,
        "spec_paths": [str(Path(p).resolve()) for p in spec_paths] or [str(Path("vmctl.yaml").resolve())],
        "var_files": [str(Path(p).resolve()) for p in (inputs.files if inputs else ())],
        "vars": args,
        "targets": list(plans[0].targets),
        "workspace": first.workspace,
    }
    if not first.host:
        _, session, live = planned[0]
        document.update({"connection": session.uri, **_made_from(session, live), "plan": plan_json(plans[0])})
    else:
        hosts = {s.desired.host: {"connection": s.uri, **_made_from(s, live)} for _, s, live in planned}
        document.update({"connection": None, "hosts": hosts, "plan": hosts_json(plans)})
    _write_private(Path(path), json.dumps(document, indent=2) + "\n")


def saved_hosts(document: Mapping[str, Any]) -> list[str]:
    """The hosts a saved plan is for, by the spec's names; none for a spec without hosts."""
    return list(document.get("hosts") or {})


def _made_from(session: PlannedFrom, live: LiveState) -> dict[str, Any]:
    relevant = depended_on(live, session.desired)
    return {
        "spec_fingerprint": spec_fingerprint(session),
        "live_fingerprint": live_fingerprint(relevant),
        "spec_objects": spec_objects(session),
        "live_objects": live_objects(relevant),
    }


def depended_on(live: LiveState, desired: DesiredState) -> LiveState:
    """The part of a host's state a plan of `desired` depends on: this project's objects, and others
    only where the spec names them (a domain or network of a wanted name, a pool it names or one at a
    path it names, the volumes of the pools it uses). On a shared host other projects come and go all
    the time: that makes no saved plan stale."""
    guests = {g.name for g in desired.guests}
    networks = {n.libvirt_name for n in desired.networks}
    pools = {p.name for p in desired.pools} | {u.pool for u in desired.uploads}
    pools |= {c.pool for g in live.guests for c in g.record.claims}
    paths = {p.path for p in desired.pools}
    return replace(
        live,
        other_domains={n: who for n, who in live.other_domains.items() if n in guests},
        networks=tuple(
            n for n in live.networks if n.spec.libvirt_name in networks or desired.owner.same_scope(n.owner)
        ),
        pools=tuple(p for p in live.pools if p.name in pools or p.path in paths),
        volumes={key: v for key, v in live.volumes.items() if key[0] in pools},
        adoptable={n: g for n, g in live.adoptable.items() if n in guests},
    )


def _write_private(path: Path, text: str) -> None:
    """Readable by its owner only: a plan names guests, networks and what changes in their cloud-init."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
        file.write(text)


def load(path: str) -> dict[str, Any]:
    try:
        document: dict[str, Any] = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise PlanError(f"{path}: not a saved vmctl plan ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != SAVED_FORMAT:
        raise PlanError(f"{path}: not a saved vmctl plan", hint="make one with: vmctl plan -o FILE")
    return document


def check_fresh(document: Mapping[str, Any], path: str, read: Sequence[tuple[PlannedFrom, LiveState]]) -> None:
    """Refuse, touching nothing, if the spec or any host's hypervisor changed since the plan was saved."""
    stale = []
    for session, live in read:
        host = session.desired.host
        then = document["hosts"].get(host) if host else document
        where = f"host {host}: " if host else ""
        if not isinstance(then, Mapping):
            stale.append(f"{where}not in the plan")  # the spec put another host under that name since
            continue
        stale.extend(where + reason for reason in _stale(then, session, live))
    if stale:
        raise PlanError(
            f"{path} is stale; nothing was changed", reasons=stale, hint="make a new plan: vmctl plan -o FILE"
        )


def _stale(then: Mapping[str, Any], session: PlannedFrom, live: LiveState) -> list[str]:
    stale = []
    if then.get("spec_fingerprint") != spec_fingerprint(session):
        named = _differences(then.get("spec_objects"), spec_objects(session), "in the spec")
        stale.extend(named or ["the spec (or the files it names) changed since the plan was made"])
    relevant = depended_on(live, session.desired)
    if then.get("live_fingerprint") != live_fingerprint(relevant):
        named = _differences(then.get("live_objects"), live_objects(relevant), "on the hypervisor")
        stale.extend(named or ["the hypervisor's state changed since the plan was made"])
    return stale


def spec_objects(session: PlannedFrom) -> dict[str, str]:
    """A digest per object the spec asks for, so a stale plan can name what changed."""
    desired = session.desired
    objects: dict[str, Any] = {f"guest {g.name}": g for g in desired.guests}
    objects.update({f"network {n.libvirt_name}": n for n in desired.networks})
    objects.update({f"pool {p.name}": p for p in desired.pools})
    objects.update({f"image {u.volume} in pool {u.pool}": u for u in desired.uploads})
    return {name: fingerprint(value) for name, value in objects.items()}


def live_objects(live: LiveState) -> dict[str, str]:
    """A digest per object of a host's state (what a plan depends on: see `depended_on`)."""
    objects: dict[str, Any] = {f"guest {g.name}": g for g in live.guests}
    objects.update({f"domain {name}": owner for name, owner in live.other_domains.items()})
    objects.update({f"network {n.spec.libvirt_name}": n for n in live.networks})
    objects.update({f"pool {p.name}": p for p in live.pools})
    objects.update({f"volume {name} in pool {pool}": v for (pool, name), v in live.volumes.items()})
    return {name: fingerprint(value) for name, value in objects.items()}


def _differences(then: object, now: dict[str, str], where: str) -> list[str]:
    if not isinstance(then, dict):
        return []  # a plan saved by an older vmctl: only the whole can be compared
    gone = [f"{name}: removed {where} since the plan was made" for name in then if name not in now]
    new = [f"{name}: added {where} since the plan was made" for name in now if name not in then]
    changed = [
        f"{name}: changed {where} since the plan was made" for name in then if now.get(name, then[name]) != then[name]
    ]
    return sorted(gone + new + changed)


def spec_fingerprint(session: PlannedFrom) -> str:
    return fingerprint({"desired": session.desired, "uri": session.uri})


def live_fingerprint(live: LiveState) -> str:
    return fingerprint(live)


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
