"""Two hypervisors on one machine (tests/remote, the remote benchmark), reached as remote hosts are: libvirt's ssh transport to an sshd
on 127.0.0.1 (its own port, config and host key), nothing leaving the machine.

- host A: qemu+ssh://root@ALIAS/system, the shared system daemon;
- host B: qemu+ssh://USER@ALIAS/session, the session daemon of an unprivileged user made for the
  test (started by libvirt's virt-ssh-helper on the first connection; its own host UUID).

ALIAS is a `Host` entry of ~/.ssh/config with the sshd's port: vmctl must let ssh read it. ssh reads
~/.ssh from the password database, not $HOME, so each "machine" running vmctl is a mount namespace
in which its own directory is bind-mounted over ~/.ssh, with its own lock directory too.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ALIAS = "vmctl-test-hosts"
DEAD_ALIAS = "vmctl-test-unreachable"  # a port nothing listens on


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Sshd:
    """An sshd on 127.0.0.1 with its own config; stop() and start() to make the hosts unreachable."""

    home: Path
    port: int
    user: str
    process: subprocess.Popen[bytes] | None = None

    def config(self) -> Path:
        path = self.home / "sshd_config"
        path.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.home / 'host_key'}\n"
            f"PidFile {self.home / 'sshd.pid'}\nAuthorizedKeysFile {self.home / 'authorized_keys'}\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
            f"StrictModes no\nUsePAM no\nAllowUsers root {self.user}\nMaxStartups 50\nMaxSessions 50\n"
        )
        return path

    def start(self) -> None:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # its privilege-separation directory
        log = (self.home / "sshd.log").open("ab")
        # Under a subreaper, as scripts/start-libvirtd.sh runs the system libvirtd: the test user's
        # session libvirtd (started through an ssh session) daemonizes, and so does each QEMU it
        # runs; an orphan reaped only by this container's PID 1 (about once a second) made every
        # domain destroy, the lock's included, wait that long.
        sshd = ["tini", "-s", "--", "/usr/sbin/sshd", "-D", "-e", "-f", str(self.config())]
        self.process = subprocess.Popen(sshd, stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"sshd did not listen on port {self.port}: {(self.home / 'sshd.log').read_text()}")

    def stop(self) -> None:
        """The listener goes; sessions already open keep going, as on a real host."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@dataclass
class Machine:
    """A machine running vmctl: its own ~/.ssh (config with the Host alias, key, known_hosts) and lock dir."""

    name: str
    ssh_dir: Path
    lock_dir: Path

    def command(self, argv: list[str]) -> list[str]:
        home_ssh = Path(pwd.getpwuid(os.getuid()).pw_dir) / ".ssh"
        script = 'mount --bind "$0" "$1" && shift && exec "$@"'
        return [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            str(self.ssh_dir),
            str(home_ssh),
            *argv,
        ]

    def env(self) -> dict[str, str]:
        return {**os.environ, "NO_COLOR": "1", "VMCTL_LOCK_DIR": str(self.lock_dir)}

    def run(self, *argv: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(list(argv)), capture_output=True, text=True, env=self.env(), timeout=timeout)

    def vmctl(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return self.run(sys.executable, "-m", "vmctl", *args, timeout=timeout)

    def start(self, *argv: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(list(argv)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env()
        )

    def virsh(self, uri: str, *args: str) -> str:
        result = self.run("virsh", "-q", "-c", uri, *args, timeout=120)
        assert result.returncode == 0, result.stderr
        return result.stdout


@dataclass
class TwoHosts:
    sshd: Sshd
    user: str
    home: Path
    machines: list[Machine] = field(default_factory=list)

    @property
    def system(self) -> str:
        return f"qemu+ssh://root@{ALIAS}/system"

    @property
    def session(self) -> str:
        return f"qemu+ssh://{self.user}@{ALIAS}/session"

    @property
    def unreachable(self) -> str:
        return f"qemu+ssh://root@{DEAD_ALIAS}/system"


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "vmctl-test", "-f", str(path)], check=True)


def _make_user() -> str:
    name = f"vmctlb{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", name], check=True)
    subprocess.run(["usermod", "-p", "*", name], check=True)  # "!" (locked) makes sshd refuse its keys too
    return name


def _remove_user(name: str) -> None:
    """Stop what the test user's session daemon runs (its guests, libvirtd), by process id, then the user."""
    uid = pwd.getpwnam(name).pw_uid
    for _ in range(50):
        found = subprocess.run(["pgrep", "-U", str(uid)], capture_output=True, text=True).stdout.split()
        if not found:
            break
        for pid in found:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        time.sleep(0.1)
    subprocess.run(["userdel", "--remove", name], capture_output=True)


def _machine(base: Path, name: str, sshd: Sshd, key_pub: list[str]) -> Machine:
    ssh_dir = base / name / "ssh"
    ssh_dir.mkdir(parents=True, mode=0o700)
    _keygen(ssh_dir / "id_ed25519")
    key_pub.append((ssh_dir / "id_ed25519.pub").read_text())
    host_key = (sshd.home / "host_key.pub").read_text().split()[:2]
    (ssh_dir / "known_hosts").write_text(f"[127.0.0.1]:{sshd.port} {' '.join(host_key)}\n")
    dead = _free_port()
    (ssh_dir / "config").write_text(
        f"Host {ALIAS}\n  HostName 127.0.0.1\n  Port {sshd.port}\n"
        f"Host {DEAD_ALIAS}\n  HostName 127.0.0.1\n  Port {dead}\n"
        "Host *\n  IdentityFile ~/.ssh/id_ed25519\n  IdentitiesOnly yes\n  BatchMode yes\n"
    )
    lock_dir = base / name / "locks"
    return Machine(name, ssh_dir, lock_dir)


@contextmanager
def loopback_hosts() -> Iterator[TwoHosts]:
    """sshd on 127.0.0.1, a test user for the session daemon, two machines; all removed at the end."""
    for program in ("/usr/sbin/sshd", "ssh", "unshare", "virt-ssh-helper"):
        if not shutil.which(program):
            raise RuntimeError(f"{program} is missing: run scripts/system-deps.sh")
    home_ssh = Path(pwd.getpwuid(os.getuid()).pw_dir) / ".ssh"
    # The mount point of each machine's own ~/.ssh. It stays: another run of this (a test suite, the
    # benchmark) may be using it as its mount point at the same time.
    home_ssh.mkdir(mode=0o700, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="vmctl-hosts-"))
    base.chmod(0o755)  # sshd reads authorized_keys as the user logging in
    user = _make_user()
    sshd = Sshd(base / "sshd", _free_port(), user)
    try:
        sshd.home.mkdir()
        _keygen(sshd.home / "host_key")
        keys: list[str] = []
        hosts = TwoHosts(sshd, user, base)
        hosts.machines = [_machine(base, name, sshd, keys) for name in ("machine1", "machine2")]
        (sshd.home / "authorized_keys").write_text("".join(keys))
        (sshd.home / "authorized_keys").chmod(0o644)
        sshd.start()
        yield hosts
    finally:
        sshd.stop()
        _remove_user(user)
        shutil.rmtree(base, ignore_errors=True)
