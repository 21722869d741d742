"""Apply does what the plan says and nothing else: it walks the planned steps and never re-decides.

Run against the fake hypervisor, which records every call: a plan whose effect is a restart never
hot-plugs, a live plan never restarts, and a plan whose steps were changed after planning is carried
out as changed (apply did not compare spec and guest again on its own).
"""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

from tests.fakes.hypervisor import FakeHypervisor
from vmctl.apply.context import ApplyContext, ApplyOptions
from vmctl.apply.executor import ApplyReport, execute
from vmctl.apply.progress import LineReporter
from vmctl.libvirtxml.tree import parse
from vmctl.model import DesiredState, HostFacts
from vmctl.plan.changes import Action, DeviceStep, DeviceWork, GuestSteps, Kind, Plan, Power, VolumeWork
from vmctl.plan.planner import make_plan
from vmctl.resolve.desired import desired_state
from vmctl.resolve.localfiles import LocalFacts
from vmctl.spec.load import load_spec

GIB = 1024**3
LIVE_REQUESTS = ("attach", "detach", "update_device", "set_memory", "set_vcpus", "block_resize")
POWER = ("shutdown", "power_off", "start")
SPEC = """
version: 1
project: walk
pools:
  default: {{path: /walk}}
guests:
  web:
    cpus: 2
    max_cpus: 4
    memory: {memory}
    max_memory: {max_memory}
    devices: {{agent: false}}
    disks:
      data: {{size: 1GiB}}
    nics:
      uplink: {{user: {{}}}}
"""


def desired(tmp_path: Path, memory: str = "1GiB", max_memory: str = "2GiB") -> DesiredState:
    path = tmp_path / f"{memory}-{max_memory}.yaml"
    path.write_text(SPEC.format(memory=memory, max_memory=max_memory))
    return resolved(path)


def resolved(path: Path) -> DesiredState:
    return desired_state(load_spec([str(path)], None), LocalFacts(), HostFacts(log_dir=None))


def plan_for(fake: FakeHypervisor, wanted: DesiredState) -> Plan:
    return make_plan(wanted, fake.read_state(wanted.owner), "fake:///")


def apply(fake: FakeHypervisor, plan: Plan, wanted: DesiredState, allow_restart: bool = False) -> ApplyReport:
    report = carry_out(fake, plan, wanted, allow_restart)
    assert report.ok, [(o.subject, o.summary) for o in report.failed]
    return report


def carry_out(fake: FakeHypervisor, plan: Plan, wanted: DesiredState, allow_restart: bool = False) -> ApplyReport:
    fake.calls.clear()
    options = ApplyOptions(allow_restart=allow_restart, settle_timeout=1, unplug_timeout=1)
    ctx = ApplyContext(fake, wanted, HostFacts(log_dir=None), {"default": "/walk"}, options)
    return execute(plan, ctx, LineReporter(io.StringIO()))


def running_guest(tmp_path: Path) -> FakeHypervisor:
    fake = FakeHypervisor()
    first = desired(tmp_path)
    apply(fake, plan_for(fake, first), first)
    assert fake.is_active("web")
    return fake


def operations(fake: FakeHypervisor, names: tuple[str, ...]) -> list[str]:
    return [name for name, _args in fake.calls if name in names]


def guest_change(plan: Plan) -> int:
    return next(i for i, c in enumerate(plan.changes) if c.kind is Kind.GUEST)


def test_a_plan_that_needs_a_restart_never_hot_plugs(tmp_path: Path) -> None:
    fake = running_guest(tmp_path)
    wanted = desired(tmp_path, max_memory="4GiB")
    plan = plan_for(fake, wanted)
    assert plan.guest_changes()[0].action is Action.UPDATE_RESTART
    report = apply(fake, plan, wanted)
    assert operations(fake, LIVE_REQUESTS + POWER) == []
    assert len(fake.called("define")) == 1  # written to the config, waiting for a restart
    assert any("apply --allow-restart" in w for o in report.outcomes for w in o.warnings)


