"""Expiry, gc, fixed addresses and network restarts, planned and carried out against the fake hypervisor.

The planner's rules pinned here: a plan shows an expiry set or removed but never one merely moving on
with the clock (apply renews it); gc plans only what has expired, never a guest with
prevent_destroy, an object without expiry, or a foreign one; a network whose range changes is
recreated only with --allow-restart, and the running guests' NICs are plugged back.
"""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

from tests.fakes.hypervisor import FakeHypervisor
from vmctl.apply.context import ApplyContext, ApplyOptions
from vmctl.apply.executor import ApplyReport, execute
from vmctl.apply.progress import LineReporter
from vmctl.model import DesiredState, HostFacts, Owner
from vmctl.plan.changes import Action, Kind, Plan
from vmctl.plan.gc import expired_scopes, gc_plan, protected, workspaces
from vmctl.plan.planner import make_plan
from vmctl.resolve.desired import desired_state
from vmctl.resolve.localfiles import LocalFacts
from vmctl.spec.load import load_spec

EARLY, LATER, NOW = "2030-01-01T00:00:00Z", "2030-01-01T02:00:00Z", "2030-01-01T01:00:00Z"
SPEC = """
version: 1
project: ci
pools:
  default: {{path: /ci}}
networks:
  net: {{mode: isolated, ipv4: {network}}}
guests:
  web:
    {extra}
    devices: {{agent: false}}
    disks:
      data: {{size: 1GiB}}
    nics:
      lan: {{network: net{address}}}
"""


def desired(
    tmp_path: Path,
    workspace: str | None = "job",
    network: str = "198.51.100.65/26",
    address: str = "",
    extra: str = "",
    expires: str = "",
    renew: bool = False,
) -> DesiredState:
    path = tmp_path / "vmctl.yaml"
    path.write_text(SPEC.format(network=network, address=address and f", ipv4: {address}", extra=extra))
    state = desired_state(load_spec([str(path)], workspace), LocalFacts(), HostFacts(log_dir=None))
    return replace(state, expires=expires, renew=renew)


def apply(fake: FakeHypervisor, plan: Plan, wanted: DesiredState, allow_restart: bool = False) -> ApplyReport:
    fake.calls.clear()
    options = ApplyOptions(allow_restart=allow_restart, settle_timeout=1, unplug_timeout=1)
    ctx = ApplyContext(fake, wanted, HostFacts(log_dir=None), {"default": "/ci"}, options)
    report = execute(plan, ctx, LineReporter(io.StringIO()))
    assert report.ok, report.failed
    return report


def converge(fake: FakeHypervisor, wanted: DesiredState, allow_restart: bool = False) -> Plan:
    plan = make_plan(wanted, fake.read_state(wanted.owner), "fake:///")
    apply(fake, plan, wanted, allow_restart)
    return plan


def fields(plan: Plan, kind: Kind) -> dict[str, tuple[object, object]]:
    return {f.path: (f.before, f.after) for c in plan.of_kind(kind) for f in c.fields}


def test_a_plan_shows_expiry_set_or_removed_but_not_the_clock_moving_on(tmp_path: Path) -> None:
    fake = FakeHypervisor()
    converge(fake, desired(tmp_path, expires=EARLY, renew=True))
    assert fake.read_owned(None).guests[0].record.owner.expires == EARLY
    later_plan = make_plan(desired(tmp_path, expires=LATER), fake.read_state(Owner("ci", "job")), "fake:///")
    assert later_plan.empty  # `vmctl plan`: the same spec, later: nothing to do
    renewed = converge(fake, desired(tmp_path, expires=LATER, renew=True))  # `vmctl apply`
    assert fields(renewed, Kind.GUEST)["expires"] == (EARLY, LATER)
    assert fields(renewed, Kind.NETWORK)["expires"] == (EARLY, LATER)
    assert {c.action for c in renewed.changes} == {Action.UPDATE}
    assert not fake.called("define") and fake.called("set_metadata") and fake.called("set_network_owner")
    owned = fake.read_owned(None)
    assert owned.guests[0].record.owner.expires == LATER and owned.networks[0].owner.expires == LATER  # type: ignore[union-attr]
    removed = make_plan(desired(tmp_path), fake.read_state(Owner("ci", "job")), "fake:///")
    assert fields(removed, Kind.GUEST)["expires"] == (LATER, None)  # expires_after dropped: shown


