"""Saved plans without a hypervisor: what makes one stale, per host."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from vmctl.errors import PlanError
from vmctl.model import DesiredState, GuestSpec, LivePool, LiveState, PoolSpec, VolumeInfo
from vmctl.plan import saved
from vmctl.plan.planner import make_plan


@dataclass
class Planned:
    """What a plan was made from (a Session's part that saved plans use)."""

    desired: DesiredState
    uri: str


def desired(host: str = "") -> DesiredState:
    web = GuestSpec(name="web", guest="web", hostname="web", pool="mine")
    return DesiredState("p", None, (PoolSpec("mine", "/srv/mine"),), (), (), (web,), host=host)


SHARED = LiveState(
    other_domains={"theirs-1": "managed by vmctl for project q"},
    pools=(LivePool("mine", "/srv/mine", True), LivePool("theirs", "/srv/theirs", True)),
    volumes={("theirs", "t1.qcow2"): VolumeInfo("theirs", "t1.qcow2", None)},
)


def save(tmp_path: Path, *hosts: tuple[Planned, LiveState]) -> Path:
    path = tmp_path / "plan.json"
    made = [(make_plan(s.desired, live, s.uri, host=s.desired.host or None), s, live) for s, live in hosts]
    saved.save(str(path), made, [])
    return path


def check(path: Path, *hosts: tuple[Planned, LiveState]) -> None:
    saved.check_fresh(saved.load(str(path)), str(path), list(hosts))


def test_other_projects_coming_and_going_on_a_shared_host_leave_a_saved_plan_fresh(tmp_path: Path) -> None:
    me = Planned(desired(), "qemu:///system")
    path = save(tmp_path, (me, SHARED))
    busy = replace(
        SHARED,
        other_domains={"theirs-2": "not managed by vmctl"},
        pools=(LivePool("mine", "/srv/mine", True),),
        volumes={},
    )
    check(path, (me, busy))
    for moved_on, named in [
        (replace(SHARED, other_domains={"web": "not managed by vmctl"}), "domain web: added on the hypervisor"),
        (
            replace(SHARED, volumes={("mine", "web-root.qcow2"): VolumeInfo("mine", "web-root.qcow2", None)}),
            "volume web-root.qcow2 in pool mine: added on the hypervisor",
        ),
        (replace(SHARED, pools=(SHARED.pools[1],)), "pool mine: removed on the hypervisor"),
    ]:
        with pytest.raises(PlanError) as stale:
            check(path, (me, moved_on))
        assert any(r.startswith(named) for r in stale.value.reasons), stale.value.reasons


def test_a_saved_plan_over_hosts_keeps_each_host_s_uri_and_names_the_host_that_moved_on(tmp_path: Path) -> None:
    a, b = Planned(desired("a"), "qemu:///system"), Planned(desired("b"), "qemu+ssh://ops@rack1/session")
    path = save(tmp_path, (a, SHARED), (b, LiveState()))
    document = json.loads(path.read_text())
    assert saved.saved_hosts(document) == ["a", "b"]
    assert {h: e["connection"] for h, e in document["hosts"].items()} == {"a": a.uri, "b": b.uri}
    check(path, (a, SHARED), (b, LiveState()))
    with pytest.raises(PlanError) as stale:
        check(path, (a, SHARED), (b, LiveState(other_domains={"web": "not managed by vmctl"})))
    assert list(stale.value.reasons) == ["host b: domain web: added on the hypervisor since the plan was made"]
    moved = Planned(a.desired, "qemu+ssh://root@elsewhere/system")  # host a's URI changed in the spec
    with pytest.raises(PlanError) as changed:
        check(path, (moved, SHARED), (b, LiveState()))
    assert [r.split(":")[0] for r in changed.value.reasons] == ["host a"]
