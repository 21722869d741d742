"""Remove what tests and benchmarks made, whatever state they left it in (not for users: `vmctl destroy`).

Tests and benchmarks may be killed half-way; this clears their objects by ownership (or, for the
deliberately foreign domains and pools they define, by name) without going through vmctl's planner.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable

import libvirt

from vmctl.libvirtxml.network import read_network
from vmctl.libvirtxml.readback import read_domain
from vmctl.model import Owner, VolumeRef

OwnerTest = Callable[[Owner], bool]
NameTest = Callable[[str], bool]


def remove_objects(
    uri: str, owned: OwnerTest, named: NameTest = lambda _name: False, pools: NameTest = lambda _name: False
) -> None:
    """Domains (with the volumes they claim) and networks owned as `owned` says, domains `named`,
    and pools matching `pools` with every volume in them."""
    conn = libvirt.open(uri)
    try:
        for dom in conn.listAllDomains(0):
            _remove_domain(conn, dom, owned, named)
        for net in conn.listAllNetworks(0):
            try:
                live = read_network(net.XMLDesc(0), bool(net.isActive()), False)
            except libvirt.libvirtError:
                continue  # another process removed it while we listed
            if live.owner and owned(live.owner):
                if net.isActive():
                    net.destroy()
                net.undefine()
        for pool in conn.listAllStoragePools(0):
            if pools(pool.name()):
                _remove_pool(pool)
    finally:
        conn.close()


def _remove_domain(conn: libvirt.virConnect, dom: libvirt.virDomain, owned: OwnerTest, named: NameTest) -> None:
    try:
        view = read_domain(dom.XMLDesc(0))
    except libvirt.libvirtError:
        return  # another process removed it while we listed
    mine = view.record is not None and owned(view.record.owner)
    if not (mine or named(dom.name())):
        return
    with contextlib.suppress(libvirt.libvirtError):  # it may vanish meanwhile: then it is gone
        _remove_domain_now(conn, dom, view.record.claims if view.record and mine else ())


def _remove_domain_now(conn: libvirt.virConnect, dom: libvirt.virDomain, claims: Iterable[VolumeRef]) -> None:
    if dom.isActive():
        dom.destroy()
    for ref in claims:
        with contextlib.suppress(libvirt.libvirtError):
            conn.storagePoolLookupByName(ref.pool).storageVolLookupByName(ref.name).delete(0)
    dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)


def _remove_pool(pool: libvirt.virStoragePool) -> None:
    persistent = pool.isPersistent()  # a transient pool is gone once stopped
    if pool.isActive():
        for vol in pool.listAllVolumes(0):
            vol.delete(0)
        pool.destroy()
    if persistent:
        pool.undefine()
