"""One spec over two hypervisors reached through libvirt's ssh transport (see conftest.py).

Guests here are defined stopped and need no image: what is tested is the spread over hosts, the
lock on the hypervisor, and what an unreachable host does. Booted guests: test_two_hosts_e2e.py.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Machine, TwoHosts

pytestmark = pytest.mark.libvirtd


def stopped_guests(project: str, hosts: dict[str, str], guests: dict[str, str], extra: str = "") -> str:
    lines = [f"version: 1\nproject: {project}\nhosts:"]
    lines += [f'  {name}: {{uri: "{uri}"}}' for name, uri in hosts.items()]
    lines.append("guests:")
    lines += [f"  {name}: {{host: {host}, state: stopped, memory: 64MiB{extra}}}" for name, host in guests.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture
def spread(two_hosts: TwoHosts, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    project = f"r{uuid.uuid4().hex[:8]}"
    spec = tmp_path / "vmctl.yaml"
    yield project, spec
    machine = two_hosts.machines[0]
    if spec.exists():
        machine.vmctl("destroy", "--yes", "-f", str(spec))
    for uri in (two_hosts.system, two_hosts.session):
        for name in machine.virsh(uri, "list", "--all", "--name").split():
            assert not name.startswith(project), f"{name} left on {uri}"


def domains(machine: Machine, uri: str, project: str) -> list[str]:
    return sorted(n for n in machine.virsh(uri, "list", "--all", "--name").split() if n.startswith(project))


def test_a_spec_spreads_guests_over_both_hosts(two_hosts: TwoHosts, spread: tuple[str, Path]) -> None:
    project, spec = spread
    machine = two_hosts.machines[0]
    hosts = {"a": two_hosts.system, "b": two_hosts.session}
    spec.write_text(stopped_guests(project, hosts, {f"{project}-x": "a", f"{project}-y": "b"}))
    plan = machine.vmctl("plan", str(spec))
    assert plan.returncode == 0, plan.stderr
    assert f"host a ({two_hosts.system}):" in plan.stdout and f"host b ({two_hosts.session}):" in plan.stdout
    section_b = plan.stdout.split("host b (")[1]
    assert f"guest {project}-y will be created" in section_b and f"{project}-x" not in section_b
    as_json = json.loads(machine.vmctl("plan", "--json", str(spec)).stdout)
    assert as_json["hosts"] == hosts
    assert {(c["host"], c["name"]) for c in as_json["changes"]} == {("a", f"{project}-x"), ("b", f"{project}-y")}

    applied = machine.vmctl("apply", "--yes", str(spec))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert domains(machine, two_hosts.system, project) == [f"{project}-x"]
    assert domains(machine, two_hosts.session, project) == [f"{project}-y"]
    again = machine.vmctl("plan", "--detailed-exitcode", str(spec))
    assert again.returncode == 0, again.stdout + again.stderr

    status = json.loads(machine.vmctl("status", "--json", str(spec)).stdout)
    assert [(r["name"], r["host"], r["state"]) for r in status["guests"]] == [
        (f"{project}-x", "a", "stopped"),
        (f"{project}-y", "b", "stopped"),
    ]
    only_b = machine.vmctl("status", "--host", "b", str(spec))
    assert f"{project}-y" in only_b.stdout and f"{project}-x" not in only_b.stdout, only_b.stdout

    gone = machine.vmctl("destroy", "--yes", "--host", "a", "-f", str(spec))
    assert gone.returncode == 0, gone.stderr
    assert domains(machine, two_hosts.system, project) == []
    assert domains(machine, two_hosts.session, project) == [f"{project}-y"]


def test_moving_a_guest_is_a_replace_and_prevent_destroy_refuses_it(
    two_hosts: TwoHosts, spread: tuple[str, Path]
) -> None:
    project, spec = spread
    machine = two_hosts.machines[0]
    hosts = {"a": two_hosts.system, "b": two_hosts.session}
    guest = f"{project}-m"
    spec.write_text(stopped_guests(project, hosts, {guest: "a"}, ", prevent_destroy: true"))
    assert machine.vmctl("apply", "--yes", str(spec)).returncode == 0
    spec.write_text(stopped_guests(project, hosts, {guest: "b"}, ", prevent_destroy: true"))
    refused = machine.vmctl("plan", str(spec))
    assert refused.returncode == 1 and "prevent_destroy" in refused.stderr, refused.stderr
    narrowed = machine.vmctl("plan", "--host", "a", str(spec.parent / "vmctl.yaml"))
    assert narrowed.returncode == 1

    spec.write_text(stopped_guests(project, hosts, {guest: "a"}))  # prevent_destroy off, where it is
    assert machine.vmctl("apply", "--yes", str(spec)).returncode == 0
    spec.write_text(stopped_guests(project, hosts, {guest: "b"}))
    only_a = machine.vmctl("plan", "--host", "a", str(spec))
    assert only_a.returncode == 1 and "--host leaves out" in only_a.stderr, only_a.stderr
    plan = machine.vmctl("plan", str(spec))
    assert plan.returncode == 0, plan.stderr
    assert "moves to host b: a move is a replace" in plan.stdout and "moves from host a" in plan.stdout
    assert machine.vmctl("apply", "--yes", str(spec)).returncode == 0
    assert domains(machine, two_hosts.system, project) == []
    assert domains(machine, two_hosts.session, project) == [guest]


def test_a_saved_plan_over_both_hosts_applies_and_is_refused_once_a_host_moved_on(
    two_hosts: TwoHosts, spread: tuple[str, Path]
) -> None:
    project, spec = spread
    machine = two_hosts.machines[0]
    hosts = {"a": two_hosts.system, "b": two_hosts.session}
    x, y = f"{project}-x", f"{project}-y"
    spec.write_text(stopped_guests(project, hosts, {x: "a", y: "b"}))
    saved = spec.parent / "plan.json"
    made = machine.vmctl("plan", "-o", str(saved), str(spec))
    assert made.returncode == 0, made.stderr
    assert {name: entry["connection"] for name, entry in json.loads(saved.read_text())["hosts"].items()} == hosts
    applied = machine.vmctl("apply", str(saved))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert domains(machine, two_hosts.system, project) == [x] and domains(machine, two_hosts.session, project) == [y]

    spec.write_text(stopped_guests(project, hosts, {x: "a", y: "b"}).replace("64MiB", "96MiB"))
    assert machine.vmctl("plan", "-o", str(saved), str(spec)).returncode == 0
    machine.virsh(two_hosts.session, "undefine", y)  # host b moves on behind the plan's back
    refused = machine.vmctl("apply", str(saved))
    assert refused.returncode == 1 and "stale; nothing was changed" in refused.stderr, refused.stderr
    assert f"host b: guest {y}: removed on the hypervisor since the plan was made" in refused.stderr
    assert "host a:" not in refused.stderr  # host a's part still holds, and was not applied either
    assert "65536" in machine.virsh(two_hosts.system, "dumpxml", "--inactive", x)


def test_an_unreachable_host_is_named_and_nothing_changes_anywhere(
    two_hosts: TwoHosts, spread: tuple[str, Path]
) -> None:
    project, spec = spread
    machine = two_hosts.machines[0]
    spec.write_text(
        stopped_guests(
            project,
            {"a": two_hosts.system, "gone": two_hosts.unreachable},
            {f"{project}-x": "a", f"{project}-z": "gone"},
        )
    )
    result = machine.vmctl("apply", "--yes", str(spec))
    assert result.returncode == 1
    assert f"host gone: connect to {two_hosts.unreachable} failed" in result.stderr, result.stderr
    assert "Connection refused" in result.stderr  # what ssh said
    assert "no sshd answered" in result.stderr  # and what to do about it
    assert "Traceback" not in result.stderr
    assert domains(machine, two_hosts.system, project) == []


def test_sshd_stopped_gives_the_clear_error(two_hosts: TwoHosts, spread: tuple[str, Path]) -> None:
    project, spec = spread
    machine = two_hosts.machines[0]
    spec.write_text(stopped_guests(project, {"a": two_hosts.system, "b": two_hosts.session}, {f"{project}-x": "b"}))
    two_hosts.sshd.stop()
    try:
        result = machine.vmctl("plan", str(spec))
    finally:
        two_hosts.sshd.start()
    assert result.returncode == 1
    assert (
        f"connect to {two_hosts.session} failed" in result.stderr or f"connect to {two_hosts.system}" in result.stderr
    )
    assert "host " in result.stderr and "Connection refused" in result.stderr, result.stderr


HOLD = """
import sys, time
from vmctl.apply.lock import apply_lock
from vmctl.hypervisor import connect
uri, project = sys.argv[1], sys.argv[2]
with apply_lock([(uri, connect(uri))], project, None, timeout=60):
    print("held", flush=True)
    time.sleep(600)
