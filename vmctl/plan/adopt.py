"""Adopting a domain nobody owns: the spec (usually written by `vmctl import`) takes it over.

Adoption writes vmctl's record into the domain and nothing else when the spec says what the domain
is. The domain is compared with the spec as if the record were already there, so whatever the spec
changes is planned as for any guest of vmctl's, and what the domain has that vmctl cannot express
(a graphics card, a host device) is listed as going when the domain is next redefined.
"""

from __future__ import annotations

from dataclasses import replace

from vmctl.model import DeviceName, ForeignGuest, GuestRecord, GuestSpec, GuestState, LiveGuest, Owner


def adoption_view(desired: GuestSpec, foreign: ForeignGuest, owner: Owner) -> LiveGuest:
    """The domain as vmctl will see it once adopted: its record written, its devices named as the spec names them."""
    names = device_names(desired, foreign.running or foreign.config)
    record = GuestRecord(
        owner=owner,
        guest=desired.guest,
        hostname=desired.hostname,
        pool=desired.pool,
        prevent_destroy=desired.prevent_destroy,
        devices=names,
    )
    config = _named(foreign.config, record)
    running = _named(foreign.running, record) if foreign.running else None
    return LiveGuest(foreign.name, foreign.uuid, record, config, running, config_xml=foreign.config_xml)


def device_names(desired: GuestSpec, state: GuestState) -> tuple[DeviceName, ...]:
    """The spec's name of each unaliased disk (matched by its volume or file) and NIC (by its MAC)."""
    names: list[DeviceName] = []
    for disk in state.disks:
        named = {n.name for n in names}  # one disk each: two empty CD-ROM drives are two of the spec's
        wanted = next((d for d in desired.disks if d.name not in named and disk.uses(d)), None)
        if wanted is not None and disk.name.startswith("<"):
            names.append(DeviceName("disk", wanted.name, disk.target))
    for nic in state.nics:
        wanted_nic = next((n for n in desired.nics if n.mac == nic.mac), None)
        if wanted_nic is not None and nic.name.startswith("<"):
            names.append(DeviceName("nic", wanted_nic.name, nic.mac))
    return tuple(names)


def _named(state: GuestState, record: GuestRecord) -> GuestState:
    disks = tuple(replace(d, name=record.device_name("disk", d.target) or d.name) for d in state.disks)
    nics = tuple(replace(n, name=record.device_name("nic", n.mac) or n.name) for n in state.nics)
    return replace(
        state,
        guest=record.guest,
        hostname=record.hostname,
        pool=record.pool,
        prevent_destroy=record.prevent_destroy,
        disks=disks,
        nics=nics,
    )
