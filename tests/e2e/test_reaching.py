"""Getting into real guests, through the CLI: exec through the agent, the console, ssh and the files
other tools read; and adopting running guests without restarting them.

Three tiny guests share the module: `net` on an isolated network (198.51.100.0/26) with an sshd that
takes the key of a throwaway home directory; `bare` with no NIC at all; `mute` whose agent never
starts (the kernel's command line tells its /init so).
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import libvirt
import pytest
import yaml

from tests.tooling.images import GuestImage

from ..conftest import SCRATCH, remove_project
from .conftest import applied, write_spec

pytestmark = [pytest.mark.e2e, pytest.mark.libvirtd]

NETWORK = "198.51.100.1/26"  # this suite's own range: nothing else on the host uses it


@dataclass
class Guests:
    project: str
    spec: Path
    home: Path  # HOME for vmctl and ssh: its .ssh holds the key the `net` guest authorizes
    net: str
    bare: str
    mute: str

    def env(self) -> dict[str, str]:
        return {"HOME": str(self.home)}


def _run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """vmctl ARGS; its stdin is `stdin` if given, else empty (never the test's own)."""
    return subprocess.run(
        [sys.executable, "-m", "vmctl", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
        timeout=timeout,
        input=stdin or "",
    )


@pytest.fixture(scope="module")
def guests(tiny_image: GuestImage, libvirtd: str) -> Iterator[Guests]:
    project = f"t{uuid.uuid4().hex[:10]}"
    pool_dir = SCRATCH / project
    pool_dir.mkdir(parents=True, exist_ok=True)
    SCRATCH.chmod(0o755)
    pool_dir.chmod(0o755)
    home = SCRATCH / f"{project}-home"
    (home / ".ssh").mkdir(parents=True)
    key = home / ".ssh" / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "vmctl-test", "-f", str(key)], check=True)
    public = key.with_suffix(".pub").read_text().strip()
    spec = pool_dir / "vmctl.yaml"
    boot = f'{{kernel: {tiny_image.kernel}, initrd: {tiny_image.initrd}, cmdline: "{tiny_image.cmdline}"}}'
    # vmctl.dhcp: the tiny guest asks for an address on each NIC and runs its sshd.
    net_boot = (
        f'{{kernel: {tiny_image.kernel}, initrd: {tiny_image.initrd}, cmdline: "{tiny_image.cmdline} vmctl.dhcp"}}'
    )
    mute_boot = (
        f'{{kernel: {tiny_image.kernel}, initrd: {tiny_image.initrd}, cmdline: "{tiny_image.cmdline} vmctl.noagent"}}'
    )
    write_spec(
        spec,
        f"""\
version: 1
project: {project}
pools:
  {project}pool: {{path: {pool_dir}}}
networks:
  lan: {{mode: isolated, ipv4: {NETWORK}}}
defaults:
  memory: 256MiB
  boot: {boot}
guests:
  {project}-net:
    boot: {net_boot}
    nics:
      lan: {{network: lan}}
    cloud_init:
      user_data:
        users:
          - name: root
            ssh_authorized_keys: ["{public}"]
    wait: {{agent: true, cloud_init: false, timeout: 3m}}
  {project}-bare:
    disks:
      scratch: {{size: 64MiB}}
    wait: {{agent: true, cloud_init: false, timeout: 3m}}
  {project}-mute:
    boot: {mute_boot}
""",
    )
    try:
        applied(str(spec))
        yield Guests(project, spec, home, f"{project}-net", f"{project}-bare", f"{project}-mute")
    finally:
        remove_project("qemu:///system", project)
        subprocess.run(["rm", "-rf", str(pool_dir), str(home)], check=False)


def test_exec_gives_back_the_commands_output_and_status(guests: Guests) -> None:
    result = _run("exec", guests.bare, "--", "/bin/sh", "-c", "echo to-out; echo to-err >&2; exit 3")
    assert (result.returncode, result.stdout, result.stderr) == (3, "to-out\n", "to-err\n")