def test_a_live_plan_never_restarts_even_when_restarts_are_allowed(tmp_path: Path) -> None:
    fake = running_guest(tmp_path)
    wanted = desired(tmp_path, memory="1536MiB")
    plan = plan_for(fake, wanted)
    assert plan.guest_changes()[0].action is Action.UPDATE
    apply(fake, plan, wanted, allow_restart=True)
    assert operations(fake, POWER) == []
    assert fake.called("set_memory") == [("web", 1536 * 1024**2, True)]


def test_apply_carries_out_the_steps_as_planned_not_as_it_would_decide(tmp_path: Path) -> None:
    fake = running_guest(tmp_path)
    wanted = desired(tmp_path, memory="1536MiB")
    plan = plan_for(fake, wanted)
    index = guest_change(plan)
    change = plan.changes[index]
    assert change.steps is not None and change.steps.devices == (DeviceStep(DeviceWork.BALLOON, amount=1536 * 1024**2),)
    # The same change, with its live request taken out and a restart asked for instead.
    steps = replace(change.steps, devices=(), verify=False, power=Power.RESTART)
    altered = replace(plan, changes=(*plan.changes[:index], replace(change, steps=steps), *plan.changes[index + 1 :]))
    apply(fake, altered, wanted, allow_restart=True)
    assert operations(fake, LIVE_REQUESTS) == []
    assert operations(fake, POWER) == ["shutdown", "start"]


def test_a_stopped_guests_record_only_change_is_a_metadata_write_not_a_redefine(tmp_path: Path) -> None:
    fake = running_guest(tmp_path)
    fake.shutdown("web", 1)
    wanted = desired(tmp_path)
    guest = wanted.guests[0]
    protected = replace(wanted, guests=(replace(guest, state="stopped", prevent_destroy=True),))
    plan = plan_for(fake, protected)
    assert [f.path for f in plan.guest_changes()[0].fields] == ["prevent_destroy"]
    apply(fake, plan, protected)
    assert fake.called("define") == []
    assert len(fake.called("set_metadata")) == 1
    assert plan_for(fake, protected).empty


def test_the_planned_disk_target_is_the_one_plugged_and_written(tmp_path: Path) -> None:
    fake = running_guest(tmp_path)
    wanted = desired(tmp_path)
    guest = wanted.guests[0]
    extra = replace(guest.disks[0], name="logs", volume="web-logs.qcow2")
    more = replace(wanted, guests=(replace(guest, disks=(*guest.disks, extra)),))
    plan = plan_for(fake, more)
    steps = plan.guest_changes()[0].steps
    assert isinstance(steps, GuestSteps)
    target = steps.targets["logs"]
    apply(fake, plan, more)
    plugged = fake.called("attach")
    assert len(plugged) == 1 and f'dev="{target}"' in str(plugged[0][1])
    assert f'dev="{target}"' in fake.domain_xml("web", inactive=True)
    assert plan_for(fake, more).empty


def test_a_guest_removed_after_planning_is_not_brought_back_by_its_update(tmp_path: Path) -> None:
    fake = running_guest(tmp_path)
    fake.shutdown("web", 1)
    wanted = desired(tmp_path, memory="1536MiB")
    plan = plan_for(fake, wanted)
    assert plan.guest_changes()[0].action is Action.UPDATE
    fake.undefine("web")  # by hand, while the plan waited to be confirmed
    report = carry_out(fake, plan, wanted)
    assert [o.summary for o in report.failed] == [
        "guest web: its domain was removed since the plan was made; nothing was changed"
    ]
    assert fake.called("define") == [] and fake.domain_names() == []


