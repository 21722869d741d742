"""Pools, networks and volumes: files reach the hypervisor as volumes through streams, never by
assuming a shared local disk."""

from __future__ import annotations

import io
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any, BinaryIO

import libvirt

from vmctl.errors import HypervisorError
from vmctl.failpoints import failpoint
from vmctl.hypervisor.libvirt.connection import Connection, _detail, _missing, _translated
from vmctl.libvirtxml.network import network_xml
from vmctl.libvirtxml.readback import domain_uses
from vmctl.libvirtxml.storage import backing_path, pool_xml, volume_xml
from vmctl.model.types import NetworkSpec, Owner, VolumeRef

_CHUNK = 4 * 1024 * 1024
Progress = Callable[[int, int], None]


class Storage(Connection):
    """Named operations on pools, networks and volumes."""

    def pool_exists(self, name: str) -> bool:
        self._pool_cache.pop(name, None)
        try:
            self.conn.storagePoolLookupByName(name)
        except libvirt.libvirtError as exc:
            if _missing(exc):
                return False
            raise HypervisorError(f"find pool {name}", _detail(exc)) from None
        return True

    def create_pool(self, name: str, path: str, owner: Owner) -> None:
        with _translated(f"create pool {name}"):
            pool = self.conn.storagePoolDefineXML(pool_xml(name, path, owner), 0)
            pool.build(0)
            pool.create(0)
            pool.setAutostart(1)
        self._pool_cache[name] = pool

    def start_pool(self, name: str) -> None:
        with _translated(f"start pool {name}"):
            pool = self._pool(name)
            if not pool.isActive():
                pool.create(0)

    def delete_pool(self, name: str) -> None:
        """Stop and forget a pool; its directory is removed only if empty."""
        with _translated(f"delete pool {name}"):
            pool = self._pool(name)
            if pool.isActive():
                pool.refresh(0)
                if pool.numOfVolumes() > 0:
                    return
                pool.destroy()
            with suppress(libvirt.libvirtError):
                pool.delete(0)  # removes the directory only when empty
            pool.undefine()
        self._pool_cache.pop(name, None)

    def create_network(self, spec: NetworkSpec, owner: Owner) -> None:
        with _translated(f"create network {spec.libvirt_name}"):
            net = self.conn.networkDefineXML(network_xml(spec, owner))
            net.create()
            net.setAutostart(1)

    def start_network(self, name: str) -> None:
        with _translated(f"start network {name}"):
            net = self.conn.networkLookupByName(name)
            if not net.isActive():
                net.create()
            net.setAutostart(1)

    def delete_network(self, name: str) -> None:
        try:
            net = self.conn.networkLookupByName(name)
        except libvirt.libvirtError as exc:
            if _missing(exc):
                return
            raise HypervisorError(f"delete network {name}", _detail(exc)) from None
        with _translated(f"delete network {name}"):
            if net.isActive():
                net.destroy()
            net.undefine()

    def volume_exists(self, pool: str, name: str) -> bool:
        return self._volume(pool, name) is not None

    def volume_path(self, pool: str, name: str) -> str:
        vol = self._volume(pool, name)
        if vol is None:
            raise HypervisorError(f"find volume {name}", f"no volume {name} in pool {pool}")
        with _translated(f"find volume {name}"):
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
        with _translated(f"create volume {name}"):
            self._volumes[(pool, name)] = self._pool(pool).createXML(xml, 0)

    def delete_volume(self, pool: str, name: str) -> None:
        vol = self._volume(pool, name)
        self._volumes.pop((pool, name), None)
        if vol is None:
            return
        with _translated(f"delete volume {name}"):
            try:
                vol.delete(0)
            except libvirt.libvirtError as exc:
                if not _missing(exc):
                    raise

    def volume_users(self, pool: str, name: str) -> list[str]:
        """Who still needs this volume: overlays built on it, and any domain (vmctl's or not) that boots
        from it or has it as a disk. A shared image is deleted only when this is empty."""
        path = self.volume_path(pool, name)
        users = [f"volume {v}" for v in self._overlays_of(path)]
        with _translated("list domains"):
            domains = self.conn.listAllDomains(0)
        for dom in domains:
            try:
                xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
            except libvirt.libvirtError as exc:
                if _missing(exc):
                    continue
                raise HypervisorError("read domain", _detail(exc), dom.name()) from None
            if domain_uses(xml, pool, name, path):
                users.append(f"domain {dom.name()}")
        return users

    def _overlays_of(self, path: str) -> list[str]:
        users = []
        with _translated("list storage pools"):
            pools = [p for p in self.conn.listAllStoragePools(0) if p.isActive()]
        for candidate in pools:
            with _translated(f"list volumes of pool {candidate.name()}"):
                volumes = candidate.listAllVolumes(0)
            for vol in volumes:
                try:
                    xml = vol.XMLDesc(0)
                except libvirt.libvirtError as exc:
                    if _missing(exc):
                        continue  # deleted meanwhile: it is nobody's overlay any more
                    raise HypervisorError(f"read volume {vol.name()}", _detail(exc)) from None
                if backing_path(xml) == path:
                    users.append(vol.name())
        return users

    def resize_volume(self, pool: str, name: str, capacity: int) -> None:
        vol = self._volume(pool, name)
        if vol is None:
            raise HypervisorError(f"resize volume {name}", f"no volume {name} in pool {pool}")
        with _translated(f"resize volume {name}"):
            vol.resize(capacity, 0)

    def write_volume(self, pool: str, name: str, data: bytes, fmt: str = "raw") -> None:
        """Create a small volume holding `data` (a seed ISO)."""
        with _translated(f"create volume {name}"):
            self._volumes[(pool, name)] = self._pool(pool).createXML(volume_xml(name, len(data), fmt), 0)
        self._upload(pool, name, io.BytesIO(data), len(data), None)

    def upload_file(self, pool: str, name: str, source: Path, fmt: str, progress: Progress | None = None) -> None:
        """Upload a local file as volume `name`, atomically: a partial upload never has the final name.

        The bytes go to '<name>.part' first, which is cloned to the final name inside the hypervisor
        and then removed; an interrupted upload leaves only a '.part' that the next upload replaces.
        """
        part = f"{name}.part"
        size = source.stat().st_size
        self.delete_volume(pool, part)
        with _translated(f"upload {source.name}"):
            vol = self._pool(pool).createXML(volume_xml(part, size, fmt), 0)
        with source.open("rb") as handle:
            self._upload(pool, part, handle, size, progress)
        with _translated(f"create volume {name}"):
            final_xml = volume_xml(name, size, fmt)
            self._volumes[(pool, name)] = self._pool(pool).createXMLFrom(final_xml, vol, 0)
        self.delete_volume(pool, part)

    def _upload(self, pool: str, name: str, handle: BinaryIO, size: int, progress: Progress | None) -> None:
        sent = 0

        def chunk(_stream: Any, nbytes: int, _opaque: Any) -> bytes:
            nonlocal sent
            data = handle.read(min(nbytes, _CHUNK))
            if sent:
                failpoint("upload-midway")
            sent += len(data)
            if progress:
                progress(sent, size)
            return data

        with self._streaming(pool, name) as (conn, vol), _translated(f"upload volume {name}"):
            stream = conn.newStream(0)
            vol.upload(stream, 0, size, 0)
            try:
                stream.sendAll(chunk, None)
                stream.finish()
            except libvirt.libvirtError:
                stream.abort()
                raise
