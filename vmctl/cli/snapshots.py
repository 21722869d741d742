"""`vmctl snapshot save|revert|list|delete`: internal snapshots of this project's guests, for a
fast reset (a running guest's memory included, so a revert resumes it where it was saved).

Snapshots are not part of the spec: a plan compares the guest as it is after a revert, and
destroy (or gc) removes a guest's snapshots with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vmctl.cli.options import Connect, Hosts, Json, NoColor, SpecPaths, Workspace, global_options
from vmctl.errors import VmctlError

if TYPE_CHECKING:
    from vmctl.cli.session import Session
    from vmctl.model import OwnedGuest, SnapshotInfo

app = typer.Typer(
    name="snapshot",
    help="Save a guest as it is (memory included when it runs) and go back to it in seconds.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

GuestArg = Annotated[str, typer.Argument(metavar="GUEST", help="A guest of this project (and workspace).")]
NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The snapshot's name.")]
OptionalGuest = Annotated[
    str | None, typer.Argument(metavar="GUEST", help="Only this guest's (default: every guest's).", show_default=False)
]


@app.command()
def save(
    ctx: typer.Context,
    guest: GuestArg,
    name: NameArg,
    spec_paths: SpecPaths = None,
    connect: Connect = None,
    workspace: Workspace = None,
    no_color: NoColor = False,
    hosts: Hosts = None,
) -> None:
    """Save GUEST as it is now under NAME: its disks, and its memory if it runs."""
    with _guest(ctx, spec_paths, connect, workspace, no_color, guest, hosts) as (session, domain):
        _check_name(name)
        session.backend.create_snapshot(domain, name)
    print(f"guest {domain}: saved as snapshot {name}")


@app.command()
def revert(
    ctx: typer.Context,
    guest: GuestArg,
    name: NameArg,
    spec_paths: SpecPaths = None,
    connect: Connect = None,
    workspace: Workspace = None,
    no_color: NoColor = False,
    hosts: Hosts = None,
) -> None:
    """Put GUEST back as it was saved in NAME: running where it was, or stopped."""
    with _guest(ctx, spec_paths, connect, workspace, no_color, guest, hosts) as (session, domain):
        session.backend.revert_snapshot(domain, name)
    print(f"guest {domain}: reverted to snapshot {name}")


@app.command()
def delete(
    ctx: typer.Context,
    guest: GuestArg,
    name: NameArg,
    spec_paths: SpecPaths = None,
    connect: Connect = None,
    workspace: Workspace = None,
    no_color: NoColor = False,
    hosts: Hosts = None,
) -> None:
    """Delete GUEST's snapshot NAME (the guest itself is not changed)."""
    with _guest(ctx, spec_paths, connect, workspace, no_color, guest, hosts) as (session, domain):
        session.backend.delete_snapshot(domain, name)
    print(f"guest {domain}: snapshot {name} deleted")


@app.command("list")
def list_snapshots(
    ctx: typer.Context,
    guest: OptionalGuest = None,
    spec_paths: SpecPaths = None,
    connect: Connect = None,
    workspace: Workspace = None,
    as_json: Json = False,
    no_color: NoColor = False,
    hosts: Hosts = None,
) -> None:
    """Every snapshot of this project's guests (or of GUEST), oldest first; of each of the spec's hosts."""
    from vmctl.cli.session import close_all, in_parallel, open_sessions
    from vmctl.units import utc_timestamp

    given = global_options(ctx, connect, workspace, no_color)
    sessions = open_sessions(
        spec_paths or [],
        given.workspace,
        given.uri,
        hosts or [],
        resolve=False,
        connect_given=bool(given.connect),
        for_guest=guest,
    )
    try:
        per_host = in_parallel([partial(_snapshots_of, s, guest) for s in sessions])
    finally:
        close_all(sessions)
    if guest and not any(per_host):
        _domain((), guest)  # the error naming the guest
    found = [(session, s) for session, snaps in zip(sessions, per_host, strict=True) for s in snaps or ()]
    rows: list[dict[str, Any]] = [
        {
            **({"host": session.host_name} if session.host_name else {}),
            "guest": s.guest,
            "name": s.name,
            "created": utc_timestamp(s.created),
            "state": s.state,
            "memory": s.memory,
            "current": s.current,
        }
        for session, s in found
    ]
    out = given.output()
    if as_json:
        out.json({"snapshots": rows})
        return
    if not rows:
        out.say("No snapshots.")
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    with_host = any("host" in row for row in rows)
    for column in ("HOST",) * with_host + ("GUEST", "SNAPSHOT", "CREATED", "STATE", "MEMORY", "CURRENT"):
        table.add_column(column)
    for row in rows:
        yes_no = ("yes" if row["memory"] else "no", "yes" if row["current"] else "")
        host = (row["host"],) if with_host else ()
        table.add_row(*host, row["guest"], row["name"], row["created"], row["state"], *yes_no)
    out.out.print(table)


