"""Saved plans: `vmctl plan -o FILE` writes one; `vmctl apply FILE` refuses it once stale."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vmctl.cli.session import Session, live_fingerprint, spec_fingerprint
from vmctl.errors import PlanError
from vmctl.model.types import LiveState
from vmctl.plan.changes import Plan
from vmctl.plan.render import plan_json

SAVED_FORMAT = "vmctl-saved-plan/1"


def save(path: str, plan: Plan, session: Session, live: LiveState, spec_paths: list[str]) -> None:
    document = {
        "format": SAVED_FORMAT,
        "spec_paths": [str(Path(p).resolve()) for p in spec_paths] or [str(Path("vmctl.yaml").resolve())],
        "workspace": session.spec.workspace,
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


def check_fresh(document: dict[str, Any], path: str, session: Session, live: LiveState) -> None:
    """Refuse, touching nothing, if the spec or the hypervisor changed since the plan was saved."""
    stale = []
    if document.get("spec_fingerprint") != spec_fingerprint(session):
        stale.append("the spec (or the files it names) changed since the plan was made")
    if document.get("live_fingerprint") != live_fingerprint(live):
        stale.append("the hypervisor's state changed since the plan was made")
    if stale:
        raise PlanError(f"{path} is stale; nothing was changed", stale, hint="make a new plan: vmctl plan -o FILE")
