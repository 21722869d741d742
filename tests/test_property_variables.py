"""Property: for random variable values within their types, a plan made right after applying is empty.

One spec whose every varying field comes from a variable (each type: integer, size, boolean, string,
duration, list, map, and a reference inside a string per counted guest), applied to libvirt's
in-process test driver. Values are given as on a command line (--var text) or in a var file (YAML).
Also: a guest renamed with `moved:` keeps its volumes and MACs, and the plan after it is empty.
"""

from __future__ import annotations

import io
import uuid
from contextlib import closing
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vmctl.apply.context import ApplyContext, ApplyOptions
from vmctl.apply.executor import execute
from vmctl.apply.progress import LineReporter
from vmctl.hypervisor import Hypervisor, connect
from vmctl.model import DesiredState, Owner
from vmctl.plan.changes import Plan
from vmctl.plan.destroy import destroy_plan
from vmctl.plan.planner import make_plan
from vmctl.resolve.desired import desired_state
from vmctl.resolve.localfiles import LocalFacts
from vmctl.spec.load import load_spec
from vmctl.spec.variables import VarInputs

URI = "test:///default"
POOLS = {"default-pool": "/default-pool"}

SPEC = """\
version: 1
project: propvars
variables:
  replicas: {type: integer}
  cpus: {type: integer}
  memory: {type: size}
  autostart: {type: boolean}
  state: {type: string}
  boot_wait: {type: duration}
  ignored: {type: list}
  devices: {type: map}
  mac_byte: {type: string}
  disk_size: {type: size}
pools:
  default-pool: {path: /default-pool}
networks:
  net: {mode: isolated, ipv4: 203.0.113.1/24}
guests:
  g:
    count: ${var.replicas}
    cpus: ${var.cpus}
    max_cpus: 8
    memory: ${var.memory}
    max_memory: 4GiB
    autostart: ${var.autostart}
    state: ${var.state}
    devices: ${var.devices}
    ignore_changes: ${var.ignored}
    wait: {timeout: "${var.boot_wait}", agent: false, cloud_init: false}
    nics:
      n: {network: net, mac: "52:54:00:${var.mac_byte}:00:0${guest.index}"}
    disks:
      d: {size: "${var.disk_size}"}
"""


@st.composite
def values(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "replicas": draw(st.integers(1, 3)),
        "cpus": draw(st.integers(1, 8)),
        "memory": f"{draw(st.integers(64, 4096))}MiB",
        "autostart": draw(st.booleans()),
        "state": draw(st.sampled_from(["running", "stopped"])),
        "boot_wait": draw(st.sampled_from(["30s", "5m", "1m30s", "2h"])),
        "ignored": draw(st.lists(st.sampled_from(["memory", "autostart", "cloud_init"]), unique=True)),
        "devices": {k: draw(st.booleans()) for k in ("rng", "balloon", "vsock")},
        "mac_byte": f"{draw(st.integers(0, 255)):02x}",
        "disk_size": draw(st.sampled_from(["1GiB", "512MiB", "2GB", "100MB"])),
    }