def _snapshots_of(session: Session, guest: str | None) -> list[SnapshotInfo] | None:
    """The snapshots of this host's guests of this project (or of GUEST; None when it is not here)."""
    from vmctl.cli.session import on_host

    with on_host(session):
        owned = session.backend.read_owned(session.owner)
        if guest and not _has(owned.guests, guest):
            return None
        names = [_domain(owned.guests, guest)] if guest else [g.name for g in owned.guests]
        return [s for name in names for s in session.backend.snapshots(name)]


@contextmanager
def _guest(
    ctx: typer.Context,
    spec_paths: list[str] | None,
    connect: str | None,
    workspace: str | None,
    no_color: bool,
    guest: str,
    hosts: list[str] | None = None,
) -> Iterator[tuple[Session, str]]:
    """The session and the domain of one guest of this project, under the project's lock on its
    host. A UEFI guest is refused: libvirt 9.0's internal snapshots cannot hold its NVRAM."""
    from vmctl.apply.lock import apply_lock
    from vmctl.cli.session import close_all, closed_before_unlock, open_sessions

    given = global_options(ctx, connect, workspace, no_color)
    sessions = open_sessions(
        spec_paths or [],
        given.workspace,
        given.uri,
        hosts or [],
        resolve=False,
        connect_given=bool(given.connect),
        for_guest=guest,
    )
    try:
        session = _holder_of(sessions, guest)
        with (
            apply_lock([(session.label, session.backend)], session.spec.project, session.spec.workspace, 300),
            closed_before_unlock(sessions),
        ):
            domain = _domain(session.backend.read_owned(session.owner).guests, guest)
            view = session.backend.read_guest(domain)
            if view.guest is not None and view.guest.firmware == "uefi":
                raise VmctlError(
                    f"guest {domain}: a UEFI guest cannot be snapshotted here",
                    hint="libvirt 9.0's internal snapshots cannot hold its NVRAM (firmware variables)",
                )
            yield session, domain
    finally:
        close_all(sessions)


def _holder_of(sessions: list[Session], guest: str) -> Session:
    """The one host (of those opened) that has GUEST; with several, --host must say which."""
    if len(sessions) == 1:
        return sessions[0]
    having = [s for s in sessions if _has(s.backend.read_owned(s.owner).guests, guest)]
    if not having:
        _domain((), guest)
    if len(having) > 1:
        names = ", ".join(str(s.host_name) for s in having)
        raise VmctlError(f"guest {guest} is on several hosts: {names}", hint="say which with --host NAME")
    return having[0]


def _has(guests: tuple[OwnedGuest, ...], name: str) -> bool:
    return any(name in (g.name, g.record.hostname) for g in guests)


def _domain(guests: tuple[OwnedGuest, ...], name: str) -> str:
    """A guest of this project by its name or host name."""
    for guest in guests:
        if name in (guest.name, guest.record.hostname):
            return guest.name
    raise VmctlError(f"no guest of this project named {name}", hint="vmctl status lists them")


def _check_name(name: str) -> None:
    from vmctl.model import naming

    if not naming.is_valid_libvirt_name(name):
        raise VmctlError(
            f"invalid snapshot name {name!r}", hint="letters, digits, '.', '_', '+' and '-', at most 100 characters"
        )