def test_gc_plans_only_what_expired_never_protected_or_foreign(tmp_path: Path) -> None:
    fake = FakeHypervisor()
    converge(fake, desired(tmp_path, "old", network="198.51.100.65/28", expires=EARLY))
    converge(fake, desired(tmp_path, "new", network="198.51.100.81/28", expires=LATER))
    converge(fake, desired(tmp_path, "keep", network="198.51.100.97/28"))
    converge(fake, desired(tmp_path, "safe", network="198.51.100.113/28", extra="prevent_destroy: true", expires=EARLY))
    foreign = next(iter(fake.domains.values())).config.replace("urn:vmctl:metadata:1", "urn:other")
    fake.domains["foreign"] = replace(next(iter(fake.domains.values())), config=foreign.replace("old-web", "foreign"))
    everything = fake.read_owned(None)
    scopes = expired_scopes(everything, NOW)
    assert [(s.project, s.workspace) for s in scopes] == [("ci", "old"), ("ci", "safe")]
    assert protected(everything, NOW) == ["safe-web"]
    plan = gc_plan([(s, fake.read_owned(s)) for s in scopes], NOW, "fake:///")
    assert sorted((c.kind.value, c.name) for c in plan.changes if c.kind is not Kind.VOLUME) == [
        ("guest", "old-web"),
        ("network", "old-ci-net"),
        ("pool", "default"),  # made by the old workspace: removed only if empty
    ]
    apply(fake, plan, DesiredState("", None, (), (), (), ()))
    assert "default" in fake.pools  # the other workspaces' volumes are in it
    assert sorted(fake.domains) == ["foreign", "keep-web", "new-web", "safe-web"]
    assert sorted(fake.networks) == ["keep-ci-net", "new-ci-net", "safe-ci-net"]
    assert not [key for key in fake.volumes if key[1].startswith("old-")]
    rows = {w.owner.workspace: w for w in workspaces(fake.read_owned(None))}
    assert rows["keep"].expires == "" and not rows["keep"].expired(NOW)
    assert rows["new"].expires == LATER and not rows["new"].expired(NOW)


def test_fixed_addresses_change_on_the_running_network(tmp_path: Path) -> None:
    fake = FakeHypervisor()
    converge(fake, desired(tmp_path, address="198.51.100.70"))
    assert fake.networks["job-ci-net"].xml.count("198.51.100.70") == 2  # DHCP host and DNS host
    changed = converge(fake, desired(tmp_path, address="198.51.100.72"))
    assert fields(changed, Kind.NETWORK) == {"hosts.web": ("198.51.100.70", "198.51.100.72")}
    assert [name for name, _ in fake.calls if "network" in name] == ["change_network_host"]
    assert make_plan(desired(tmp_path, address="198.51.100.72"), fake.read_state(Owner("ci", "job")), "").empty
    converge(fake, desired(tmp_path))
    assert [name for name, _ in fake.calls if "network" in name] == ["remove_network_host"]
    assert "198.51.100" not in fake.networks["job-ci-net"].xml.split("<ip")[0]


def test_a_range_change_recreates_the_network_only_with_allow_restart(tmp_path: Path) -> None:
    fake = FakeHypervisor()
    converge(fake, desired(tmp_path))
    wider = desired(tmp_path, network="198.51.100.65/27")
    plan = converge(fake, wider)
    (change,) = plan.of_kind(Kind.NETWORK)
    assert change.action is Action.UPDATE_RESTART and change.network and change.network.reattach
    assert not [n for n, _ in fake.calls if n in ("delete_network", "create_network", "detach", "attach")]
    converge(fake, wider, allow_restart=True)
    assert [n for n, _ in fake.calls if n in ("delete_network", "create_network", "detach", "attach")] == [
        "delete_network",
        "create_network",
        "detach",
        "attach",
    ]
    assert make_plan(wider, fake.read_state(wider.owner), "").empty


def test_snapshots_in_the_fake_save_revert_and_go_with_the_guest(tmp_path: Path) -> None:
    fake = FakeHypervisor()
    converge(fake, desired(tmp_path))
    fake.create_snapshot("job-web", "clean")
    fake.power_off("job-web")
    fake.revert_snapshot("job-web", "clean")
    assert fake.is_active("job-web")
    assert [(s.name, s.memory, s.current) for s in fake.snapshots("job-web")] == [("clean", True, True)]
