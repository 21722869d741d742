"""`vmctl import`: existing domains -> a spec that adopts them, or a refusal naming what it cannot express."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from vmctl.cli.options import Connect, global_options
from vmctl.errors import VmctlError

if TYPE_CHECKING:
    from vmctl.hypervisor import Hypervisor
    from vmctl.importing.guest import ImportedGuest

Domains = Annotated[
    list[str] | None, typer.Argument(metavar="DOMAIN", help="Domains to import, by libvirt name.", show_default=False)
]
All = Annotated[bool, typer.Option("--all", help="Every domain on the host that vmctl does not manage.")]
Out = Annotated[
    str | None, typer.Option("--output", "-o", metavar="FILE", help="Write the spec here (default: stdout).")
]
Force = Annotated[
    bool,
    typer.Option(
        "--force", help="Import domains with what vmctl cannot express too: it goes when vmctl redefines them."
    ),
]
Project = Annotated[str, typer.Option("--project", "-p", metavar="NAME", help="The spec's project.")]


def import_(
    ctx: typer.Context,
    domains: Domains = None,
    everything: All = False,
    out: Out = None,
    force: Force = False,
    project: Project = "imported",
    connect: Connect = None,
) -> None:
    """Write a spec that adopts existing domains; `vmctl apply` of it writes vmctl's record and nothing else."""
    from vmctl.hypervisor import connect as connect_to

    if bool(domains) == everything:
        raise VmctlError("name the domains to import, or give --all", hint="vmctl import web db -o vmctl.yaml")
    if out and Path(out).exists():
        raise VmctlError(f"{out} exists: vmctl import does not overwrite it", hint="name a new file with -o")
    uri = global_options(ctx, connect).uri(None)
    backend = connect_to(uri)
    try:
        names = domains or _unmanaged(backend)
        guests = [_read(backend, name, uri) for name in names]
    finally:
        backend.close()
    _check(guests, force)
    text = _spec_text(project, uri, guests)
    if out:
        Path(out).write_text(text)
        print(
            f"wrote {out}: {len(guests)} guest(s) of project {project}; `vmctl apply {out}` adopts them",
            file=sys.stderr,
        )
    else:
        sys.stdout.write(text)


def _unmanaged(backend: Hypervisor) -> list[str]:
    names = [n for n in backend.domain_names() if backend.read_guest(n).record is None]
    if not names:
        raise VmctlError("every domain on the host is vmctl's already: nothing to import")
    return names


def _read(backend: Hypervisor, name: str, uri: str) -> ImportedGuest:
    from vmctl.importing.guest import imported_guest
    from vmctl.model import Owner

    if not backend.domain_exists(name):
        raise VmctlError(f"no domain named {name} on {uri}", hint="virsh list --all lists them")
    owner = backend.read_guest(name).record
    if owner is not None:
        who = owner.owner.project + (f", workspace {owner.owner.workspace}" if owner.owner.workspace else "")
        raise VmctlError(f"{name} is managed by vmctl already, for project {who}: vmctl will not import it")
    pools = {p.name: p.path for p in backend.read_owned(Owner("")).pools}
    autostart = name in _autostarted(backend, name)
    return imported_guest(backend.domain_xml(name, inactive=True), pools, autostart, backend.is_active(name))


def _autostarted(backend: Hypervisor, name: str) -> set[str]:
    # The domain XML does not say whether it starts with the host; the live state does.
    from vmctl.model import Owner

    state = backend.read_state(Owner(""), adoptable=[name])
    foreign = state.adoptable.get(name)
    return {name} if foreign is not None and foreign.config.autostart else set()


def _check(guests: list[ImportedGuest], force: bool) -> None:
    """Refuse, writing nothing, when a domain cannot be imported as it is."""
    reasons = [f"{g.domain}: {problem}" for g in guests for problem in g.problems]
    if not force:
        reasons += [f"{g.domain}: {element} (vmctl does not model it)" for g in guests for element in g.unmodelled]
    if reasons:
        refused = sorted({r.split(":")[0] for r in reasons})
        hint = "--force imports them without what vmctl does not model (the plan shows each element going)"
        raise VmctlError(
            f"cannot import {', '.join(refused)} as {'it is' if len(refused) == 1 else 'they are'}; nothing was written",
            reasons=reasons,
            hint=None if any(g.problems for g in guests) else hint,
        )


def _spec_text(project: str, uri: str, guests: list[ImportedGuest]) -> str:
    from vmctl.importing.writer import spec_text
    from vmctl.libvirtxml.definition import now

    return spec_text(project, uri, now(), guests)
