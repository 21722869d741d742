"""Destroy reads ownership records alone; it must agree with the full read on what this project owns.

If the two readers disagreed, destroy would leave a guest behind or, worse, remove one that is not
the project's. Checked on libvirt's test driver with the examples' guests defined under two
workspaces, beside a foreign domain, another project's guest, and a transient guest of the project.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from lxml import etree

from vmctl.hypervisor import connect
from vmctl.hypervisor.libvirt import LibvirtHypervisor
from vmctl.libvirtxml.definition import domain_definition, guest_record
from vmctl.libvirtxml.metadata import guest_element
from vmctl.libvirtxml.tree import parse
from vmctl.model import DesiredState, VolumeRef

from .test_roundtrip import EXAMPLE_NAMES, example_copy, resolve

FOREIGN = "<domain type='test'><name>{name}</name><memory>65536</memory><os><type>hvm</type></os></domain>"


def define_all(backend: LibvirtHypervisor, desired: DesiredState) -> None:
    paths = {p.name: p.path for p in desired.pools}
    for guest in desired.guests:
        xml = domain_definition(guest, guest_record(guest, desired), backend.host_facts(), paths)
        backend.define(xml, guest.name)


def transient_guest(backend: LibvirtHypervisor, desired: DesiredState, name: str) -> None:
    """A running domain with the project's record and no persistent definition (undefined while running)."""
    guest = replace(desired.guests[0], name=name, guest=name)
    record = guest_record(guest, desired)
    root = parse(FOREIGN.format(name=name))
    etree.SubElement(root, "metadata").append(guest_element(record))
    backend.conn.createXML(etree.tostring(root, encoding="unicode"), 0)


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_destroy_reader_owns_what_the_full_reader_owns(
    name: str, test_driver: object, project: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = connect("test:///default")
    spec = example_copy(name, tmp_path)
    desired = resolve(spec, project, backend, monkeypatch, tmp_path)
    other = resolve(spec, f"{project}x", backend, monkeypatch, tmp_path)
    mine, theirs = desired.owner, other.owner
    try:
        define_all(backend, desired)
        define_all(backend, other)  # the same project in another workspace: not ours
        backend.conn.defineXML(FOREIGN.format(name=f"{project}-foreign"))
        transient_guest(backend, desired, f"{project}-transient")
        backend.start(desired.guests[0].name)

        full = backend.read_state(mine)
        owned = backend.read_owned(mine, boot_volumes=True)

        assert [g.name for g in owned.guests] == [g.name for g in full.guests]
        assert f"{project}-transient" in [g.name for g in owned.guests]
        for light, heavy in zip(owned.guests, full.guests, strict=True):
            assert light.record == heavy.record, light.name
            assert light.active == (heavy.running is not None), light.name
            boot = heavy.config.boot
            files = [f for f in (boot.kernel, boot.initrd) if f is not None] if boot else []
            assert light.boot_volumes == tuple(VolumeRef(heavy.config.pool, f.volume) for f in files), light.name
        assert owned.pools == full.pools and owned.networks == full.networks
        assert set(owned.volumes) == set(full.volumes)
        assert {g.name for g in backend.read_owned(theirs).guests} == {g.name for g in other.guests}
    finally:
        for dom in backend.conn.listAllDomains(0):
            if dom.name().startswith(project):
                persistent = dom.isPersistent()
                if dom.isActive():
                    dom.destroy()
                if persistent:
                    dom.undefine()
        backend.close()
