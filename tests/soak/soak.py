"""Soak: apply, change and destroy a project of many guests, cycle after cycle, on a libvirtd of its own.

    python -m tests.soak.soak --cycles 30 --guests 10     # by hand; figures for docs/soak.md
    (tests/soak/test_soak.py runs 3 cycles in `make test`)

Each cycle applies N stopped guests (a disk on a base image, a cloud-init seed, a user-mode NIC),
changes every one (more memory, a new disk), then destroys everything with --images. After every
cycle nothing may be left: no domain, volume, pool, network or lock file, and no file descriptor
more than vmctl (run in this process) had before. libvirtd's resident memory is read after each cycle.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import libvirt

from tests.tooling.private_libvirtd import PrivateLibvirtd


@dataclass
class Figures:
    cycles: int
    guests: int
    seconds: list[float] = field(default_factory=list)
    rss_kib: list[int] = field(default_factory=list)
    fds: list[int] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)

    def summary(self) -> str:
        rss = self.rss_kib
        lines = [
            f"cycles: {self.cycles}, guests per cycle: {self.guests}",
            f"seconds per cycle: first {self.seconds[0]:.1f}, median {sorted(self.seconds)[len(self.seconds) // 2]:.1f},"
            f" last {self.seconds[-1]:.1f}",
            f"libvirtd RSS (MiB) after cycle 1: {rss[0] / 1024:.1f}, after the last: {rss[-1] / 1024:.1f},"
            f" highest: {max(rss) / 1024:.1f}, growth after cycle 1: {(rss[-1] - rss[0]) / 1024:+.1f}",
            f"open file descriptors of vmctl's process: before {self.fds[0]}, after cycle 1 {self.fds[1]},"
            f" after the last {self.fds[-1]}",
            f"leftovers after every cycle: {', '.join(self.leftovers) or 'none'}",
        ]
        return "\n".join(lines)


def spec_text(project: str, pool: Path, guests: int, changed: bool) -> str:
    memory = "320MiB" if changed else "256MiB"
    extra = "      data: {size: 1GiB}\n" if changed else ""
    return (
        f"version: 1\nproject: {project}\npools:\n  {project}pool: {{path: {pool}}}\n"
        "images:\n  base: {path: base.qcow2}\n"
        f"guests:\n  g:\n    count: {guests}\n    state: stopped\n    memory: {memory}\n    max_memory: 512MiB\n"
        f"    disks:\n      root: {{image: base, size: 1GiB}}\n{extra}"
        "    nics: {lan: {user: {}}}\n"
        "    cloud_init: {user_data: {packages: [nginx], password: soak-secret}}\n"
    )


def vmctl(*args: str) -> str:
    from vmctl.cli.app import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    if code != 0:
        raise RuntimeError(f"vmctl {' '.join(args)} failed ({code}):\n{out.getvalue()}")
    return out.getvalue()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def leftovers(daemon: PrivateLibvirtd, pool: Path, locks: Path) -> list[str]:
    conn = libvirt.open(daemon.uri)
    try:
        found = [f"domain {d.name()}" for d in conn.listAllDomains(0)]
        found += [f"network {n.name()}" for n in conn.listAllNetworks(0)]
        found += [f"pool {p.name()}" for p in conn.listAllStoragePools(0)]
    finally:
        conn.close()
    found += [f"file {p}" for p in pool.iterdir()] if pool.exists() else []
    found += [f"lock {p.name}" for p in locks.iterdir()] if locks.exists() else []
    return found


def soak(cycles: int, guests: int, echo: bool = True) -> Figures:
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    daemon = PrivateLibvirtd()
    work = Path(tempfile.mkdtemp(prefix="vmctl-soak-"))
    locks = work / "locks"
    saved_env = dict(os.environ)  # restored after: the soak may run inside a test session
    os.environ.update(VMCTL_LOCK_DIR=str(locks), VMCTL_CACHE=str(work / "cache"), NO_COLOR="1")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(work / "base.qcow2"), "1G"], check=True)
    figures = Figures(cycles, guests)
    try:
        daemon.start()
        pool = daemon.base / "pools" / "soak"
        project = f"soak{uuid.uuid4().hex[:8]}"
        spec = work / "vmctl.yaml"
        uri = ["--connect", daemon.uri]
        figures.fds.append(open_fds())
        for cycle in range(1, cycles + 1):
            started = time.monotonic()
            spec.write_text(spec_text(project, pool, guests, changed=False))
            made = vmctl("apply", *uri, "--yes", str(spec)).count(": done: created\n")
            spec.write_text(spec_text(project, pool, guests, changed=True))
            changed = vmctl("apply", *uri, "--yes", str(spec)).count(": done: updated\n")
            if (made, changed) != (guests, guests):
                raise RuntimeError(f"cycle {cycle}: {made} guests created and {changed} changed, not {guests}")
            vmctl("destroy", *uri, "--yes", "--images", "-f", str(spec))
            figures.seconds.append(time.monotonic() - started)
            figures.rss_kib.append(rss_kib(daemon.libvirtd_pid))
            figures.fds.append(open_fds())
            left = leftovers(daemon, pool, locks)
            figures.leftovers.extend(f"cycle {cycle}: {item}" for item in left)
            if echo:
                print(
                    f"cycle {cycle}: {figures.seconds[-1]:.1f}s, libvirtd RSS {figures.rss_kib[-1] / 1024:.1f}MiB,"
                    f" fds {figures.fds[-1]}, leftovers {len(left)}",
                    flush=True,
                )
    finally:
        daemon.remove()
        os.environ.clear()
        os.environ.update(saved_env)
        subprocess.run(["rm", "-rf", str(work)], check=False)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.soak.soak")
    parser.add_argument("--cycles", type=int, default=30)
    parser.add_argument("--guests", type=int, default=10)
    args = parser.parse_args()
    figures = soak(args.cycles, args.guests)
    print(figures.summary())
    return 1 if figures.leftovers or max(figures.fds) > figures.fds[0] else 0


if __name__ == "__main__":
    sys.exit(main())
