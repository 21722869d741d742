"""One spec over several hosts, without a hypervisor: placement, moves, rendering, host selection,
where a session's default pool goes, and the apply lock's files and hypervisor side."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import jsonschema
import pytest

from tests.fakes.hypervisor import FakeHypervisor
from vmctl.apply.lock import apply_lock, lock_path
from vmctl.cli.session import select_targets, spec_for_host
from vmctl.errors import LockTimeout, PlanError, VmctlError
from vmctl.hypervisor.livestate import default_pool_path
from vmctl.model import DesiredState, GuestSpec, LivePool, LiveState, LockHolder, Owner
from vmctl.plan.hosts import MOVE, across_hosts
from vmctl.plan.planner import make_plan
from vmctl.plan.render import hosts_json, render_hosts
from vmctl.spec.load import load_spec

ROOT = Path(__file__).resolve().parent.parent

SPEC = """\
version: 1
project: spread
hosts:
  a: {uri: "test:///a"}
  b: {uri: "qemu+ssh://ops@rack1/session"}
networks:
  only-a: {mode: isolated, ipv4: 198.51.100.193/27}
  unused: {mode: isolated, ipv4: 198.51.100.225/27}
guests:
  web: {host: a, nics: {n: {network: only-a}}}
  db: {host: b}
