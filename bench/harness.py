"""Measuring vmctl against a baseline in the same run: interleaved repetitions, medians, spreads."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VMCTL = [sys.executable, "-m", "vmctl"]
PYTHON = sys.executable
ENV = {**os.environ, "NO_COLOR": "1"}


@dataclass
class Result:
    """One benchmark: samples of vmctl and of its baseline (seconds, or another unit), and a target."""

    name: str
    vmctl: list[float] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)
    baseline_name: str = ""
    target: str = ""
    unit: str = "s"
    limit_ratio: float | None = None  # vmctl/baseline must be <= this
    limit_value: float | None = None  # the vmctl median must be <= this (in `unit`)
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        if not self.baseline or not self.vmctl:
            return None
        return statistics.median(self.vmctl) / statistics.median(self.baseline)

    @property
    def met(self) -> bool:
        ok = True
        if self.limit_ratio is not None and self.ratio is not None:
            ok &= self.ratio <= self.limit_ratio
        if self.limit_value is not None and self.vmctl:
            ok &= statistics.median(self.vmctl) <= self.limit_value
        return ok


def spread(samples: list[float]) -> str:
    return f"{min(samples):.3g}–{max(samples):.3g}" if samples else "-"


def median(samples: list[float]) -> str:
    return f"{statistics.median(samples):.3g}" if samples else "-"


def run(cmd: list[str], cwd: Path | None = None, check: bool = True, env: dict[str, str] | None = None) -> float:
    """Wall time of a command, in seconds."""
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, env=env or ENV, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if check and result.returncode not in (0, 2):
        raise RuntimeError(
            f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        )
    return elapsed


def interleave(
    result: Result,
    repeats: int,
    ours: Callable[[], float],
    theirs: Callable[[], float] | None,
    before_each: Callable[[], None] | None = None,
) -> Result:
    """vmctl, baseline, vmctl, baseline...: drift of the machine hits both alike."""
    for index in range(repeats):
        for label, work in (
            (("vmctl", ours), ("baseline", theirs)) if index % 2 == 0 else (("baseline", theirs), ("vmctl", ours))
        ):
            if work is None:
                continue
            if before_each:
                before_each()
            sample = work()
            (result.vmctl if label == "vmctl" else result.baseline).append(sample)
            print(f"  {result.name}: {label} {sample:.3f}{result.unit}", flush=True)
    return result


def machine() -> dict[str, str]:
    def out(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
        except OSError:
            return "?"

    memory = out(["sh", "-c", "awk '/MemTotal/ {printf \"%.0f GiB\", $2/1048576}' /proc/meminfo"])
    versions = out(["virsh", "-c", "qemu:///system", "version"]).replace("\n", "; ")
    return {
        "cpus": str(os.cpu_count()),
        "memory": memory,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "libvirt / qemu": versions,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def report(results: list[Result], wall_time: float | None = None) -> str:
    lines = [
        "| benchmark | runs | vmctl median (spread) | baseline | baseline median (spread) | ratio | target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        ratio = f"{r.ratio:.2f}×" if r.ratio is not None else "-"
        lines.append(
            f"| {r.name} | {len(r.vmctl)} | {median(r.vmctl)}{r.unit} ({spread(r.vmctl)}) | {r.baseline_name or '-'} | "
            f"{median(r.baseline)}{r.unit if r.baseline else ''} ({spread(r.baseline)}) | {ratio} | {r.target} | "
            f"{'yes' if r.met else '**no**'} |"
        )
    notes = [f"- {r.name}: {n}" for r in results for n in r.notes]
    facts = machine()
    if wall_time is not None:
        facts["whole run"] = f"{wall_time / 60:.1f} min"
    info = "\n".join(f"- {k}: {v}" for k, v in facts.items())
    return "\n".join(
        [*lines, "", "Runs: of each side, vmctl and baseline interleaved.", "", *notes, "", "Machine:", info, ""]
    )
