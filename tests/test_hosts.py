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
from vmctl.plan.hosts import across_hosts
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
        "a",
    )
    there = make_plan(DesiredState("spread", None, (), (), (), (moved,)), LiveState(), "test:///b", "b")
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
        apply_lock([("host a", hypervisor)], "p", None, timeout=0.5, on_wait=told.append),
    ):
        pass
    assert told == [
        "another vmctl holds the lock of this project and workspace on host a: pid 4242 on ci@ci-runner-7, since 2026-01-02T03:04:05Z"
    ]
    assert "pid 4242 on ci@ci-runner-7" in timeout.value.message
    threading.Timer(0.3, lambda: hypervisor.locks.pop("p/")).start()  # the holder finishes
    with apply_lock([("host a", hypervisor)], "p", None, timeout=5):
        assert hypervisor.locks["p/"].pid == os.getpid()
    assert "p/" not in hypervisor.locks  # given back
