"""`vmctl status` of running guests: each one's addresses and readiness, and a guest whose agent is slow
to answer does not hold up the others."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.fakes.hypervisor import FakeHypervisor
from vmctl.cli import app
from vmctl.errors import HypervisorError
from vmctl.hypervisor.interface import AgentReply, JsonArg

GUESTS = 3
SPEC = f"""\
version: 1
project: status
guests:
  web:
    count: {GUESTS}
    memory: 256MiB
    nics:
      n: {{user: {{}}}}
"""


class SlowAgents(FakeHypervisor):
    """Each guest's agent answers only once every guest's agent has been asked: asked one after another,
    none would answer."""

    def __init__(self) -> None:
        super().__init__()
        self.all_asked = threading.Barrier(GUESTS, timeout=10)

    def agent(  # type: ignore[override]
        self, name: str, command: str, arguments: Mapping[str, JsonArg] | None = None, timeout: int = 5
    ) -> AgentReply:
        if command == "guest-ping":
            try:
                self.all_asked.wait()
            except threading.BrokenBarrierError:
                raise HypervisorError("guest agent guest-ping", "Guest agent is not responding", guest=name) from None
        return super().agent(name, command, arguments, timeout)


def test_running_guests_are_asked_together(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import vmctl.hypervisor

    monkeypatch.setenv("VMCTL_LOCK_DIR", str(tmp_path / "locks"))
    spec = tmp_path / "vmctl.yaml"
    spec.write_text(SPEC)
    fake = SlowAgents()
    monkeypatch.setattr(vmctl.hypervisor, "connect", lambda uri: fake)
    assert app._run(["--connect", "test:///default", "apply", "--yes", str(spec)]) == 0
    names = [f"web-{n}" for n in range(1, GUESTS + 1)]
    for n, name in enumerate(names, start=1):
        fake.agent_replies[(name, "guest-ping")] = {}
        fake.guest_addresses[name] = {"52:54:00:00:00:0" + str(n): [f"203.0.113.{n}"]}
    capsys.readouterr()
    assert app._run(["--connect", "test:///default", "status", "--json", str(spec)]) == 0
    rows = json.loads(capsys.readouterr().out)["guests"]
    assert [(r["name"], r["state"], r["ips"], r["ready"]) for r in rows] == [
        (name, "running", [f"203.0.113.{n}"], True) for n, name in enumerate(names, start=1)
    ]
