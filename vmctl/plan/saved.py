"""Saved plans: `vmctl plan -o FILE` writes one; `vmctl apply FILE` refuses it once stale."""

from __future__ import annotations

import hashlib
import json
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
        "plan": plan_json(plan),
    }
    Path(path).write_text(json.dumps(document, indent=2) + "\n")


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
        stale.append("the spec (or the files it names) changed since the plan was made")
    if document.get("live_fingerprint") != live_fingerprint(live):
        stale.append("the hypervisor's state changed since the plan was made")
    if stale:
        raise PlanError(
            f"{path} is stale; nothing was changed", reasons=stale, hint="make a new plan: vmctl plan -o FILE"
        )


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