"""


def spec_at(tmp_path: Path, text: str = SPEC):  # type: ignore[no-untyped-def]
    (tmp_path / "vmctl.yaml").write_text(text)
    return load_spec([str(tmp_path / "vmctl.yaml")])


def test_each_host_gets_its_guests_and_only_the_networks_they_use(tmp_path: Path) -> None:
    spec = spec_at(tmp_path)
    a, b = spec_for_host(spec, "a"), spec_for_host(spec, "b")
    assert [g.name for g in a.guests] == ["web"] and [g.name for g in b.guests] == ["db"]
    assert [n.name for n in a.networks] == ["only-a"] and b.networks == ()


def test_host_selection(tmp_path: Path) -> None:
    spec = spec_at(tmp_path)
    uri = lambda _c: "qemu:///system"  # noqa: E731
    assert [(t.name, t.uri) for t in select_targets(spec, uri, ["b"], False)] == [("b", "qemu+ssh://ops@rack1/session")]
    with pytest.raises(VmctlError, match="no host named c"):
        select_targets(spec, uri, ["c"], False)
    with pytest.raises(VmctlError, match="--connect"):
        select_targets(spec, uri, [], True)
    single = spec_at(tmp_path, "version: 1\nproject: p\nguests:\n  g: {}\n")
    assert [(t.name, t.uri) for t in select_targets(single, uri, [], True)] == [(None, "qemu:///system")]
    with pytest.raises(VmctlError, match="no hosts"):
        select_targets(single, uri, ["a"], False)


def guest(name: str, host: str, prevent_destroy: bool = False) -> GuestSpec:
    return GuestSpec(name=name, guest=name, hostname=name, host=host, prevent_destroy=prevent_destroy)


def live_with(guest_spec: GuestSpec) -> LiveState:
    """A live state holding `guest_spec` as vmctl made it (through the fake hypervisor)."""
    from vmctl.libvirtxml.definition import domain_definition, guest_record
    from vmctl.model import HostFacts

    fake = FakeHypervisor()
    desired = DesiredState("spread", None, (), (), (), (guest_spec,))
    fake.define(
        domain_definition(guest_spec, guest_record(guest_spec, desired), HostFacts(log_dir=None), {}), guest_spec.name
    )
    return fake.read_state(Owner("spread"))


def two_plans(moved: GuestSpec) -> list:  # type: ignore[type-arg]
    here = make_plan(
        DesiredState("spread", None, (), (), (), ()),
        live_with(replace_host(moved, "a", prevent_destroy=False)),
        "test:///a",
        host="a",
    )
    there = make_plan(DesiredState("spread", None, (), (), (), (moved,)), LiveState(), "test:///b", host="b")
    return [here, there]


def replace_host(spec: GuestSpec, host: str, prevent_destroy: bool) -> GuestSpec:
    from dataclasses import replace

    return replace(spec, host=host, prevent_destroy=prevent_destroy)


def test_a_guest_moved_to_another_host_is_a_replace_shown_on_both() -> None:
    plans = across_hosts(two_plans(guest("web", "b")), {"web": "b"})
    text = render_hosts(plans)
    assert "host a (test:///a):" in text and "host b (test:///b):" in text
    assert "- guest web will be deleted" in text and "note: moves to host b: a move is a replace" in text
    assert "+ guest web will be created" in text and "note: moves from host a" in text
    document = hosts_json(plans)
    jsonschema.validate(document, json.loads((ROOT / "schemas" / "plan.schema.json").read_text()))
    assert document["connection"] is None and document["hosts"] == {"a": "test:///a", "b": "test:///b"}
    assert [(c["host"], c["action"]) for c in document["changes"]] == [("a", "delete"), ("b", "create")]


def test_a_move_is_refused_by_prevent_destroy_and_when_one_side_is_left_out() -> None:
    with pytest.raises(PlanError) as refused:
        across_hosts(two_plans(guest("web", "b", prevent_destroy=True)), {"web": "b"})
    assert "prevent_destroy is set, but moving it from host a to host b replaces it" in str(refused.value.reasons)
    with pytest.raises(PlanError) as narrowed:
        across_hosts(two_plans(guest("web", "b"))[:1], {"web": "b"})
    assert "which --host leaves out" in str(narrowed.value.reasons)


@pytest.mark.parametrize(
    ("uri", "pools", "expected"),
    [
        ("qemu:///system", [], "/var/lib/libvirt/images"),
        ("qemu+ssh://root@rack1/system", [], "/var/lib/libvirt/images"),
        ("qemu:///session", [], "/xdg/data/libvirt/images"),
        ("qemu+ssh://ops@rack1/session", [], "/home/ops/.local/share/libvirt/images"),
        ("qemu+ssh://rack1/session", [], ""),  # whose home: ssh decides, libvirt cannot say
        ("qemu+ssh://ops@rack1/session", [LivePool("default", "/srv/images", True, None)], "/srv/images"),
    ],
)
def test_where_the_default_pool_goes(
    uri: str, pools: list[LivePool], expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", "/xdg/data")
    assert default_pool_path(uri, pools) == expected


# -- the lock -------------------------------------------------------------------------------------


def test_the_lock_directory_is_private_and_a_planted_link_is_never_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locks = tmp_path / "locks"
    monkeypatch.setenv("VMCTL_LOCK_DIR", str(locks))
    path = lock_path("test:///default", "p", None)
    with apply_lock([("test:///default", FakeHypervisor())], "p", None, timeout=1):
        assert path.stat().st_mode & 0o777 == 0o600
    assert locks.stat().st_mode & 0o777 == 0o700
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    path.symlink_to(victim)
    with (
        pytest.raises(VmctlError, match="symbolic link"),
        apply_lock([("test:///default", FakeHypervisor())], "p", None, timeout=1),
    ):
        pass
    assert victim.read_text() == "precious\n"
    path.unlink()
    locks.chmod(0o777)
    with (
        pytest.raises(VmctlError, match="only it can write"),
        apply_lock([("test:///default", FakeHypervisor())], "p", None, timeout=1),
    ):
        pass


def test_the_lock_on_the_hypervisor_names_its_holder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hypervisor = FakeHypervisor()
    other = LockHolder("ci-runner-7", 4242, "2026-01-02T03:04:05Z", "ci")
    hypervisor.locks["p/"] = other  # another machine's vmctl, with its own lock files
    monkeypatch.setenv("VMCTL_LOCK_DIR", str(tmp_path / "locks"))
    told: list[str] = []
    with (
        pytest.raises(LockTimeout) as timeout,
        apply_lock([("host a", hypervisor)], "p", None, timeout=1.5, on_wait=told.append),
    ):
        pass
    assert told == [
        "another vmctl holds the lock of this project and workspace on host a: pid 4242 on ci@ci-runner-7, since 2026-01-02T03:04:05Z"
    ]
    assert "pid 4242 on ci@ci-runner-7" in timeout.value.message
    hypervisor.locks["p/"] = other
    threading.Timer(0.3, lambda: hypervisor.locks.pop("p/")).start()  # the holder finishes
    quiet: list[str] = []
    with apply_lock([("host a", hypervisor)], "p", None, timeout=5, on_wait=quiet.append):
        assert hypervisor.locks["p/"].pid == os.getpid()
    assert "p/" not in hypervisor.locks  # given back
    assert quiet == []  # a lock given back within a moment (its domain going) is waited for silently


# -- hosts with variables, --target, fixed addresses and moved: -----------------------------------

VARIABLE_SPEC = """\
version: 1
project: spread
variables:
  rack_user: {type: string}
  db_host: {type: string, default: b}
hosts:
  a: {uri: "test:///a"}
  b: {uri: "qemu+ssh://${var.rack_user}@rack1/session"}
