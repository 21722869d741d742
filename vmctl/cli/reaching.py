"""Getting into guests that run: `exec` through the guest agent, `ssh`, `console`, and `output` for other tools."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vmctl.cli.options import Connect, NoColor, Paths, Workspace, global_options
from vmctl.errors import VmctlError

if TYPE_CHECKING:
    from vmctl.hypervisor import Hypervisor
    from vmctl.reach.access import Access

Guest = Annotated[str, typer.Argument(metavar="GUEST", help="The guest's name (with --workspace: without its prefix).")]
Command = Annotated[list[str], typer.Argument(metavar="-- CMD [ARG...]", help="The program and its arguments.")]
OptionalCommand = Annotated[
    list[str] | None,
    typer.Argument(metavar="[-- CMD [ARG...]]", help="A command to run instead of a shell.", show_default=False),
]
Timeout = Annotated[
    str, typer.Option("--timeout", metavar="DURATION", help="Give up after this long (the agent's answer included).")
]
Stdin = Annotated[
    bool,
    typer.Option(
        "--stdin",
        "-i",
        help="Pass vmctl's stdin to the command: read to its end first (at most 64 KiB), as the agent takes it at once.",
    ),
]
# The agent takes a command's input whole, base64 in one JSON request, and parses it slowly: under TCG
# 64 KiB takes half a second, 192 KiB more than the agent's time to answer (which also unsettles it).
STDIN_MAX = 64 * 1024
Wait = Annotated[str, typer.Option("--wait", metavar="DURATION", help="How long to wait for the guest's address.")]
Tail = Annotated[
    int | None,
    typer.Option("--tail", metavar="N", min=0, help="Print the last N lines of the console log and exit."),
]
Format = Annotated[
    str,
    typer.Option("--format", metavar="FORMAT", help="json, ssh-config (for ssh -F) or ansible (a YAML inventory)."),
]
FORMATS = ("json", "ssh-config", "ansible")


def _domain(guest: str, workspace: str | None) -> str:
    from vmctl.model import naming

    return naming.domain_name(guest, workspace)


def _seconds(text: str, option: str) -> float:
    from vmctl.units import Range, UnitError, parse_duration

    try:
        return parse_duration(text, Range(1, 24 * 3600))
    except UnitError as exc:
        raise VmctlError(f"{option}: {exc}", hint=exc.hint) from None


def _console_tail(backend: Hypervisor, name: str) -> list[str]:
    from vmctl.libvirtxml.readback import serial_log_file
    from vmctl.reach.console import quiet_tail

    return quiet_tail(serial_log_file(backend.domain_xml(name)))


def exec_(
    ctx: typer.Context,
    guest: Guest,
    command: Command,
    timeout: Timeout = "60s",
    stdin: Stdin = False,
    connect: Connect = None,
    workspace: Workspace = None,
) -> int:
    """Run a command in a guest through its agent (no network needed); its output and exit code are vmctl's."""
    from vmctl.hypervisor import connect as connect_to
    from vmctl.reach.agent import check_running, run_program, wait_for_agent

    given = global_options(ctx, connect, workspace)
    seconds = _seconds(timeout, "--timeout")
    given_input = _read_stdin() if stdin else None
    uri = given.uri(None)
    name = _domain(guest, given.workspace)
    backend = connect_to(uri)
    try:
        check_running(backend, name, uri)
        wait_for_agent(backend, name, time.monotonic() + seconds, lambda: _console_tail(backend, name))
        finished = run_program(backend, name, command, seconds, given_input)
    finally:
        backend.close()
    _write(sys.stdout, finished.stdout)
    _write(sys.stderr, finished.stderr)
    return finished.code


def _read_stdin() -> bytes:
    """All of vmctl's stdin, before anything is asked of the hypervisor; an error if it is too much."""
    if sys.stdin.isatty():
        print(
            "vmctl: reading stdin to its end (Ctrl-D), then running the command: for a shell, vmctl ssh",
            file=sys.stderr,
        )
    data = sys.stdin.buffer.read(STDIN_MAX + 1)
    if len(data) > STDIN_MAX:
        raise VmctlError(
            "--stdin: more than 64 KiB on stdin: the guest agent takes a command's input whole, at its start",
            hint="copy large files over ssh: vmctl output --format ssh-config > cfg; scp -F cfg FILE GUEST:",
        )
    return data


def _write(stream: Any, data: bytes) -> None:
    """The command's bytes as they are; a stream without bytes (captured in tests) gets text."""
    if not data:
        return
    stream.flush()
    if hasattr(stream, "buffer"):
        stream.buffer.write(data)
        stream.buffer.flush()
    else:
        stream.write(data.decode("utf-8", "replace"))


