"""Property: for any valid spec, a plan made right after applying it is empty, and destroy leaves nothing.

Random specs (hypothesis) applied to libvirt's in-process test driver: guests with every size unit,
machine type, firmware, device toggle, blank disk and NIC kind that does not need an upload.
"""

from __future__ import annotations

import io
import uuid
from contextlib import closing
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vmctl.apply.context import ApplyContext, ApplyOptions
from vmctl.apply.executor import execute
from vmctl.apply.progress import LineReporter
from vmctl.hypervisor import Hypervisor, connect
from vmctl.model import Owner
from vmctl.plan.destroy import destroy_plan
from vmctl.plan.planner import make_plan
from vmctl.resolve.desired import desired_state
from vmctl.resolve.localfiles import LocalFacts
from vmctl.spec.load import load_spec
from vmctl.units import SIZE_UNITS

URI = "test:///default"
UNITS = ["MiB", "GiB", "MB", "GB", "KiB"]


@st.composite
def sizes(draw: st.DrawFn, low_mib: int, high_mib: int) -> str:
    """A size between low and high MiB, written in any unit that can express it exactly."""
    unit = draw(st.sampled_from(UNITS))
    factor = SIZE_UNITS[unit]
    low, high = -(-low_mib * 1024**2 // factor), high_mib * 1024**2 // factor
    if low > high:
        unit, low, high = "MiB", low_mib, high_mib
    return f"{draw(st.integers(low, high))}{unit}"


names = st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True)


@st.composite
def guests(draw: st.DrawFn) -> dict[str, Any]:
    cpus = draw(st.integers(1, 4))
    guest: dict[str, Any] = {
        "cpus": cpus,
        "max_cpus": draw(st.integers(cpus, 8)),
        "machine": draw(st.sampled_from(["q35", "pc"])),
        "firmware": draw(st.sampled_from(["bios", "uefi"])),
        "accel": draw(st.sampled_from(["auto", "tcg"])),
        "state": draw(st.sampled_from(["running", "stopped"])),
        "autostart": draw(st.booleans()),
        "prevent_destroy": False,
        "devices": {k: draw(st.booleans()) for k in ("rng", "balloon", "agent", "vsock")},
    }
    guest["memory"] = draw(sizes(64, 1024))
    guest["max_memory"] = draw(sizes(1100, 4096))
    disk_names = draw(st.lists(names, max_size=3, unique=True))
    guest["disks"] = {
        n: {
            "size": draw(sizes(1, 4096)),  # 3 guests x 3 disks fit the test driver's 100 GiB pool
            "bus": draw(st.sampled_from(["virtio", "scsi"])),
        }
        for n in disk_names
    }
    nic_names = draw(st.lists(names, max_size=3, unique=True))
    guest["nics"] = {n: draw(st.sampled_from([{"user": {}}, {"network": "net"}])) for n in nic_names}
    if not guest["devices"]["agent"]:
        guest["wait"] = {"agent": False, "cloud_init": False}
    return guest


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    guest_names = draw(st.lists(st.from_regex(r"g[a-z0-9]{0,5}", fullmatch=True), min_size=1, max_size=3, unique=True))
    return {
        "version": 1,
        "project": "prop",
        "pools": {"default-pool": {"path": "/default-pool"}},
        "networks": {"net": {"mode": "isolated", "ipv4": "203.0.113.1/24"}},
        "guests": {name: draw(guests()) for name in guest_names},
    }


def apply_plan(backend: Hypervisor, plan: Any, desired: Any) -> None:
    ctx = ApplyContext(backend, desired, backend.host_facts(), {"default-pool": "/default-pool"}, ApplyOptions())
    with closing(LineReporter(io.StringIO())) as reporter:
        report = execute(plan, ctx, reporter)
    assert report.ok, [(o.subject, o.summary) for o in report.failed]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=specs())
def test_a_plan_right_after_apply_is_empty(
    document: dict[str, Any], test_driver: object, tmp_path_factory: Any
) -> None:
    folder = tmp_path_factory.mktemp("spec")
    path = folder / "vmctl.yaml"
    path.write_text(yaml.safe_dump(document))
    workspace = f"w{uuid.uuid4().hex[:8]}"
    spec = load_spec([str(path)], workspace)
    backend = connect(URI)
    owner = Owner(spec.project, workspace)
    desired = desired_state(spec, LocalFacts(), backend.host_facts())
    try:
        apply_plan(backend, make_plan(desired, backend.read_state(owner), URI), desired)
        settled = make_plan(desired, backend.read_state(owner), URI)
        assert settled.empty, [(c.name, [(f.path, f.before, f.after) for f in c.fields]) for c in settled.changes]
        apply_plan(backend, destroy_plan(backend.read_owned(owner), owner, URI), desired)
        after = backend.read_state(owner)
        assert after.guests == () and not [n for n in after.networks if n.owner == owner]
    except BaseException:
        # The test driver lives as long as this process: what a failing example made would fill its
        # pool for every later one, and hypothesis's shrinking would report that instead.
        execute(
            destroy_plan(backend.read_owned(owner), owner, URI),
            ApplyContext(backend, desired, backend.host_facts(), {"default-pool": "/default-pool"}, ApplyOptions()),
            LineReporter(io.StringIO()),
        )
        raise
    finally:
        backend.close()
