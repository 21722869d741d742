"""The fake hypervisor reads what libvirt reads: the same objects, made through the same operations,
give the same live state on tests.fakes and on libvirt's test driver.

If they differed, a test of plan or apply against the fake would pass on a world libvirt never shows.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from tests.fakes.hypervisor import FakeDomain, FakeHypervisor, FakeNetwork, FakePool, FakeVolume
from vmctl.errors import HypervisorError
from vmctl.hypervisor import Hypervisor, connect
from vmctl.hypervisor.libvirt import LibvirtHypervisor
from vmctl.libvirtxml.definition import domain_definition, guest_record
from vmctl.libvirtxml.metadata import guest_xml
from vmctl.model import DesiredState, GuestRecord, HostFacts, Owner, VolumeRef

from .test_roundtrip import example_copy, resolve

GIB = 1024**3


def with_uuid(xml: str) -> str:
    """The definition with a UUID of its own name's, so both hypervisors give the domain the same one."""
    root = ET.fromstring(xml)
    element = ET.Element("uuid")
    element.text = str(uuid.uuid5(uuid.NAMESPACE_URL, root.findtext("name", "")))
    root.insert(1, element)
    return ET.tostring(root, encoding="unicode")


def mirror(real: LibvirtHypervisor, fake: FakeHypervisor) -> None:
    """What the test driver holds already (its own domain, pool and network; other tests' leftovers)."""
    import libvirt

    for pool in real.conn.listAllStoragePools(0):
        fake.pools[pool.name()] = FakePool(pool.XMLDesc(0), bool(pool.isActive()))
        for vol in pool.listAllVolumes(0) if pool.isActive() else []:
            fake.volumes[(pool.name(), vol.name())] = FakeVolume(vol.info()[1])
    for net in real.conn.listAllNetworks(0):
        fake.networks[net.name()] = FakeNetwork(net.XMLDesc(0), bool(net.isActive()), bool(net.autostart()))
    for dom in real.conn.listAllDomains(0):
        running = dom.XMLDesc(0) if dom.isActive() else None
        fake.domains[dom.name()] = FakeDomain(
            dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), running, bool(dom.autostart())
        )


def disk_pools(desired: DesiredState) -> dict[str, str]:
    declared = {p.name: p.path for p in desired.pools}
    return {d.pool: declared.get(d.pool, f"/{desired.project}/{d.pool}") for g in desired.guests for d in g.disks}


def build(hv: Hypervisor, desired: DesiredState, other: DesiredState, host: HostFacts) -> None:
    """Pools, a network, most disks and the guests of two workspaces; one guest running, one autostarted."""
    owner = desired.owner
    pools = disk_pools(desired)
    for name, path in pools.items():
        if not hv.pool_exists(name):  # the test driver's state lives as long as the process: an
            hv.create_pool(name, path, owner)  # earlier test may have left it (mirrored in the fake)
    for network in desired.networks:
        if network.managed:
            hv.create_network(network, owner)
    for guest in desired.guests:
        for disk in guest.disks[:-1]:  # each guest's last disk is missing: sized None
            hv.create_volume(disk.pool, disk.volume, disk.size or GIB)
    hv.create_volume(next(iter(pools)), "spare.qcow2", 3 * GIB)  # sized when asked for
    hv.create_volume(next(iter(pools)), "unused.qcow2", GIB)  # listed, not sized
    for each in (desired, other):
        for guest in each.guests:
            xml = domain_definition(guest, guest_record(guest, each), host, pools)
            hv.define(with_uuid(xml), guest.name)
    first, last = desired.guests[0], desired.guests[-1]
    hv.start(first.name)
    hv.set_autostart(last.name, True)
    for guest, live in ((first, True), (last, False)):  # a record rewritten, as apply does when it is done
        record = guest_record(guest, desired)
        hv.set_metadata(guest.name, guest_xml(replace(record, creating=not record.creating)), live)


def remove(real: LibvirtHypervisor, desired: DesiredState, project: str) -> None:
    for dom in real.conn.listAllDomains(0):
        if project in dom.name():
            real.power_off(dom.name())
            real.undefine(dom.name())
    for name in disk_pools(desired):
        if real.pool_exists(name):
            for vol in real.conn.storagePoolLookupByName(name).listAllVolumes(0):
                real.delete_volume(name, vol.name())
            real.delete_pool(name)
    for network in desired.networks:
        real.delete_network(network.libvirt_name)


