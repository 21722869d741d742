"""`prevent_destroy` holds against `vmctl destroy`: a destroy that would remove a protected guest is
refused as a whole, before anything is removed; one that names only other guests goes ahead.

Run against the fake hypervisor: the guests are made by a real plan and apply, then destroyed.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tests.fakes.hypervisor import FakeHypervisor
from vmctl.apply.context import ApplyContext, ApplyOptions
from vmctl.apply.executor import execute
from vmctl.apply.progress import LineReporter
from vmctl.errors import PlanError
from vmctl.model import DesiredState, HostFacts
from vmctl.plan.changes import Action, Kind, Plan
from vmctl.plan.destroy import destroy_plan
from vmctl.plan.planner import make_plan
from vmctl.resolve.desired import desired_state
from vmctl.resolve.localfiles import LocalFacts
from vmctl.spec.load import load_spec

SPEC = """
version: 1
project: guarded
pools:
  default: {path: /guarded}
guests:
  web:
    memory: 256MiB
    prevent_destroy: true
    disks:
      data: {size: 1GiB}
  db:
    memory: 256MiB
    disks:
      data: {size: 1GiB}
"""


@pytest.fixture
def made(tmp_path: Path) -> tuple[FakeHypervisor, DesiredState]:
    path = tmp_path / "vmctl.yaml"
    path.write_text(SPEC)
    wanted = desired_state(load_spec([str(path)], None), LocalFacts(), HostFacts(log_dir=None))
    fake = FakeHypervisor()
    carry_out(fake, make_plan(wanted, fake.read_state(wanted.owner), "fake:///"), wanted)
    assert fake.domain_names() == ["db", "web"]
    return fake, wanted


def volumes_of(fake: FakeHypervisor) -> list[str]:
    return sorted(name for pool, name in fake.volumes if pool == "default")


def carry_out(fake: FakeHypervisor, plan: Plan, wanted: DesiredState) -> None:
    ctx = ApplyContext(fake, wanted, HostFacts(log_dir=None), {"default": "/guarded"}, ApplyOptions())
    report = execute(plan, ctx, LineReporter(io.StringIO()))
    assert report.ok, [(o.subject, o.summary) for o in report.failed]


def test_a_destroy_of_the_whole_project_is_refused_and_removes_nothing(
    made: tuple[FakeHypervisor, DesiredState],
) -> None:
    fake, wanted = made
    volumes = volumes_of(fake)
    with pytest.raises(PlanError, match="destroy is refused") as refused:
        destroy_plan(fake.read_owned(wanted.owner), wanted.owner, "fake:///", images=True)
    assert refused.value.reasons == ("guest web: prevent_destroy is set",)  # db is not named: it is not the cause
    assert refused.value.hint == "set prevent_destroy: false in the spec and apply first"
    assert fake.domain_names() == ["db", "web"] and volumes_of(fake) == volumes


def test_a_destroy_of_the_other_guests_goes_ahead_and_keeps_the_protected_one(
    made: tuple[FakeHypervisor, DesiredState],
) -> None:
    fake, wanted = made
    owned = fake.read_owned(wanted.owner)
    plan = destroy_plan(owned, wanted.owner, "fake:///", only=["db"])
    assert [(c.kind, c.name) for c in plan.changes if c.kind is Kind.GUEST] == [(Kind.GUEST, "db")]
    assert all(c.action is Action.DELETE for c in plan.changes)
    carry_out(fake, plan, wanted)
    assert fake.domain_names() == ["web"]
    assert volumes_of(fake) == ["web-data.qcow2"]
    with pytest.raises(PlanError, match="destroy is refused"):
        destroy_plan(fake.read_owned(wanted.owner), wanted.owner, "fake:///", only=["web"])
