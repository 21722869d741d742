"""`vmctl snapshot save|revert|list|delete`: internal snapshots of this project's guests, for a
fast reset (a running guest's memory included, so a revert resumes it where it was saved).

Snapshots are not part of the spec: a plan compares the guest as it is after a revert, and
destroy (or gc) removes a guest's snapshots with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vmctl.cli.options import Connect, Json, NoColor, SpecPaths, Workspace, global_options
from vmctl.errors import VmctlError

if TYPE_CHECKING:
    from vmctl.cli.session import Session
    from vmctl.model import OwnedGuest

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
) -> None:
    """Save GUEST as it is now under NAME: its disks, and its memory if it runs."""
    with _guest(ctx, spec_paths, connect, workspace, no_color, guest) as (session, domain):
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
) -> None:
    """Put GUEST back as it was saved in NAME: running where it was, or stopped."""
    with _guest(ctx, spec_paths, connect, workspace, no_color, guest) as (session, domain):
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
) -> None:
    """Delete GUEST's snapshot NAME (the guest itself is not changed)."""
    with _guest(ctx, spec_paths, connect, workspace, no_color, guest) as (session, domain):
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
) -> None:
    """Every snapshot of this project's guests (or of GUEST), oldest first."""
    from vmctl.cli.session import open_session
    from vmctl.units import utc_timestamp

    given = global_options(ctx, connect, workspace, no_color)
    session = open_session(spec_paths or [], given.workspace, given.uri, resolve=False)
    try:
        owned = session.backend.read_owned(session.owner)
        names = [_domain(owned.guests, guest)] if guest else [g.name for g in owned.guests]
        found = [s for name in names for s in session.backend.snapshots(name)]
    finally:
        session.backend.close()
    rows: list[dict[str, Any]] = [
        {
            "guest": s.guest,
            "name": s.name,
            "created": utc_timestamp(s.created),
            "state": s.state,
            "memory": s.memory,
            "current": s.current,
        }
        for s in found
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
    for column in ("GUEST", "SNAPSHOT", "CREATED", "STATE", "MEMORY", "CURRENT"):
        table.add_column(column)
    for row in rows:
        yes_no = ("yes" if row["memory"] else "no", "yes" if row["current"] else "")
        table.add_row(row["guest"], row["name"], row["created"], row["state"], *yes_no)
    out.out.print(table)


@contextmanager
def _guest(
    ctx: typer.Context,
    spec_paths: list[str] | None,
    connect: str | None,
    workspace: str | None,
    no_color: bool,
    guest: str,
) -> Iterator[tuple[Session, str]]:
    """The session and the domain of one guest of this project, under the project's lock. A UEFI
    guest is refused: libvirt 9.0's internal snapshots cannot hold its NVRAM."""
    from vmctl.apply.lock import apply_lock
    from vmctl.cli.session import open_session

    given = global_options(ctx, connect, workspace, no_color)
    session = open_session(spec_paths or [], given.workspace, given.uri, resolve=False)
    try:
        with apply_lock(session.uri, session.spec.project, session.spec.workspace, 300):
            domain = _domain(session.backend.read_owned(session.owner).guests, guest)
            view = session.backend.read_guest(domain)
            if view.guest is not None and view.guest.firmware == "uefi":
                raise VmctlError(
                    f"guest {domain}: a UEFI guest cannot be snapshotted here",
                    hint="libvirt 9.0's internal snapshots cannot hold its NVRAM (firmware variables)",
                )
            yield session, domain
    finally:
        session.backend.close()


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