"""


def test_two_machines_serialize_on_the_host_and_kill_9_frees_the_lock(
    two_hosts: TwoHosts, spread: tuple[str, Path]
) -> None:
    """The lock lives with the hypervisor: machine2 (its own ~/.ssh and lock directory) waits for
    machine1, and a holder killed with -9 leaves no lock behind."""
    project, spec = spread
    one, two = two_hosts.machines
    spec.write_text(stopped_guests(project, {"a": two_hosts.system}, {f"{project}-x": "a"}))
    holder = one.start(sys.executable, "-c", HOLD, two_hosts.system, project)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        blocked = two.vmctl("apply", "--yes", "--lock-timeout", "2s", str(spec))
        assert blocked.returncode == 1, blocked.stdout
        assert "another vmctl holds the lock of this project and workspace on host a" in blocked.stderr
        # unshare and sh exec into python: the holder's pid is the one we started
        assert f"pid {holder.pid} on root@" in blocked.stderr and ", since 20" in blocked.stderr, blocked.stderr
        assert domains(two, two_hosts.system, project) == []

        waiting = two.start(sys.executable, "-m", "vmctl", "apply", "--yes", "--lock-timeout", "5m", str(spec))
        assert waiting.stderr is not None
        assert waiting.stderr.readline().startswith("waiting: another vmctl holds the lock")
        os.kill(holder.pid, signal.SIGKILL)  # unshare exec'd into python: this is the holder itself
        holder.wait(10)
        out, err = waiting.communicate(timeout=120)  # the holder would have slept ten minutes
        assert waiting.returncode == 0, out + err
    finally:
        if holder.poll() is None:
            holder.kill()
    assert domains(two, two_hosts.system, project) == [f"{project}-x"]
