"""Disk sizes: read from the volume files when libvirtd is on this host, else asked of libvirt.

Both must give what libvirt reports as the volume's capacity: a plan that compared a file-read size
with a libvirt one would never settle.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from vmctl.hypervisor.libvirt.connection import Connection
from vmctl.hypervisor.libvirt.reading import StateReader, _Capacities
from vmctl.hypervisor.livestate import local_dirs
from vmctl.model import Owner

GIB = 1024**3


class FakeVolume:
    """Stands in for a libvirt volume: only its info() is asked."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.asked = 0

    def info(self) -> list[int]:
        self.asked += 1
        return [0, self.capacity, 0]


def sizes_of(directory: Path, volumes: dict[str, Any]) -> _Capacities:
    return _Capacities(lambda _pool, name: volumes.get(name), {"pool": str(directory)})


def test_a_local_file_is_read_without_asking_libvirt(tmp_path: Path) -> None:
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(tmp_path / "a.qcow2"), "3G"], check=True)
    (tmp_path / "b.img").write_bytes(b"\0" * 8192)
    (tmp_path / "empty.img").write_bytes(b"")
    volumes = {"a.qcow2": FakeVolume(1), "b.img": FakeVolume(1), "empty.img": FakeVolume(1)}
    sizes = sizes_of(tmp_path, volumes)
    assert sizes("pool", "a.qcow2", "qcow2") == 3 * GIB
    assert sizes("pool", "b.img", "raw") == 8192
    assert sizes("pool", "empty.img", "raw") == 0  # a size like any other, not a reason to ask libvirt
    assert [v.asked for v in volumes.values()] == [0, 0, 0]


def test_a_remote_host_s_sizes_asked_ahead_are_each_asked_once() -> None:
    from concurrent.futures import ThreadPoolExecutor

    volumes = {f"v{i}.qcow2": FakeVolume(i * GIB) for i in range(1, 41)}
    sizes = _Capacities(lambda _pool, name: volumes.get(name))  # no local directory: a remote host
    with ThreadPoolExecutor(1) as sizer, ThreadPoolExecutor(4) as readers:
        sizes.ask_ahead([("pool", name) for name in [*volumes, "gone.qcow2"]], sizer)
        # readers go through the volumes in another order than the one they were asked ahead in
        read = list(readers.map(lambda name: sizes("pool", name, "qcow2"), reversed([*volumes, "gone.qcow2"])))
    assert read == [None, *(i * GIB for i in range(40, 0, -1))]
    assert {v.asked for v in volumes.values()} == {1}


def test_libvirt_is_asked_what_cannot_be_read_here(tmp_path: Path) -> None:
    (tmp_path / "odd.vmdk").write_bytes(b"KDMV")
    volumes = {"gone-from-disk.qcow2": FakeVolume(5 * GIB), "odd.vmdk": FakeVolume(7 * GIB)}
    sizes = sizes_of(tmp_path, volumes)
    assert sizes("pool", "gone-from-disk.qcow2", "qcow2") == 5 * GIB  # no such file here
    assert sizes("pool", "odd.vmdk", "vmdk") == 7 * GIB  # a format vmctl does not read
    assert sizes("elsewhere", "odd.vmdk", "raw") == 7 * GIB  # not a local directory pool
    assert sizes("pool", "unknown.qcow2", "qcow2") is None  # libvirt has no such volume: missing


@pytest.mark.libvirtd
@pytest.mark.usefixtures("cleanup")
def test_sizes_read_from_files_are_libvirts(libvirtd: str, project: str, scratch: Path) -> None:
    import libvirt

    conn = libvirt.open(libvirtd)
    try:
        pool = conn.storagePoolCreateXML(
            f"<pool type='dir'><name>{project}pool</name><target><path>{scratch}</path></target></pool>", 0
        )
        for name, fmt, capacity in (("q.qcow2", "qcow2", 2 * GIB), ("r.img", "raw", 3 * 1024**2)):
            pool.createXML(
                f"<volume><name>{name}</name><capacity>{capacity}</capacity>"
                f"<target><format type='{fmt}'/></target></volume>",
                0,
            )
        pool.storageVolLookupByName("q.qcow2").resize(5 * GIB)  # grown behind vmctl's back
        reader = StateReader(Connection(conn, libvirtd))
        pools = reader.read_pools(Owner(project))
        present = reader.list_volumes(pools)
        sizes = _Capacities(lambda p, n: present.get((p, n)), local_dirs(libvirtd, pools))
        assert sizes.local_dirs.get(f"{project}pool") == str(scratch)
        for name, fmt in (("q.qcow2", "qcow2"), ("r.img", "raw")):
            assert sizes(f"{project}pool", name, fmt) == pool.storageVolLookupByName(name).info()[1], name
    finally:
        conn.close()


def test_sizes_hold_no_reference_cycle_that_keeps_volume_handles(tmp_path: Path) -> None:
    """A plan's sizes reach every listed volume's handle, and each handle its connection: were they
    kept by a cycle, the connection's socket would stay open after vmctl closed it, until Python's
    cycle collector happened to run (the soak test saw two descriptors more, now and then)."""
    import gc
    import weakref

    (tmp_path / "a.qcow2").write_bytes(b"")
    handle = FakeVolume(GIB)
    sizes = sizes_of(tmp_path, {"a.qcow2": handle})
    assert sizes("pool", "a.qcow2", "raw") == 0
    gone = weakref.ref(handle)
    collecting = gc.isenabled()
    gc.disable()
    try:
        del sizes, handle
        assert gone() is None  # freed when the last reference went, not left to the collector
    finally:
        if collecting:
            gc.enable()