@pytest.mark.parametrize("name", ["lab", "storage"])
def test_the_fake_reads_what_libvirt_reads(
    name: str, test_driver: object, project: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import vmctl.libvirtxml.definition

    # Both are built from records made at the same moment: a build that crossed a second would
    # stamp the two with different creation times (CI's run once did).
    monkeypatch.setattr(vmctl.libvirtxml.definition, "now", lambda: "2026-12-02T10:25:48Z")
    real, fake = connect("test:///default"), FakeHypervisor()
    spec = example_copy(name, tmp_path)
    desired = resolve(spec, project, real, monkeypatch, tmp_path)
    other = resolve(spec, f"{project}x", real, monkeypatch, tmp_path)
    owner, host = desired.owner, real.host_facts()
    try:
        mirror(real, fake)
        build(real, desired, other, host)
        build(fake, desired, other, host)
        spare = VolumeRef(next(iter(disk_pools(desired))), "spare.qcow2")

        live = real.read_state(owner, [spare])
        assert fake.read_state(owner, [spare]) == live
        assert fake.read_owned(owner, boot_volumes=True) == real.read_owned(owner, boot_volumes=True)
        assert fake.read_owned(Owner(desired.project, f"{project}x")) == real.read_owned(
            Owner(desired.project, f"{project}x")
        )
        paths = disk_pools(desired)
        for guest in desired.guests:
            assert fake.read_live_guest(guest.name, owner, paths) == real.read_live_guest(guest.name, owner, paths)

        # Not vacuous: the state compared has running and stopped guests, sized and missing disks.
        assert [g.name for g in live.guests] == sorted(g.name for g in desired.guests)
        assert [g.running is not None for g in live.guests].count(True) == 1
        sizes = [d.size for g in live.guests for d in g.config.disks]
        assert None in sizes and any(s for s in sizes)
        assert any(v.capacity is None for v in live.volumes.values())
        assert live.volumes[(spare.pool, spare.name)].capacity == 3 * GIB
        assert any("managed by vmctl for project" in who for who in live.other_domains.values())
    finally:
        remove(real, desired, project)
        real.close()


def test_the_fake_records_every_call_and_changes_what_it_holds(tmp_path: Path) -> None:
    fake = FakeHypervisor()
    fake.create_pool("p", "/p", Owner("x"))
    fake.create_volume("p", "a.qcow2", GIB)
    fake.resize_volume("p", "a.qcow2", 2 * GIB)
    assert fake.volumes[("p", "a.qcow2")].capacity == 2 * GIB
    assert fake.called("create_volume") == [("p", "a.qcow2", GIB, "qcow2", None, "qcow2")]
    assert [name for name, _args in fake.calls] == ["create_pool", "create_volume", "resize_volume"]
    assert not fake.called("attach")


GUEST = "<domain type='test'><name>g</name><memory>1048576</memory><vcpu current='1'>4</vcpu><devices/></domain>"
NIC = "<interface type='network'><mac address='52:54:00:00:00:01'/><source network='{net}'/></interface>"


def nic_sources(fake: FakeHypervisor, inactive: bool) -> list[str | None]:
    root = ET.fromstring(fake.domain_xml("g", inactive))
    return [source.get("network") for source in root.iterfind("devices/interface/source")]


def test_a_live_device_change_needs_a_running_guest_and_reaches_both_definitions() -> None:
    fake = FakeHypervisor()
    fake.define(GUEST, "g")
    with pytest.raises(HypervisorError, match="not running"):
        fake.attach("g", NIC.format(net="a"), live=True)
    fake.start("g")
    fake.attach("g", NIC.format(net="a"), live=True)
    assert nic_sources(fake, inactive=False) == nic_sources(fake, inactive=True) == ["a"]
    fake.update_device("g", NIC.format(net="b"), live=True)
    assert nic_sources(fake, inactive=False) == nic_sources(fake, inactive=True) == ["b"]
    fake.detach("g", NIC.format(net="b"), live=True)
    assert nic_sources(fake, inactive=False) == nic_sources(fake, inactive=True) == []
    with pytest.raises(HypervisorError, match="not found"):
        fake.detach("g", NIC.format(net="b"), live=True)


def test_metadata_set_is_the_record_read() -> None:
    fake = FakeHypervisor()
    fake.define(GUEST, "g")
    record = GuestRecord(Owner("p", "w"), "g", "g-host", prevent_destroy=True)
    fake.set_metadata("g", guest_xml(record), live=False)
    fake.set_metadata("g", guest_xml(replace(record, creating=True)), live=False)
    owned = fake.read_owned(Owner("p", "w"))
    assert [(g.name, g.record, g.active) for g in owned.guests] == [("g", replace(record, creating=True), False)]
    assert fake.read_owned(Owner("p", "other")).guests == ()


def test_a_redefined_domain_keeps_its_uuid_and_runs_on() -> None:
    fake = FakeHypervisor()
    fake.define(GUEST, "g")
    fake.start("g")
    first = fake.read_guest("g").uuid
    fake.define(GUEST.replace("1048576", "2097152"), "g")
    assert fake.read_guest("g").uuid == first and fake.is_active("g")
    assert "2097152" in fake.domain_xml("g", inactive=True) and "2097152" not in fake.domain_xml("g")


def test_a_volume_is_in_use_by_its_overlays_and_by_domains_that_have_it() -> None:
    fake = FakeHypervisor()
    fake.create_pool("p", "/p", Owner("x"))
    fake.create_volume("p", "base.qcow2", GIB)
    fake.create_volume("p", "overlay.qcow2", GIB, backing=VolumeRef("p", "base.qcow2"))
    fake.define(GUEST.replace("<devices/>", "<devices><disk><source file='/p/base.qcow2'/></disk></devices>"), "g")
    assert fake.volume_users("p", "base.qcow2") == ["volume overlay.qcow2", "domain g"]
    assert fake.volume_users("p", "overlay.qcow2") == []
