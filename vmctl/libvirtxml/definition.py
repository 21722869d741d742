"""A desired guest as libvirt will hold it: its vmctl record and its full domain XML."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import replace

from lxml import etree

from vmctl.cloudinit.diff import stored_form
from vmctl.libvirtxml.domain import DomainContext, build_domain, carry_over
from vmctl.model import (
    DesiredState,
    DeviceName,
    DiskRecord,
    DiskSpec,
    GuestRecord,
    GuestSpec,
    HostFacts,
    LiveGuest,
    VolumeRef,
)


def claims(guest: GuestSpec) -> tuple[VolumeRef, ...]:
    """The volumes a guest owns: the disks vmctl made and its seed (never an existing volume it uses)."""
    refs = [VolumeRef(d.pool, d.volume) for d in guest.disks if d.owned]
    if guest.seed:
        refs.append(VolumeRef(guest.seed.pool, guest.seed.volume))
    return tuple(refs)


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def guest_record(
    guest: GuestSpec,
    desired: DesiredState,
    live: LiveGuest | None = None,
    extra_claims: tuple[VolumeRef, ...] = (),
    creating: bool = False,
) -> GuestRecord:
    """The record to write for `guest`: owner, disks' images, claims (kept while still in use)."""
    owner = replace(desired.owner, created=(live.record.owner.created if live else "") or now())
    disks = tuple(DiskRecord(d.name, d.image, d.image_sha256, _image_ref(desired, d)) for d in guest.disks)
    all_claims = tuple(dict.fromkeys((*claims(guest), *extra_claims)))
    return GuestRecord(
        owner=owner,
        guest=guest.guest,
        hostname=guest.hostname,
        pool=guest.pool,
        prevent_destroy=guest.prevent_destroy,
        disks=disks,
        claims=all_claims,
        cloud_init=stored_form(guest.cloud_init) if guest.cloud_init else None,
        seed_digest=guest.seed.digest if guest.seed else None,
        creating=creating,
        devices=_adopted_names(guest, live),
    )


def _adopted_names(guest: GuestSpec, live: LiveGuest | None) -> tuple[DeviceName, ...]:
    """The names of an adopted domain's unaliased devices, for as long as the spec has them."""
    if live is None:
        return ()
    disks = {d.name for d in guest.disks}
    nics = {n.name for n in guest.nics}
    return tuple(d for d in live.record.devices if d.name in (disks if d.kind == "disk" else nics))


def _image_ref(desired: DesiredState, disk: DiskSpec) -> VolumeRef | None:
    upload = desired.image_upload(disk.image, disk.image_sha256) if disk.image else None
    return VolumeRef(upload.pool, upload.volume) if upload else None


def domain_definition(
    guest: GuestSpec,
    record: GuestRecord,
    host: HostFacts,
    pool_paths: Mapping[str, str],
    live: LiveGuest | None = None,
    current_config_xml: str | None = None,
    targets: Mapping[str, str] | None = None,
) -> str:
    """Full domain XML; an existing domain keeps its UUID, disk targets and PCI addresses.

    `targets` are the disk targets the plan chose; without them, disks keep the config's and new ones
    take the first free.
    """
    if targets is None:
        targets = live.config.targets if live else {}
    context = DomainContext(
        record=record,
        pool_paths=pool_paths,
        log_dir=host.log_dir,
        uuid=live.uuid if live else None,
        targets=targets,
    )
    root = build_domain(guest, context)
    if current_config_xml:
        root = carry_over(root, current_config_xml)
    etree.indent(root)
    return etree.tostring(root, encoding="unicode") + "\n"
