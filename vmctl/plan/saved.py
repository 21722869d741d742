"""Saved plans: `vmctl plan -o FILE` writes one; `vmctl apply FILE` refuses it once stale."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, Protocol

from vmctl.errors import PlanError
from vmctl.model import DesiredState, LiveState
from vmctl.plan.changes import Plan
from vmctl.plan.render import plan_json

SAVED_FORMAT = "vmctl-saved-plan/1"


class PlannedFrom(Protocol):
    """What a plan was made from: the desired state and the hypervisor's URI."""

    @property
    def desired(self) -> DesiredState: ...

    @property
    def uri(self) -> str: ...


def save(
    path: str, plan: Plan, session: PlannedFrom, live: LiveState, spec_paths: list[str], inputs: Any = None
) -> None:
    """Write the plan with what it was made from. Variables given with --var are kept, but never a
    sensitive one: applying the plan asks for those again (--var, VMCTL_VAR_NAME)."""
    secrets = session.desired.secrets
    args = [a for a in (inputs.args if inputs else ()) if not any(s in a.partition("=")[2] for s in secrets)]
    document = {
        "format": SAVED_FORMAT,
        "spec_paths": [str(Path(p).resolve()) for p in spec_paths] or [str(Path("vmctl.yaml").resolve())],
        "var_files": [str(Path(p).resolve()) for p in (inputs.files if inputs else ())],
        "vars": args,
        "targets": list(plan.targets),
        "workspace": session.desired.workspace,
        "connection": session.uri,
        "spec_fingerprint": spec_fingerprint(session),
        "live_fingerprint": live_fingerprint(live),
        "spec_objects": spec_objects(session),
        "live_objects": live_objects(live),
        "plan": plan_json(plan),
    }
    _write_private(Path(path), json.dumps(document, indent=2) + "\n")


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


def check_fresh(document: dict[str, Any], path: str, session: PlannedFrom, live: LiveState) -> None:
    """Refuse, touching nothing, if the spec or the hypervisor changed since the plan was saved."""
    stale = []
    if document.get("spec_fingerprint") != spec_fingerprint(session):
        named = _differences(document.get("spec_objects"), spec_objects(session), "in the spec")
        stale.extend(named or ["the spec (or the files it names) changed since the plan was made"])
    if document.get("live_fingerprint") != live_fingerprint(live):
        named = _differences(document.get("live_objects"), live_objects(live), "on the hypervisor")
        stale.extend(named or ["the hypervisor's state changed since the plan was made"])
    if stale:
        raise PlanError(
            f"{path} is stale; nothing was changed", reasons=stale, hint="make a new plan: vmctl plan -o FILE"
        )


def spec_objects(session: PlannedFrom) -> dict[str, str]:
    """A digest per object the spec asks for, so a stale plan can name what changed."""
    desired = session.desired
    objects: dict[str, Any] = {f"guest {g.name}": g for g in desired.guests}
    objects.update({f"network {n.libvirt_name}": n for n in desired.networks})
    objects.update({f"pool {p.name}": p for p in desired.pools})
    objects.update({f"image {u.volume} in pool {u.pool}": u for u in desired.uploads})
    return {name: fingerprint(value) for name, value in objects.items()}


def live_objects(live: LiveState) -> dict[str, str]:
    """A digest per object the hypervisor has (of this project's, and every volume of its pools)."""
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
