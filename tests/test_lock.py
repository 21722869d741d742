"""The apply lock's file on this machine: one holder at a time, and no lock file left behind once nobody holds it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from vmctl.apply.lock import local_lock, lock_path


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