def console(
    ctx: typer.Context,
    guest: Guest,
    tail: Tail = None,
    connect: Connect = None,
    workspace: Workspace = None,
) -> None:
    """The guest's serial console: interactive (Ctrl-] leaves it), or its log's last lines with --tail."""
    from vmctl.hypervisor import connect as connect_to
    from vmctl.libvirtxml.readback import serial_log_file
    from vmctl.reach.agent import check_running
    from vmctl.reach.console import attach, log_tail

    given = global_options(ctx, connect, workspace)
    uri = given.uri(None)
    name = _domain(guest, given.workspace)
    backend = connect_to(uri)
    try:
        if tail is not None:
            if not backend.domain_exists(name):
                raise VmctlError(f"{name}: no domain of that name on {uri}", hint="vmctl status lists them")
            for line in log_tail(serial_log_file(backend.domain_xml(name, inactive=True)), tail):
                print(line)
            return
        check_running(backend, name, uri)
        stream = backend.open_console(name)
        sys.stderr.write(f"connected to the serial console of {name}; Ctrl-] leaves it\r\n")
        sys.stderr.flush()
        reason = attach(stream, sys.stdin.fileno(), sys.stdout.fileno())
        sys.stderr.write(f"\r\ndisconnected: {reason}\r\n")
    finally:
        backend.close()


def _public_keys() -> dict[Path, str]:
    found = {}
    for path in sorted((Path.home() / ".ssh").glob("*.pub")):
        try:
            found[path] = path.read_text("utf-8", errors="replace")
        except OSError:
            continue
    return found


def guest_access(backend: Hypervisor, name: str, guest: str, keys: dict[Path, str]) -> Access:
    """Where and as whom to log in to one domain, as it is now."""
    from vmctl.reach.access import Access, authorized_keys, best_addresses, login_user, private_key

    view = backend.read_guest(name)
    record = view.record
    cloud_init = record.cloud_init if record else None
    addresses = best_addresses(backend.addresses(name), view.guest.nics if view.guest else None) if view.active else ()
    key = private_key(authorized_keys(cloud_init), keys)
    state = "running" if view.active else "stopped"
    return Access(name, record.guest if record else guest, state, addresses, login_user(cloud_init), key)


def ssh(
    ctx: typer.Context,
    guest: Guest,
    command: OptionalCommand = None,
    wait: Wait = "1m",
    connect: Connect = None,
    workspace: Workspace = None,
) -> int:
    """Log in with the system ssh (so ~/.ssh/config applies): the guest's address, its user and your key."""
    from vmctl.hypervisor import connect as connect_to
    from vmctl.reach.access import ssh_command
    from vmctl.reach.agent import check_running

    given = global_options(ctx, connect, workspace)
    seconds = _seconds(wait, "--wait")
    uri = given.uri(None)
    name = _domain(guest, given.workspace)
    backend = connect_to(uri)
    try:
        check_running(backend, name, uri)
        access = _addressed(backend, name, guest, time.monotonic() + seconds, wait)
    finally:
        backend.close()
    try:
        return subprocess.run(ssh_command(access, command or [])).returncode
    except FileNotFoundError:
        raise VmctlError("ssh is not installed", hint="on Debian: apt install openssh-client") from None


def _addressed(backend: Hypervisor, name: str, guest: str, deadline: float, wait: str) -> Access:
    keys = _public_keys()
    while True:
        access = guest_access(backend, name, guest, keys)
        if access.host is not None:
            return access
        if time.monotonic() >= deadline:
            raise VmctlError(
                f"{name}: no address the host can reach after waiting {wait}",
                reasons=["neither its guest agent nor a DHCP lease of its network reports one"],
                hint="does it have a NIC on a network (not user-mode)? a longer --wait? vmctl console " + name,
            )
        time.sleep(1)


def output(
    ctx: typer.Context,
    paths: Paths = None,
    output_format: Format = "json",
    connect: Connect = None,
    workspace: Workspace = None,
    no_color: NoColor = False,
) -> None:
    """Every guest of the spec with its address, user and key: JSON, an ssh -F file, or an Ansible inventory."""
    from vmctl.cli.session import open_session
    from vmctl.reach import access as reach

    if output_format not in FORMATS:
        raise VmctlError(f"--format: unknown format '{output_format}'", hint=f"one of {', '.join(FORMATS)}")
    given = global_options(ctx, connect, workspace, no_color)
    session = open_session(paths or [], given.workspace, given.uri, resolve=False)
    try:
        owned = {g.name: g for g in session.backend.read_owned(session.owner).guests}
        keys = _public_keys()
        guests = [
            guest_access(session.backend, g.name, g.guest, keys)
            if g.name in owned
            else reach.Access(g.name, g.guest, "absent", (), None, None)
            for g in session.spec.guests
        ]
    finally:
        session.backend.close()
    _print_output(output_format, session.spec.project, guests)


def _print_output(output_format: str, project: str, guests: list[Access]) -> None:
    import json

    import yaml

    from vmctl.reach import access as reach

    for guest in guests if output_format != "json" else ():
        if guest.host is None:
            print(f"vmctl: {guest.name} has no address yet ({guest.state}): left out", file=sys.stderr)
    if output_format == "ssh-config":
        sys.stdout.write(reach.ssh_config(guests))
    elif output_format == "ansible":
        sys.stdout.write(yaml.safe_dump(reach.ansible_inventory(project, guests), sort_keys=False))
    else:
        document = {"project": project, "guests": [reach.as_json(g) for g in guests]}
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