def test_exec_works_without_any_network(guests: Guests) -> None:
    result = _run("exec", guests.bare, "--", "ls", "/sys/class/net")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["lo"]


def test_exec_passes_stdin_with_dash_i(guests: Guests) -> None:
    """As docker and kubectl exec -i: stdin goes to the command with -i (whole, then end of file), not without."""
    text = "first line\nsecond: ünïcode\n" + "x" * 1000 + "\n"
    piped = _run("exec", "-i", guests.bare, "--", "cat", stdin=text)
    assert (piped.returncode, piped.stdout, piped.stderr) == (0, text, "")
    counted = _run("exec", "--stdin", guests.bare, "--", "/bin/sh", "-c", "wc -c; exit 5", stdin="y" * 65536)
    assert (counted.returncode, counted.stdout.strip()) == (5, "65536"), counted.stderr
    assert _run("exec", guests.bare, "--", "cat", stdin=text).stdout == ""  # without -i: not read

    too_much = _run("exec", "-i", guests.bare, "--", "/bin/sh", "-c", "cat > /tmp/big", stdin="z" * 65537)
    assert too_much.returncode == 1 and too_much.stdout == ""
    assert "--stdin: more than 64 KiB on stdin" in too_much.stderr and "Traceback" not in too_much.stderr
    assert _run("exec", guests.bare, "--", "ls", "/tmp").stdout.split().count("big") == 0  # nothing ran


def test_exec_timeout_says_so(guests: Guests) -> None:
    result = _run("exec", "--timeout", "2s", guests.bare, "--", "sleep", "30")
    assert result.returncode == 1
    assert "did not finish within 2s" in result.stderr


def test_an_agent_that_does_not_answer_names_the_stage_and_shows_the_console(guests: Guests) -> None:
    result = _run("exec", "--timeout", "3s", guests.mute, "--", "true")
    assert result.returncode == 1
    assert f"{guests.mute}: waiting for the guest agent: it did not answer" in result.stderr
    assert "last lines of its serial console:" in result.stderr
    assert "vmctl.noagent: qemu-ga is not started" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_guest(guests: Guests) -> None:
    for command in (
        ["exec", "nosuch-guest", "--", "true"],
        ["ssh", "nosuch-guest"],
        ["console", "--tail", "3", "nosuch-guest"],
    ):
        result = _run(*command)
        assert result.returncode == 1, command
        assert "nosuch-guest" in result.stderr and "no domain of that name" in result.stderr
        assert "Traceback" not in result.stderr


def test_console_tail_prints_the_last_lines_of_the_log(guests: Guests) -> None:
    result = _run("console", "--tail", "200", guests.net)
    assert result.returncode == 0, result.stderr
    assert any("vmctl-tiny: READY" in line for line in result.stdout.splitlines())
    assert len(_run("console", "--tail", "2", guests.net).stdout.splitlines()) == 2


def test_console_is_interactive_and_ctrl_bracket_leaves(guests: Guests) -> None:
    """Through a pty, as a user's terminal: what the guest writes on its serial port shows, Ctrl-] ends it."""
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.execve(
            sys.executable, [sys.executable, "-m", "vmctl", "console", guests.net], {**os.environ, "NO_COLOR": "1"}
        )
    try:
        seen = _read_until(fd, b"Ctrl-] leaves it", 30)
        marker = f"hello-{uuid.uuid4().hex[:8]}"
        _run("exec", guests.net, "--", "/bin/sh", "-c", f"echo {marker} > /dev/ttyS0")
        seen += _read_until(fd, marker.encode(), 30)
        os.write(fd, b"\x1d")
        seen += _read_until(fd, b"disconnected: escape", 30)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, seen


def _read_until(fd: int, wanted: bytes, timeout: float) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while wanted not in seen:
        assert time.monotonic() < deadline, f"never saw {wanted!r}; saw {seen[-2000:]!r}"
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                seen += os.read(fd, 4096)
            except OSError:
                break
    assert wanted in seen, seen[-2000:]
    return seen


