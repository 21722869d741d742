"""Pools and volumes: files reach the hypervisor as volumes through streams, never by assuming a
shared local disk."""

from __future__ import annotations

import io
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO

import libvirt

from vmctl.errors import HypervisorError
from vmctl.failpoints import failpoint
from vmctl.hypervisor.interface import UploadProgress
from vmctl.hypervisor.libvirt.connection import Connection, error_detail, is_missing, translated
from vmctl.libvirtxml.readback import domain_uses
from vmctl.libvirtxml.storage import backing_path, pool_xml, volume_xml
from vmctl.model import Owner, VolumeRef

_CHUNK = 4 * 1024 * 1024


class StorageOps:
    """Named operations on pools and volumes."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.conn = connection.conn

    def pool_exists(self, name: str) -> bool:
        self.connection.forget_pool(name)
        try:
            self.conn.storagePoolLookupByName(name)
        except libvirt.libvirtError as exc:
            if is_missing(exc):
                return False
            raise HypervisorError(f"find pool {name}", error_detail(exc)) from None
        return True

    def create_pool(self, name: str, path: str, owner: Owner) -> None:
        with translated(f"create pool {name}"):
            pool = self.conn.storagePoolDefineXML(pool_xml(name, path, owner), 0)
            failpoint("pool-defined")
            pool.build(0)
            pool.create(0)
            pool.setAutostart(1)
        self.connection.remember_pool(name, pool)

    def start_pool(self, name: str) -> None:
        with translated(f"start pool {name}"):
            pool = self.connection.pool(name)
            if pool.isActive():
                return
            try:
                pool.create(0)
            except libvirt.libvirtError:
                if not pool.isActive():
                    raise  # else another vmctl started it meanwhile

    def delete_pool(self, name: str) -> None:
        """Stop and forget a pool; its directory is removed only if empty."""
        with translated(f"delete pool {name}"):
            pool = self.connection.pool(name)
            if pool.isActive():
                pool.refresh(0)
                if pool.numOfVolumes() > 0:
                    return
                pool.destroy()
            with suppress(libvirt.libvirtError):
                pool.delete(0)  # removes the directory only when empty
            pool.undefine()
        self.connection.forget_pool(name)

    def volume_exists(self, pool: str, name: str) -> bool:
        """Asked of libvirt now: another vmctl (another workspace) may have made or removed it since."""
        self.connection.forget_volume(pool, name)
        return self.connection.volume(pool, name) is not None

    def volume_path(self, pool: str, name: str) -> str:
        vol = self.connection.volume(pool, name)
        if vol is None:
            raise HypervisorError(f"find volume {name}", f"no volume {name} in pool {pool}")
        with translated(f"find volume {name}"):
            return str(vol.path())

    def create_volume(
        self,
        pool: str,
        name: str,
        capacity: int,
        fmt: str = "qcow2",
        backing: VolumeRef | None = None,
        backing_format: str = "qcow2",
    ) -> None:
        backing_path = self.volume_path(backing.pool, backing.name) if backing else None
        xml = volume_xml(name, capacity, fmt, backing_path, backing_format)
        with translated(f"create volume {name}"):
            self.connection.remember_volume(pool, name, self.connection.pool(pool).createXML(xml, 0))

    def delete_volume(self, pool: str, name: str) -> None:
        vol = self.connection.volume(pool, name)
        self.connection.forget_volume(pool, name)
        if vol is None:
            return
        with translated(f"delete volume {name}"):
            try:
                vol.delete(0)
            except libvirt.libvirtError as exc:
                if not is_missing(exc):
                    raise

    def volume_users(self, pool: str, name: str) -> list[str]:
        """Who still needs this volume: overlays built on it, and any domain (vmctl's or not) that boots
        from it or has it as a disk. A shared image is deleted only when this is empty."""
        path = self.volume_path(pool, name)
        users = [f"volume {v}" for v in self._overlays_of(path)]
        with translated("list domains"):
            domains = self.conn.listAllDomains(0)
        for dom in domains:
            try:
                xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
            except libvirt.libvirtError as exc:
                if is_missing(exc):
                    continue
                raise HypervisorError("read domain", error_detail(exc), guest=dom.name()) from None
            if domain_uses(xml, pool, name, path):
                users.append(f"domain {dom.name()}")
        return users

    def _overlays_of(self, path: str) -> list[str]:
        users = []
        with translated("list storage pools"):
            pools = [p for p in self.conn.listAllStoragePools(0) if p.isActive()]
        for candidate in pools:
            with translated(f"list volumes of pool {candidate.name()}"):
                volumes = candidate.listAllVolumes(0)
            for vol in volumes:
                try:
                    xml = vol.XMLDesc(0)
                except libvirt.libvirtError as exc:
                    if is_missing(exc):
                        continue  # deleted meanwhile: it is nobody's overlay any more
                    raise HypervisorError(f"read volume {vol.name()}", error_detail(exc)) from None
                if backing_path(xml) == path:
                    users.append(vol.name())
        return users

    def resize_volume(self, pool: str, name: str, capacity: int) -> None:
        vol = self.connection.volume(pool, name)
        if vol is None:
            raise HypervisorError(f"resize volume {name}", f"no volume {name} in pool {pool}")
        with translated(f"resize volume {name}"):
            vol.resize(capacity, 0)

    def write_volume(self, pool: str, name: str, data: bytes, fmt: str = "raw") -> None:
        """Create a small volume holding `data` (a seed ISO)."""
        with translated(f"create volume {name}"):
            vol = self.connection.pool(pool).createXML(volume_xml(name, len(data), fmt), 0)
        self.connection.remember_volume(pool, name, vol)
        self._upload(pool, name, io.BytesIO(data), len(data), None)

    def upload_file(self, pool: str, name: str, source: Path, fmt: str, progress: UploadProgress | None = None) -> None:
        """Upload a local file as volume `name`, atomically: a partial upload never has the final name.

        The bytes go to '<name>.part' first, which is cloned to the final name inside the hypervisor
        and then removed; an interrupted upload leaves only a '.part' that the next upload replaces.
        """
        part = f"{name}.part"
        size = source.stat().st_size
        self.delete_volume(pool, part)
        with translated(f"upload {source.name}"):
            vol = self.connection.pool(pool).createXML(volume_xml(part, size, fmt), 0)
        with source.open("rb") as handle:
            self._upload(pool, part, handle, size, progress)
        with translated(f"create volume {name}"):
            final = self.connection.pool(pool).createXMLFrom(volume_xml(name, size, fmt), vol, 0)
        self.connection.remember_volume(pool, name, final)
        self.delete_volume(pool, part)

    def _upload(self, pool: str, name: str, handle: BinaryIO, size: int, progress: UploadProgress | None) -> None:
        sent = 0

        def chunk(_stream: libvirt.virStream, nbytes: int, _opaque: None) -> bytes:
            nonlocal sent
            data = handle.read(min(nbytes, _CHUNK))
            if sent:
                failpoint("upload-midway")
            sent += len(data)
            if progress:
                progress(sent, size)
            return data

        with self.connection.streaming(pool, name) as (conn, vol), translated(f"upload volume {name}"):
            stream = conn.newStream(0)
            vol.upload(stream, 0, size, 0)
            try:
                stream.sendAll(chunk, None)
                stream.finish()
            except libvirt.libvirtError:
                stream.abort()
                raise
