"""Round trips: each example spec defined on libvirt and read back equals the spec, field by field.

On a real libvirtd (qemu:///system, everything including uploads) and on libvirt's in-process test
driver (domains only: it cannot take uploads). The planner agreeing that nothing is left to do is
the second oracle.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from vmctl.apply.context import ApplyContext, ApplyOptions
from vmctl.apply.executor import execute
from vmctl.apply.progress import LineReporter
from vmctl.cachedir import cache_dir
from vmctl.hypervisor import Hypervisor, connect
from vmctl.hypervisor.readmemo import memo_path
from vmctl.libvirtxml.definition import domain_definition, guest_record
from vmctl.model import DesiredState, GuestSpec, GuestState, Owner
from vmctl.plan.guest import same_machine
from vmctl.plan.planner import make_plan
from vmctl.resolve.desired import desired_state
from vmctl.resolve.localfiles import gather
from vmctl.spec.load import load_spec

EXAMPLES = Path(__file__).parent.parent / "examples"
EXAMPLE_NAMES = sorted(p.stem for p in EXAMPLES.glob("*.yaml"))


def example_copy(name: str, tmp_path: Path) -> Path:
    """The example with real (empty) qcow2 images and stand-in kernel files next to it."""
    folder = tmp_path / "example"
    folder.mkdir()
    shutil.copy(EXAMPLES / f"{name}.yaml", folder)
    images = folder / "images"
    images.mkdir()
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(images / "debian-12.qcow2"), "2G"], check=True)
    (images / "vmlinuz").write_bytes(b"kernel stand-in")
    (images / "initrd.img").write_bytes(b"initrd stand-in")
    return folder / f"{name}.yaml"


def stopped(desired: DesiredState) -> DesiredState:
    """Defined, not booted: the stand-in kernels would not boot anyway."""
    return replace(desired, guests=tuple(replace(g, state="stopped") for g in desired.guests))


def resolve(
    path: Path, workspace: str, backend: Hypervisor, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> DesiredState:
    monkeypatch.setenv("VMCTL_CACHE", str(tmp_path / "cache"))
    spec = load_spec([str(path)], workspace)
    return stopped(desired_state(spec, gather(spec), backend.host_facts()))


def applied_example(
    name: str, uri: str, workspace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> DesiredState:
    """The example applied on `uri` in `workspace`, its guests defined and stopped: what it resolved to."""
    backend = connect(uri)
    try:
        desired = resolve(example_copy(name, tmp_path), workspace, backend, monkeypatch, tmp_path)
        live = backend.read_state(Owner(desired.project, workspace))
        plan = make_plan(desired, live, uri)
        paths = {p.name: p.path for p in live.pools} | {p.name: p.path for p in desired.pools}
        ctx = ApplyContext(backend, desired, backend.host_facts(), paths, ApplyOptions())
        with closing(LineReporter(io.StringIO())) as reporter:
            report = execute(plan, ctx, reporter)
        assert report.ok, [(o.subject, o.summary) for o in report.failed]
        return desired
    finally:
        backend.close()


def comparable(guest: GuestSpec | GuestState) -> dict[str, Any]:
    """The fields a spec sets, in the form both sides share."""
    return {
        "accel": guest.accel,
        "firmware": guest.firmware,
        "cpu_model": guest.cpu_model,
        "cpus": (guest.cpus, guest.max_cpus),
        "memory": (guest.memory, guest.max_memory),
        "state": guest.state,
        "autostart": guest.autostart,
        "boot": guest.boot,
        "disks": sorted(
            ((d.name, d.bus, d.pool, d.volume, d.size, d.image, d.image_sha256) for d in guest.disks),
            key=lambda d: d[0],
        ),
        "nics": sorted(guest.nics, key=lambda n: n.name),
        "shares": guest.shares,
        "devices": guest.devices,
        "seed": guest.seed,
        "prevent_destroy": guest.prevent_destroy,
        "hostname": guest.hostname,
    }


@pytest.mark.libvirtd
@pytest.mark.usefixtures("cleanup")
@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_example_round_trip_on_libvirtd(
    name: str, libvirtd: str, project: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    desired = applied_example(name, libvirtd, project, tmp_path, monkeypatch)
    backend = connect(libvirtd)
    try:
        after = backend.read_state(Owner(desired.project, project))
        assert make_plan(desired, after, libvirtd).empty
        for guest in desired.guests:
            held = after.guest(guest.name)
            assert held is not None
            assert same_machine(guest.machine, held.config.machine)
            assert comparable(held.config) == comparable(guest), guest.name
    finally:
        backend.close()


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_example_round_trip_on_the_test_driver(
    name: str, test_driver: object, project: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = connect("test:///default")
    try:
        desired = resolve(example_copy(name, tmp_path), project, backend, monkeypatch, tmp_path)
        owner = Owner(desired.project, project)
        paths = {p.name: p.path for p in desired.pools}
        for guest in desired.guests:
            xml = domain_definition(guest, guest_record(guest, desired), backend.host_facts(), paths)
            backend.define(xml, guest.name)
        live = backend.read_state(owner)
        for guest in desired.guests:
            held = live.guest(guest.name)
            assert held is not None, guest.name
            sizes = {d.name: d.size for d in guest.disks}
            config = replace(held.config, disks=tuple(replace(d, size=sizes[d.name]) for d in held.config.disks))
            assert same_machine(guest.machine, config.machine)
            assert comparable(config) == comparable(guest), guest.name
        # Read again: from the read memo the first read saved, every type of the model made anew.
        assert memo_path(cache_dir(), "test:///default", owner).exists()
        assert backend.read_state(owner) == live
    finally:
        for guest in desired.guests:
            backend.undefine(guest.name)
        backend.close()
