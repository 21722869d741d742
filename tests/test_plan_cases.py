"""Table-driven plan tests: one folder per case under tests/plan_cases/.

Each case has:
  spec.yaml     the spec as the user has it now
  live.yaml     what the hypervisor holds, described as the spec that was applied (`applied:`, a file
                name) plus what changed behind vmctl's back (`drift:`), foreign objects, and volumes
  plan.txt      the expected plan, exactly as `vmctl plan` prints it (or error.txt for a refused plan)
  steps.txt     how apply will carry it out, as the plan decided: each guest's live requests, disk
                targets, what it writes and its power; each volume's operation
  case.yaml     optional: stub image files to create ({images: {name.qcow2: size}}), host facts,
                `targets: [guest]` (vmctl plan --target);
                `known_bug: why` marks a case whose plan is wrong: it has no expected file yet and
                xfails (UPDATE_GOLDEN leaves it alone) until the bug is fixed and the key removed

In live.yaml, `drift: {domain: {record: {...}}}` replaces fields of vmctl's record; `extra_claims:
[pool/volume]` there adds claimed volumes. A disk whose volume is in `missing_volumes` reads with no
size, as the backend reads it; `volumes: [{pool, name, size}]` adds volumes that are not vmctl's.

Live state is built the way libvirt would hold it: the applied spec is rendered to domain XML and
parsed back, so anything the XML loses shows up here as a difference.
Set UPDATE_GOLDEN=1 to rewrite plan.txt/error.txt after reviewing a change.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from vmctl.errors import PlanError
from vmctl.libvirtxml.definition import domain_definition, guest_record
from vmctl.libvirtxml.readback import read_domain
from vmctl.model import (
    DesiredState,
    GuestRecord,
    GuestSpec,
    HostFacts,
    LiveGuest,
    LiveNetwork,
    LivePool,
    LiveState,
    NetworkSpec,
    Owner,
    VolumeInfo,
    VolumeRef,
)
from vmctl.plan.changes import Change, Plan
from vmctl.plan.planner import make_plan
from vmctl.plan.render import render_text
from vmctl.resolve.desired import desired_state
from vmctl.resolve.localfiles import gather
from vmctl.spec.load import load_spec
from vmctl.units import parse_size

from .conftest import stub_qcow2

CASES = Path(__file__).parent / "plan_cases"
URI = "qemu:///system"


def case_names() -> list[str]:
    return sorted(p.name for p in CASES.iterdir() if (p / "spec.yaml").exists())


def prepare(case: str, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path / case
    shutil.copytree(CASES / case, folder)
    meta = yaml.safe_load((folder / "case.yaml").read_text()) if (folder / "case.yaml").exists() else {}
    for name, size in (meta or {}).get("images", {}).items():
        stub_qcow2(folder / "images" / name, parse_size(size))
    return folder, meta or {}


def resolved(path: Path, workspace: str | None, host: HostFacts, cache: Path) -> DesiredState:
    os.environ["VMCTL_CACHE"] = str(cache)
    spec = load_spec([str(path)], workspace)
    return desired_state(spec, gather(spec), host)


def live_from(folder: Path, live_doc: dict[str, Any], host: HostFacts, cache: Path) -> LiveState:
    workspace = live_doc.get("workspace")
    applied = resolved(folder / live_doc["applied"], workspace, host, cache) if live_doc.get("applied") else None
    guests = [_live_guest(g, applied, live_doc, host) for g in (applied.guests if applied else ())]
    guests = [g for g in guests if g.name not in live_doc.get("absent", [])]
    volumes = _volumes(applied, guests, live_doc)
    networks = [_network(n, applied) for n in (applied.networks if applied else ())]
    networks += [_foreign_network(n) for n in live_doc.get("foreign_networks", [])]
    pools = [LivePool(p.name, p.path, True) for p in (applied.pools if applied else ())]
    pools += [LivePool(p["name"], p["path"], p.get("active", True)) for p in live_doc.get("pools", [])]
    return LiveState(tuple(guests), live_doc.get("other_domains", {}), tuple(networks), tuple(pools), volumes)


def _live_guest(guest: GuestSpec, applied: DesiredState, live_doc: dict[str, Any], host: HostFacts) -> LiveGuest:
    drift = live_doc.get("drift", {}).get(guest.name, {})
    record = _record_drifted(guest_record(guest, applied), drift.get("record", {}))
    paths = {p.name: p.path for p in applied.pools}
    xml = domain_definition(guest, record, host, paths)
    view = read_domain(xml, paths, autostart=guest.autostart)
    assert view.guest is not None
    parsed = _with_sizes(replace(view.guest, state="stopped"), guest, live_doc.get("missing_volumes", []))
    config = _drifted(parsed, drift.get("config", {}))
    running = None
    if guest.state == "running":
        running = _drifted(replace(parsed, state="running"), drift.get("running", {}))
    return LiveGuest(guest.name, view.uuid or "uuid-" + guest.name, record, config, running)


def _record_drifted(record: GuestRecord, changes: dict[str, Any]) -> GuestRecord:
    values = dict(changes)
    extra = tuple(VolumeRef(*ref.split("/", 1)) for ref in values.pop("extra_claims", []))
    return replace(record, **values, claims=(*values.pop("claims", record.claims), *extra))


def _with_sizes(spec: GuestSpec, desired: GuestSpec, missing: list[str]) -> GuestSpec:
    """Disk sizes as the backend reads them from the volumes: None where the volume is missing."""
    sizes = {d.name: d.size for d in desired.disks}
    return replace(
        spec,
        disks=tuple(
            replace(d, size=None if f"{d.pool}/{d.volume}" in missing else sizes.get(d.name)) for d in spec.disks
        ),
    )


def _drifted(spec: GuestSpec, changes: dict[str, Any]) -> GuestSpec:
    """Apply `changes` (spec field names and units) to a parsed live guest."""
    values: dict[str, Any] = {}
    for key, value in changes.items():
        if key in ("memory", "max_memory"):
            values[key] = parse_size(value)
        elif key == "disk_sizes":
            sizes = {name: parse_size(size) for name, size in value.items()}
            values["disks"] = tuple(replace(d, size=sizes.get(d.name, d.size)) for d in spec.disks)
        elif key == "remove_disks":
            values["disks"] = tuple(d for d in values.get("disks", spec.disks) if d.name not in value)
        elif key == "remove_nics":
            values["nics"] = tuple(n for n in spec.nics if n.name not in value)
        else:
            values[key] = value
    return replace(spec, **values)


def _volumes(
    applied: DesiredState | None, guests: list[LiveGuest], live_doc: dict[str, Any]
) -> dict[tuple[str, str], VolumeInfo]:
    volumes: dict[tuple[str, str], VolumeInfo] = {}
    for upload in applied.uploads if applied else ():
        volumes[(upload.pool, upload.volume)] = VolumeInfo(upload.pool, upload.volume, None)
    for guest in guests:
        for disk in guest.config.disks:
            volumes[(disk.pool, disk.volume)] = VolumeInfo(disk.pool, disk.volume, disk.size)
        for claim in guest.record.claims:
            volumes.setdefault((claim.pool, claim.name), VolumeInfo(claim.pool, claim.name, None))
    for volume in live_doc.get("volumes", []):
        key = (volume["pool"], volume["name"])
        volumes[key] = VolumeInfo(*key, parse_size(volume["size"]) if "size" in volume else None)
    for missing in live_doc.get("missing_volumes", []):
        volumes.pop(tuple(missing.split("/", 1)), None)  # type: ignore[arg-type]
    return volumes


def _network(net: NetworkSpec, applied: DesiredState) -> LiveNetwork:
    return LiveNetwork(net, Owner(applied.project, applied.workspace), True, True)


def _foreign_network(doc: dict[str, Any]) -> LiveNetwork:
    owner = Owner(doc["project"], doc.get("workspace")) if doc.get("project") else None
    spec = NetworkSpec(doc["name"], doc["name"], doc.get("mode", "isolated"), doc.get("ipv4"), doc.get("dhcp", False))
    return LiveNetwork(spec, owner, True, True)


def compute(case: str, tmp_path: Path) -> tuple[str, Path, dict[str, Any], Plan | None]:
    folder, meta = prepare(case, tmp_path)
    host = HostFacts(**meta.get("host", {}))
    live_doc = yaml.safe_load((folder / "live.yaml").read_text()) or {}
    cache = tmp_path / "cache"
    live = live_from(folder, live_doc, host, cache)
    try:
        desired = resolved(folder / "spec.yaml", meta.get("workspace"), host, cache)
        plan = make_plan(desired, live, URI, meta.get("targets", ()))
        return render_text(plan).replace(str(folder), "<case>"), CASES / case / "plan.txt", meta, plan
    except PlanError as exc:
        return "\n".join([exc.message, *exc.details()]) + "\n", CASES / case / "error.txt", meta, None


def steps_text(plan: Plan) -> str:
    """What apply will do, change by change, as the plan decided it."""
    lines = []
    for change in plan.changes:
        if change.steps is not None:
            lines.extend(_guest_steps(change))
        if change.network is not None:
            lines.extend(_network_steps(change))
        if change.volume is not None:
            step = change.volume
            extra = [f"size {step.size}" if step.size else "", f"disk {step.disk}" if step.disk else ""]
            extra.append(f"device {step.target}" if step.target else "")
            detail = ", ".join(e for e in extra if e)
            lines.append(
                f"volume {step.ref.pool}/{step.ref.name}: {step.work.value}" + (f" ({detail})" if detail else "")
            )
    return "\n".join(lines) + "\n" if lines else "(nothing)\n"


def _network_steps(change: Change) -> list[str]:
    steps = change.network
    assert steps is not None
    lines = [f"network {change.name} ({change.action.label}):"]
    for host in steps.hosts:
        before, after = host.before and host.before.ip, host.after and host.after.ip
        entry = host.after or host.before
        assert entry is not None
        lines.append(f"  live: {host.work.value} host {entry.mac} {before} -> {after} names {','.join(entry.names)}")
    for ref in steps.reattach:
        lines.append(f"  after restart: plug back {ref.guest} NIC {ref.nic.name}")
    flags = [name for name in ("start", "write_owner", "restart") if getattr(steps, name)]
    lines.append("  does: " + (", ".join(flags) or "hosts only"))
    return lines


def _guest_steps(change: Change) -> list[str]:
    steps = change.steps
    assert steps is not None
    lines = [f"guest {change.name} ({change.action.label}):"]
    for request in steps.devices:
        words = [request.work.value, request.device, request.target, str(request.amount) if request.amount else ""]
        lines.append("  live: " + " ".join(w for w in words if w))
    if steps.targets:
        lines.append("  targets: " + ", ".join(f"{disk}={dev}" for disk, dev in sorted(steps.targets.items())))
    writes = [name for name in ("claim_first", "write_config", "write_record", "verify") if getattr(steps, name)]
    lines.append("  writes: " + (", ".join(writes) or "nothing"))
    if steps.autostart is not None:
        lines.append(f"  autostart: {str(steps.autostart).lower()}")
    if steps.rename_from is not None:
        lines.append(f"  rename from: {steps.rename_from}")
    lines.append(f"  power: {steps.power.value}")
    return lines


@pytest.mark.parametrize("case", case_names())
def test_plan_case(case: str, tmp_path: Path) -> None:
    text, expected_file, meta, _plan = compute(case, tmp_path)
    known_bug = meta.get("known_bug")
    if os.environ.get("UPDATE_GOLDEN") and not known_bug:
        expected_file.write_text(text)
    if known_bug and not expected_file.exists():
        pytest.xfail(f"known bug: {known_bug}\nthe plan now is:\n{text}")
    assert expected_file.exists(), f"{case}: expected {expected_file.name} (the plan was: {text})"
    assert text == expected_file.read_text()


@pytest.mark.parametrize("case", [c for c in case_names() if (CASES / c / "plan.txt").exists()])
def test_plan_case_steps(case: str, tmp_path: Path) -> None:
    """Apply executes exactly these: the planner's decisions, pinned per case."""
    _text, _file, _meta, plan = compute(case, tmp_path)
    assert plan is not None
    expected_file = CASES / case / "steps.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        expected_file.write_text(steps_text(plan))
    assert expected_file.exists(), f"{case}: expected steps.txt (the steps were:\n{steps_text(plan)})"
    assert steps_text(plan) == expected_file.read_text()


@pytest.mark.parametrize("case", [c for c in case_names() if (CASES / c / "plan.txt").exists()])
def test_plan_json_follows_its_schema(case: str, tmp_path: Path) -> None:
    """`vmctl plan --json` for every case is valid against schemas/plan.schema.json."""
    import json

    from jsonschema import Draft202012Validator

    from vmctl.plan.render import plan_json

    folder, meta = prepare(case, tmp_path)
    host = HostFacts(**meta.get("host", {}))
    live_doc = yaml.safe_load((folder / "live.yaml").read_text()) or {}
    live = live_from(folder, live_doc, host, tmp_path / "cache")
    desired = resolved(folder / "spec.yaml", meta.get("workspace"), host, tmp_path / "cache")
    document = json.loads(json.dumps(plan_json(make_plan(desired, live, URI, meta.get("targets", ())))))
    schema = json.loads((Path(__file__).parent.parent / "schemas" / "plan.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    errors = [e.message for e in Draft202012Validator(schema).iter_errors(document)]
    assert errors == []