def as_text(value: Any) -> str:
    """A value as typed after --var NAME=: YAML flow for lists and maps."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, dict)):
        return yaml.safe_dump(value, default_flow_style=True).strip()
    return str(value)


def apply_plan(backend: Hypervisor, plan: Plan, desired: DesiredState) -> None:
    ctx = ApplyContext(backend, desired, backend.host_facts(), POOLS, ApplyOptions(allow_restart=True))
    with closing(LineReporter(io.StringIO())) as reporter:
        report = execute(plan, ctx, reporter)
    assert report.ok, [(o.subject, o.summary) for o in report.failed]


def clean_up(backend: Hypervisor, owner: Owner, desired: DesiredState) -> None:
    """The test driver lives as long as the process: what one example made must not stay for the next."""
    ctx = ApplyContext(backend, desired, backend.host_facts(), POOLS, ApplyOptions())
    execute(destroy_plan(backend.read_owned(owner), owner, URI), ctx, LineReporter(io.StringIO()))


def unsettled(plan: Plan) -> list[Any]:
    return [(c.name, [(f.path, f.before, f.after) for f in c.fields]) for c in plan.changes]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(given_values=values(), from_file=st.booleans())
def test_a_plan_right_after_apply_is_empty(
    given_values: dict[str, Any], from_file: bool, test_driver: object, tmp_path_factory: Any
) -> None:
    folder = tmp_path_factory.mktemp("spec")
    (folder / "vmctl.yaml").write_text(SPEC)
    if from_file:
        (folder / "values.yaml").write_text(yaml.safe_dump(given_values))
        inputs = VarInputs(files=(str(folder / "values.yaml"),))
    else:
        inputs = VarInputs(args=tuple(f"{k}={as_text(v)}" for k, v in given_values.items()))
    workspace = f"w{uuid.uuid4().hex[:8]}"
    spec = load_spec([str(folder / "vmctl.yaml")], workspace, inputs)
    assert len(spec.guests) == given_values["replicas"]
    assert {g.memory for g in spec.guests} == {int(given_values["memory"][:-3]) * 1024**2}
    backend = connect(URI)
    owner = Owner(spec.project, workspace)
    desired = desired_state(spec, LocalFacts(), backend.host_facts())
    try:
        apply_plan(backend, make_plan(desired, backend.read_state(owner), URI), desired)
        settled = make_plan(desired, backend.read_state(owner), URI)
        assert settled.empty, unsettled(settled)
    finally:
        clean_up(backend, owner, desired)
        backend.close()


RENAME = """\
version: 1
project: propmove
pools:
  default-pool: {path: /default-pool}
networks:
  net: {mode: isolated, ipv4: 203.0.113.1/24}
guests:
  NAME:
    state: STATE
    disks: {data: {size: 1GiB}}
    nics: {n: {network: net}}
"""


def test_a_rename_keeps_volumes_and_macs_and_settles(test_driver: object, tmp_path: Path) -> None:
    for state in ("stopped", "running"):
        workspace = f"w{uuid.uuid4().hex[:8]}"
        path = tmp_path / f"{state}.yaml"
        path.write_text(RENAME.replace("NAME", "web").replace("STATE", state))
        backend = connect(URI)
        owner = Owner("propmove", workspace)
        before = desired_state(load_spec([str(path)], workspace), LocalFacts(), backend.host_facts())
        try:
            apply_plan(backend, make_plan(before, backend.read_state(owner), URI), before)
            old = backend.read_state(owner).guests[0]
            renamed = RENAME.replace("NAME", "api").replace("STATE", state)
            path.write_text("moved: [{from: web, to: api}]\n" + renamed)
            after = desired_state(load_spec([str(path)], workspace), LocalFacts(), backend.host_facts())
            plan = make_plan(after, backend.read_state(owner), URI)
            assert [(c.kind.value, c.name, c.action.label) for c in plan.changes] == [
                ("guest", f"{workspace}-api", "update-restart" if state == "running" else "update")
            ]
            apply_plan(backend, plan, after)
            live = backend.read_state(owner)
            assert [g.name for g in live.guests] == [f"{workspace}-api"]
            new = live.guests[0]
            assert new.uuid == old.uuid
            assert new.config.disks == old.config.disks  # the volume keeps its name: its data stays
            assert [n.mac for n in new.config.nics] == [n.mac for n in old.config.nics]
            assert (new.running is not None) == (state == "running")
            assert make_plan(after, live, URI).empty, unsettled(make_plan(after, live, URI))
            path.write_text(renamed)  # moved: taken out again: still nothing to do
            again = desired_state(load_spec([str(path)], workspace), LocalFacts(), backend.host_facts())
            assert make_plan(again, backend.read_state(owner), URI).empty
        finally:
            clean_up(backend, owner, before)
            backend.close()
