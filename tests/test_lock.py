"""The apply lock's file on this machine: one holder at a time, and no lock file left behind once nobody holds it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.fakes.hypervisor import FakeHypervisor
from vmctl.apply.lock import local_lock, lock_path
from vmctl.cli import app


def test_no_lock_file_is_left_behind(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VMCTL_LOCK_DIR", str(tmp_path))
    with local_lock("qemu:///system", "p", None, 1):
        assert lock_path("qemu:///system", "p", None).exists()
    assert list(tmp_path.iterdir()) == []


def test_holders_never_overlap_while_files_come_and_go(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VMCTL_LOCK_DIR", str(tmp_path))
    inside: list[int] = []
    overlaps: list[int] = []

    def hold(n: int) -> None:
        for _ in range(20):
            with local_lock("qemu:///system", "p", "w", 60):
                inside.append(n)
                if len(inside) > 1:
                    overlaps.append(n)
                time.sleep(0.001)
                inside.remove(n)

    threads = [threading.Thread(target=hold, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == []
    assert list(tmp_path.iterdir()) == []


def test_shared_holders_hold_together_and_never_with_one_alone(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An image's lock: apply's disks are made on it together; a delete holds it alone."""
    monkeypatch.setenv("VMCTL_LOCK_DIR", str(tmp_path))
    together = threading.Barrier(3, timeout=10)  # broken unless three shared holders are inside at once
    inside: list[str] = []
    overlaps: list[str] = []

    def hold(who: str, shared: bool) -> None:
        for round_ in range(10):
            with local_lock("image:/pool", "image", "base.qcow2", 60, shared=shared):
                inside.append(who)
                if (not shared and len(inside) > 1) or (shared and "alone" in inside):
                    overlaps.append(who)
                if shared and round_ == 0:
                    together.wait()
                time.sleep(0.001)
                inside.remove(who)

    threads = [threading.Thread(target=hold, args=(f"shared{n}", True)) for n in range(3)]
    threads.append(threading.Thread(target=hold, args=("alone", False)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not together.broken
    assert overlaps == []
    assert list(tmp_path.iterdir()) == []


# -- the lock on the hypervisor settles while vmctl reads, and is settled before anything changes ----------

READS = {"host_facts", "log_dir", "try_lock", "read_state", "read_owned", "pool_exists", "volume_exists"}
SPEC = """\
version: 1
project: settle
guests:
  web:
    memory: 256MiB
    disks:
      data: {size: 1GiB}
    nics:
      n: {user: {}}
"""


def _run_with(fake: FakeHypervisor, monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    import vmctl.hypervisor

    monkeypatch.setattr(vmctl.hypervisor, "connect", lambda uri: fake)
    return app._run(["--connect", "test:///default", *argv])


def _before_ready(fake: FakeHypervisor) -> list[str]:
    names = [name for name, _ in fake.calls]
    assert "lock_ready" in names, names
    return names[: names.index("lock_ready")]


@pytest.mark.parametrize("command", ["apply", "destroy"])
def test_nothing_is_changed_before_the_hypervisors_lock_has_settled(
    command: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VMCTL_LOCK_DIR", str(tmp_path / "locks"))
    spec = tmp_path / "vmctl.yaml"
    spec.write_text(SPEC)
    fake = FakeHypervisor()
    assert _run_with(fake, monkeypatch, "apply", "--yes", str(spec)) == 0
    assert fake.domain_exists("web")  # the apply did change the hypervisor: the test can fail
    if command == "destroy":
        fake.calls.clear()
        assert _run_with(fake, monkeypatch, "destroy", "--yes", "-f", str(spec)) == 0
        assert not fake.domain_exists("web")
    changed_early = [name for name in _before_ready(fake) if name not in READS]
    assert changed_early == []
    assert "try_lock" in _before_ready(fake)
