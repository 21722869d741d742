"""Named operations on a domain's snapshots: internal ones, inside its qcow2 disks."""

from __future__ import annotations

import libvirt

from vmctl.hypervisor.libvirt.connection import Connection, translated
from vmctl.libvirtxml.snapshot import read_snapshot, snapshot_xml
from vmctl.model import SnapshotInfo


class SnapshotOps:
    """Save, revert, delete and list snapshots."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def create_snapshot(self, name: str, snapshot: str) -> None:
        with translated(f"save snapshot {snapshot}", name):
            self.connection.domain(name).snapshotCreateXML(snapshot_xml(snapshot), 0)

    def revert_snapshot(self, name: str, snapshot: str) -> None:
        with translated(f"revert to snapshot {snapshot}", name):
            dom = self.connection.domain(name)
            # FORCE: a running guest goes back to a snapshot taken while it was stopped, as asked.
            dom.revertToSnapshot(dom.snapshotLookupByName(snapshot, 0), libvirt.VIR_DOMAIN_SNAPSHOT_REVERT_FORCE)

    def delete_snapshot(self, name: str, snapshot: str) -> None:
        with translated(f"delete snapshot {snapshot}", name):
            self.connection.domain(name).snapshotLookupByName(snapshot, 0).delete(0)

    def snapshots(self, name: str) -> list[SnapshotInfo]:
        with translated("list snapshots", name):
            found = self.connection.domain(name).listAllSnapshots(0)
            infos = [read_snapshot(name, snap.getXMLDesc(0), bool(snap.isCurrent(0))) for snap in found]
        return sorted(infos, key=lambda s: (s.created, s.name))