networks:
  lan: {mode: isolated, ipv4: 198.51.100.193/27}
moved:
  - {from: www, to: web}
  - {from: database, to: db}
guests:
  web: {host: a, nics: {n: {network: lan, ipv4: 198.51.100.200}}}
  db: {host: "${var.db_host}", nics: {n: {network: lan, ipv4: 198.51.100.201}}}
"""


def test_a_host_and_its_guests_placement_may_come_from_variables(tmp_path: Path) -> None:
    from vmctl.spec.variables import VarInputs

    (tmp_path / "vmctl.yaml").write_text(VARIABLE_SPEC)
    spec = load_spec([str(tmp_path / "vmctl.yaml")], inputs=VarInputs(("rack_user=ops",)))
    assert {h.name: h.uri for h in spec.hosts}["b"] == "qemu+ssh://ops@rack1/session"
    assert {g.name: g.host for g in spec.guests} == {"web": "a", "db": "b"}
    moved = load_spec([str(tmp_path / "vmctl.yaml")], inputs=VarInputs(("rack_user=ops", "db_host=a")))
    assert {g.name: g.host for g in moved.guests} == {"web": "a", "db": "a"}


def test_each_host_reserves_addresses_and_renames_only_for_its_own_guests(tmp_path: Path) -> None:
    from vmctl.spec.variables import VarInputs

    (tmp_path / "vmctl.yaml").write_text(VARIABLE_SPEC)
    spec = load_spec([str(tmp_path / "vmctl.yaml")], inputs=VarInputs(("rack_user=ops",)))
    a, b = spec_for_host(spec, "a"), spec_for_host(spec, "b")
    assert [h.ip for h in a.networks[0].hosts] == ["198.51.100.200"]
    assert [h.ip for h in b.networks[0].hosts] == ["198.51.100.201"]
    assert [(m.old, m.new) for m in a.moves] == [("www", "web")]
    assert [(m.old, m.new) for m in b.moves] == [("database", "db")]


def sessions_for(spec, lives: dict[str, FakeHypervisor]):  # type: ignore[no-untyped-def]
    """A session per host of `spec` over fake hypervisors, its guests unresolved (enough to plan)."""
    from vmctl.cli.session import Session
    from vmctl.model import HostFacts

    made = []
    for host in spec.hosts:
        share = spec_for_host(spec, host.name)
        desired = DesiredState(spec.project, None, (), (), (), share.guests, host=host.name)
        made.append(Session(share, host.uri, lives[host.name], HostFacts(log_dir=None), desired, host.name, spec))
    return made


def plain_spec(tmp_path: Path, db_host: str = "b"):  # type: ignore[no-untyped-def]
    text = "version: 1\nproject: spread\nhosts:\n  a: {uri: 'test:///a'}\n  b: {uri: 'test:///b'}\n"
    text += f"guests:\n  web: {{host: a}}\n  db: {{host: {db_host}}}\n"
    return spec_at(tmp_path, text)


def test_a_target_makes_every_host_s_plan_partial_and_changes_only_its_host(tmp_path: Path) -> None:
    from vmctl.cli.session import plan_sessions

    sessions = sessions_for(plain_spec(tmp_path), {"a": FakeHypervisor(), "b": FakeHypervisor()})
    plans = [plan for plan, _ in plan_sessions(sessions, ["db"])]
    assert [(p.host, p.targets, [c.name for c in p.guest_changes()]) for p in plans] == [
        ("a", ("db",), []),
        ("b", ("db",), ["db"]),
    ]
    text = render_hosts(plans)
    assert text.count("This plan is partial (--target db)") == 1
    assert "host a (test:///a): no changes" in text and "+ guest db will be created" in text
    document = hosts_json(plans)
    jsonschema.validate(document, json.loads((ROOT / "schemas" / "plan.schema.json").read_text()))
    assert document["targets"] == ["db"] and {c["host"] for c in document["changes"]} == {"b"}


def test_a_targeted_guest_the_spec_moved_is_deleted_where_it_was(tmp_path: Path) -> None:
    from vmctl.cli.session import plan_sessions

    a = FakeHypervisor()
    _define_on(a, guest("db", "a"))  # db as vmctl made it on host a, before the spec moved it to b
    sessions = sessions_for(plain_spec(tmp_path), {"a": a, "b": FakeHypervisor()})
    plans = [plan for plan, _ in plan_sessions(sessions, ["db"])]
    on_a = [(c.name, c.action.label, c.notes) for c in plans[0].guest_changes()]
    assert on_a == [("db", "delete", (f"moves to host b: {MOVE}",))]
    assert [c.name for c in plans[1].guest_changes()] == ["db"]
    assert "web" not in render_hosts(plans)  # web is neither compared nor deleted


def _define_on(fake: FakeHypervisor, guest_spec: GuestSpec, recorded_for: str = "") -> None:
    """`guest_spec` as vmctl makes it, its record naming host `recorded_for` (none: as before hosts were recorded)."""
    from vmctl.libvirtxml.definition import domain_definition, guest_record
    from vmctl.model import HostFacts

    desired = DesiredState("spread", None, (), (), (), (guest_spec,), host=recorded_for)
    xml = domain_definition(guest_spec, guest_record(guest_spec, desired), HostFacts(log_dir=None), {})
    fake.define(xml, guest_spec.name)


def test_the_record_names_the_host_and_old_records_without_it_still_read() -> None:
    from vmctl.libvirtxml.definition import guest_record
    from vmctl.libvirtxml.metadata import guest_xml, read_guest_record

    desired = DesiredState("spread", None, (), (), (), (guest("web", "a"),), host="a")
    written = guest_xml(guest_record(guest("web", "a"), desired))
    assert 'host="a"' in written
    record = read_guest_record(written)
    assert record is not None and record.owner.host == "a"
    old = read_guest_record(written.replace(' host="a"', ""))
    assert old is not None and old.owner.host == "" and Owner("spread", host="b").claims(old.owner)


def test_a_guest_recorded_for_another_host_is_left_alone_there_and_never_made_twice(tmp_path: Path) -> None:
    from vmctl.cli.session import plan_sessions

    b = FakeHypervisor()
    _define_on(b, guest("web", "a"), recorded_for="a")  # moved to b outside vmctl: its record still says a
    live = b.read_state(Owner("spread", host="b"))
    assert live.guests == () and live.elsewhere == {"web": "a"} and "host a" in live.other_domains["web"]
    assert b.read_owned(Owner("spread", host="b")).guests == ()  # nor is it b's to destroy
    sessions = sessions_for(plain_spec(tmp_path), {"a": FakeHypervisor(), "b": b})
    with pytest.raises(PlanError) as refused:
        plan_sessions(sessions)
    assert list(refused.value.reasons) == [
        "guest web: host b has it, and its record puts it on host a: vmctl will not make a second one there"
    ]
    assert "two hosts of the spec are one hypervisor" in str(refused.value.hint)
    # The spec putting it on b is no adoption either: a domain of that name is there, and not b's.
    on_b = "version: 1\nproject: spread\nhosts:\n  a: {uri: 'test:///a'}\n  b: {uri: 'test:///b'}\n"
    moved = sessions_for(spec_at(tmp_path, on_b + "guests:\n  web: {host: b}\n"), {"a": FakeHypervisor(), "b": b})
    with pytest.raises(PlanError) as conflict:
        plan_sessions(moved)
    assert "guest web: a domain with that name exists and is this project's guest of host a" in str(
        conflict.value.reasons
    )


def test_one_hypervisor_named_twice_in_hosts_never_deletes_the_other_name_s_guests(tmp_path: Path) -> None:
    from vmctl.cli.session import plan_sessions

    same = FakeHypervisor()  # hosts a and b are one libvirtd
    _define_on(same, guest("web", "a"), recorded_for="a")
    _define_on(same, guest("db", "b"), recorded_for="b")
    sessions = sessions_for(plain_spec(tmp_path), {"a": same, "b": same})
    plans = [plan for plan, _ in plan_sessions(sessions)]
    # Each name plans its own guest only (the fake's guests are not resolved: they differ from the spec).
    assert [[(c.name, c.action.label) for c in p.guest_changes()] for p in plans] == [
        [("web", "update")],
        [("db", "update")],
    ]
    assert [g.name for g in same.read_owned(Owner("spread", host="a")).guests] == ["web"]


def test_a_target_unknown_or_on_a_host_left_out_is_refused_before_reading(tmp_path: Path) -> None:
    from vmctl.cli.session import plan_sessions

    spec = plain_spec(tmp_path)
    sessions = sessions_for(spec, {"a": FakeHypervisor(), "b": FakeHypervisor()})
    with pytest.raises(PlanError, match="no guest named nosuch"):
        plan_sessions(sessions, ["nosuch"])
    with pytest.raises(PlanError, match="on host b, which --host leaves out"):
        plan_sessions(sessions[:1], ["db"])
