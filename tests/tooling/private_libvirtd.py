"""A libvirtd of the tests' own (a session daemon), for tests that restart it or fill its disks.

The qemu:///system daemon is shared with everyone else's tests: restarting it would cut their
connections mid-test. A session daemon is a complete libvirtd (QEMU driver, storage pools, streams)
that needs no system state; run as root, libvirtd would start in system mode, so there it runs as
`nobody`, whose socket root can still reach. No network of its own: guests use user-mode NICs.

It runs under `tini -s`, as scripts/start-libvirtd.sh runs the system daemon: libvirt daemonizes
QEMU, so a QEMU that exits is orphaned, and libvirtd sees it gone only once it is reaped. Without a
subreaper that waits for this container's PID 1, which reaps about once a second: every lock domain
given back cost 1.2-2 s instead of 0.2 s.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import libvirt

_NOBODY = 65534


class PrivateLibvirtd:
    """Start, restart and stop a session libvirtd whose files all live under one directory."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="vmctl-libvirtd-", dir="/tmp"))
        self.base.chmod(0o755)
        self.as_root = os.getuid() == 0
        self._chown(self.base)
        for sub in ("run", "home", "config", "cache", "data", "pools"):
            (self.base / sub).mkdir()
            self._chown(self.base / sub)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"qemu+unix:///session?socket={self.base}/run/libvirt/libvirt-sock"

    def pool_dir(self, name: str) -> Path:
        path = self.base / "pools" / name
        path.mkdir(parents=True, exist_ok=True)
        self._chown(path)
        return path

    def start(self) -> None:
        env = {
            "HOME": str(self.base / "home"),
            "XDG_RUNTIME_DIR": str(self.base / "run"),
            "XDG_CONFIG_HOME": str(self.base / "config"),
            "XDG_CACHE_HOME": str(self.base / "cache"),
            "XDG_DATA_HOME": str(self.base / "data"),
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        }
        drop = ["setpriv", f"--reuid={_NOBODY}", f"--regid={_NOBODY}", "--clear-groups"] if self.as_root else []
        log = (self.base / "libvirtd.log").open("ab")
        command = [*drop, "tini", "-s", "--", "libvirtd", "--timeout", "0"]
        self.process = subprocess.Popen(command, env=env, cwd="/", stdout=log, stderr=log)
        self._wait_until_it_answers()

    @property
    def libvirtd_pid(self) -> int:
        """libvirtd's own process (tini's child)."""
        assert self.process is not None, "the daemon is running"
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        assert children, f"libvirtd has exited: see {self.base}/libvirtd.log"
        return int(children[0])

    def stop(self) -> None:
        """libvirtd told to stop, killed if it has not within 20 s; tini exits with it."""
        if self.process is not None:
            daemon = self.libvirtd_pid
            os.kill(daemon, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(daemon, signal.SIGKILL)
                self.process.wait()
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def _wait_until_it_answers(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                libvirt.open(self.uri).close()
                return
            except libvirt.libvirtError:
                time.sleep(0.1)
        raise RuntimeError(f"the private libvirtd did not answer: see {self.base}/libvirtd.log")

    def _chown(self, path: Path) -> None:
        if self.as_root:
            os.chown(path, _NOBODY, _NOBODY)