def test_a_live_request_the_guest_does_not_honour_is_reported_not_done_and_stays_planned(tmp_path: Path) -> None:
    # libvirt accepts a balloon or an unplug at once; the guest's OS carries it out, or, with none
    # booted, never does. apply reads the guest again, and must not call that done.
    fake = running_guest(tmp_path)
    fake.no_guest_os.add("web")
    wanted = desired(tmp_path, memory="1536MiB")
    report = carry_out(fake, plan_for(fake, wanted), wanted)
    assert operations(fake, LIVE_REQUESTS) == ["set_memory"]
    assert [o.summary for o in report.failed] == [
        "not yet done: memory (the guest has not honoured the request; apply again later)"
    ]
    assert [f.path for f in plan_for(fake, wanted).guest_changes()[0].fields] == ["memory"]


def spec_of(tmp_path: Path, extra: str, guests: str) -> DesiredState:
    """The project `walk` with `extra` top-level sections and these guests (YAML under `guests:`)."""
    path = tmp_path / "other.yaml"
    path.write_text(f"version: 1\nproject: walk\npools:\n  default: {{path: /walk}}\n{extra}guests:\n{guests}")
    return resolved(path)


def test_a_domain_the_spec_gives_to_another_guest_is_made_anew_for_it(tmp_path: Path) -> None:
    disk = "    devices: {agent: false}\n    disks:\n      data: {size: 1GiB}\n"
    fake = FakeHypervisor()
    counted = spec_of(tmp_path, "", f"  web:\n    count: 2\n{disk}")
    apply(fake, plan_for(fake, counted), counted)
    old_data = fake.volumes[("default", "web-1-data.qcow2")]
    old_data.data = b"the counted guest's files"
    explicit = spec_of(tmp_path, "", f"  web-1:\n{disk}")
    plan = plan_for(fake, explicit)
    assert [(c.name, c.action) for c in plan.guest_changes()] == [("web-1", Action.REPLACE), ("web-2", Action.DELETE)]
    apply(fake, plan, explicit)
    assert operations(fake, POWER) == ["shutdown", "start", "shutdown"]  # web-1 stopped, made anew, started; web-2
    assert fake.domain_names() == ["web-1"] and fake.is_active("web-1")
    owned = fake.read_owned(explicit.owner).guests
    assert [(g.name, g.record.guest) for g in owned] == [("web-1", "web-1")]
    assert fake.volumes[("default", "web-1-data.qcow2")].data == b""  # the disk was made anew
    assert ("default", "web-2-data.qcow2") not in fake.volumes
    assert plan_for(fake, explicit).empty


def test_a_disk_the_guest_does_not_release_is_not_deleted(tmp_path: Path) -> None:
    fake = running_guest(tmp_path)
    fake.no_guest_os.add("web")
    unplugged = spec_of(tmp_path, "", "  web:\n    memory: 1GiB\n    max_memory: 2GiB\n    devices: {agent: false}\n")
    plan = plan_for(fake, unplugged)
    assert any(c.volume and c.volume.work is VolumeWork.DELETE for c in plan.changes)
    report = carry_out(fake, plan, unplugged)
    assert [o.summary for o in report.failed] == [
        "web: hot-unplug disk data failed: the guest did not release it within 1s (removed from its config: "
        "gone at the next restart; run apply again to finish)"
    ]
    assert ("default", "web-data.qcow2") in fake.volumes  # the guest may still be writing to it


def test_a_nic_moved_to_another_network_is_moved_live(tmp_path: Path) -> None:
    networks = (
        "networks:\n  front: {mode: isolated, ipv4: 198.51.100.1/28}\n"
        "  back: {mode: isolated, ipv4: 198.51.100.17/28}\n"
    )
    guest = "  web:\n    devices: {agent: false}\n    nics:\n      lan: {network: %s}\n"
    fake = FakeHypervisor()
    front = spec_of(tmp_path, networks, guest % "front")
    apply(fake, plan_for(fake, front), front)
    back = spec_of(tmp_path, networks, guest % "back")
    apply(fake, plan_for(fake, back), back)
    assert operations(fake, (*LIVE_REQUESTS, *POWER)) == ["update_device"]
    for inactive in (False, True):
        source = parse(fake.domain_xml("web", inactive=inactive)).find("devices/interface/source")
        assert source is not None and source.get("network") == "walk-back"
    assert plan_for(fake, back).empty