def test_ssh_logs_in_with_the_guests_address_user_and_key(guests: Guests) -> None:
    boot_id = _run("exec", guests.net, "--", "cat", "/proc/sys/kernel/random/boot_id").stdout
    result = _run("ssh", "--wait", "2m", guests.net, "--", "cat", "/proc/sys/kernel/random/boot_id", env=guests.env())
    inside = _run("exec", guests.net, "--", "/bin/sh", "-c", "ls -la /root /root/.ssh; cat /root/.ssh/authorized_keys")
    assert (result.returncode, result.stdout) == (0, boot_id), result.stderr + inside.stdout + inside.stderr
    # As with ssh itself, the command is one line for the guest's shell.
    status = _run("ssh", guests.net, "--", "echo", "$((6 * 7))", ";", "exit", "4", env=guests.env())
    assert status.stdout == "42\n", status.stderr
    assert status.returncode == 4


def test_ssh_to_a_guest_without_an_address_waits_then_says_so(guests: Guests) -> None:
    result = _run("ssh", "--wait", "3s", guests.bare, "--", "true", env=guests.env())
    assert result.returncode == 1
    assert f"{guests.bare}: no address the host can reach after waiting 3s" in result.stderr


def test_output_files_work_as_they_are_with_ssh_and_ansible(guests: Guests, tmp_path: Path) -> None:
    _run("ssh", "--wait", "2m", guests.net, "--", "true", env=guests.env())  # its address is known by now
    config = tmp_path / "ssh_config"
    made = _run("output", str(guests.spec), "--format", "ssh-config", env=guests.env())
    assert made.returncode == 0, made.stderr
    config.write_text(made.stdout)
    assert f"{guests.bare} has no address yet" in made.stderr
    boot_id = _run("exec", guests.net, "--", "cat", "/proc/sys/kernel/random/boot_id").stdout
    command = ["ssh", "-F", str(config), guests.net, "cat", "/proc/sys/kernel/random/boot_id"]
    over_ssh = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert (over_ssh.returncode, over_ssh.stdout) == (0, boot_id), over_ssh.stderr

    inventory = tmp_path / "inventory.yaml"
    made = _run("output", str(guests.spec), "--format", "ansible", env=guests.env())
    inventory.write_text(made.stdout)
    listed = subprocess.run(["ansible-inventory", "-i", str(inventory), "--list"], capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    hostvars = json.loads(listed.stdout)["_meta"]["hostvars"]
    assert hostvars[guests.net]["ansible_user"] == "root"
    assert hostvars[guests.net]["ansible_host"].startswith("198.51.100.")
    assert hostvars[guests.net]["ansible_ssh_private_key_file"] == str(guests.home / ".ssh" / "id_ed25519")

    raw = ["ansible", "-i", str(inventory), guests.project, "-m", "raw", "-a", "cat /proc/sys/kernel/random/boot_id"]
    ran = subprocess.run(raw, capture_output=True, text=True, timeout=180, env={**os.environ, **guests.env()})
    assert ran.returncode == 0 and boot_id.strip() in ran.stdout, ran.stdout + ran.stderr

    as_json = json.loads(_run("output", str(guests.spec), env=guests.env()).stdout)
    by_name = {g["name"]: g for g in as_json["guests"]}
    assert by_name[guests.net]["user"] == "root" and by_name[guests.bare]["addresses"] == []


def test_adopting_running_guests_writes_the_record_and_nothing_else(guests: Guests, tmp_path: Path) -> None:
    """vmctl's record is taken out of `bare` and `net` (as if made by hand), then import and apply adopt
    them: no restart, and `net` keeps booting with its cloud-init seed, now a CD-ROM drive of the spec's.
    Last in the module: the guests are another project's afterwards."""
    names = (guests.bare, guests.net)
    boot_ids = {name: _boot_id(name) for name in names}
    conn = libvirt.open("qemu:///system")
    try:
        doms = {name: conn.lookupByName(name) for name in names}
        flags = libvirt.VIR_DOMAIN_AFFECT_LIVE | libvirt.VIR_DOMAIN_AFFECT_CONFIG
        for dom in doms.values():
            dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, None, None, "urn:vmctl:metadata:1", flags)
        before = {name: dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE) for name, dom in doms.items()}
        seed = next(
            s.get("volume")
            for s in ET.fromstring(before[guests.net]).iterfind("devices/disk/source")
            if "-seed-" in (s.get("volume") or "")
        )
        spec = tmp_path / "imported.yaml"
        made = _run("import", *names, "-p", f"{guests.project}b", "-o", str(spec))
        assert made.returncode == 0, made.stderr  # no --force: the seed is a CD-ROM drive of the spec's
        text = spec.read_text()
        uuid_ = doms[guests.bare].UUIDString()
        assert f"# domain {guests.bare} (uuid {uuid_}) on qemu:///system, running when imported" in text
        imported = yaml.safe_load(text)["guests"]
        assert imported[guests.bare]["disks"]["scratch"]["volume"]["name"].endswith("scratch.qcow2")
        assert imported[guests.net]["disks"]["seed"] == {
            "cdrom": True,
            "volume": {"pool": f"{guests.project}pool", "name": seed},
        }

        plan = _run("plan", str(spec))
        assert f"<= guest {guests.bare} will be adopted" in plan.stdout, plan.stdout + plan.stderr
        assert "2 to adopt" in plan.stdout and "0 to create" in plan.stdout
        adopted = _run("apply", "--yes", str(spec))
        assert adopted.returncode == 0, adopted.stdout + adopted.stderr
        assert adopted.stdout.count("adopted (its definition and power are as they were)") == 2, adopted.stdout
        settled = _run("plan", "--detailed-exitcode", str(spec))
        assert (settled.returncode, settled.stdout.strip()) == (0, "No changes. Live state matches the spec.")
        after = {name: dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE) for name, dom in doms.items()}
        assert {n: _without_metadata(x) for n, x in after.items()} == {
            n: _without_metadata(x) for n, x in before.items()
        }
        assert {name: _boot_id(name) for name in names} == boot_ids

        # Now they are vmctl's: a change is planned and applied like any other, and the plan settles.
        spec.write_text(text.replace("memory: 256MiB", "memory: 192MiB\n    max_memory: 256MiB"))
        changed = _run("apply", "--yes", str(spec))
        assert changed.returncode == 0, changed.stdout + changed.stderr
        assert "memory" in changed.stdout
        settled = _run("plan", "--detailed-exitcode", str(spec))
        assert (settled.returncode, settled.stdout.strip()) == (0, "No changes. Live state matches the spec.")
        assert {name: _boot_id(name) for name in names} == boot_ids
        media = [s.get("volume") for s in ET.fromstring(doms[guests.net].XMLDesc(0)).iterfind("devices/disk/source")]
        assert seed in media  # still in its drive, in the running guest too

        # Another project's spec naming them is refused, with who owns them.
        other = tmp_path / "other.yaml"
        other.write_text(text.replace(f"project: {guests.project}b", f"project: {guests.project}c"))
        refused = _run("plan", str(other))
        assert refused.returncode == 1
        assert f"managed by vmctl for project {guests.project}b" in refused.stderr
    finally:
        conn.close()
        remove_project("qemu:///system", f"{guests.project}b")


def _boot_id(name: str) -> str:
    found = _run("exec", name, "--", "cat", "/proc/sys/kernel/random/boot_id")
    assert found.returncode == 0 and found.stdout, found.stderr
    return found.stdout


def _without_metadata(xml: str) -> str:
    root = ET.fromstring(xml)
    for tag in ("metadata", "title"):
        for element in root.findall(tag):
            root.remove(element)
    return ET.tostring(root, encoding="unicode")
