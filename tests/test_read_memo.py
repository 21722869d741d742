"""What reading a domain made of it is kept from one run to the next, and used only while nothing it
depends on has changed: its XML, the reading's context, its disks' sizes, a running guest's config."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import pytest

from vmctl.hypervisor.readmemo import ReadMemo, memo_path
from vmctl.model import Owner

CONTEXT = (Owner("p"), [("pool", "/images")], False, False)


class Reader:
    """A stand-in for reading one domain: asks the sizes and config it is told to, counts its reads."""

    def __init__(self, disks: tuple[str, ...] = ("web-root",), wants_config: bool = False) -> None:
        self.disks, self.wants_config, self.reads = disks, wants_config, 0

    def __call__(self, sizes: Callable[[str, str, str], int | None], config: Callable[[], str]) -> str:
        self.reads += 1
        found = [f"{disk}={sizes('pool', disk, 'qcow2')}" for disk in self.disks]
        if self.wants_config:
            found.append(f"config={config()}")
        return ",".join(found)


def sizes_of(table: dict[str, int]) -> Callable[[str, str, str], int | None]:
    return lambda _pool, volume, _fmt: table.get(volume)


def test_a_domain_as_it_was_is_not_read_again_and_reads_the_same() -> None:
    memo, reader = ReadMemo(), Reader()
    first = memo.read("<domain/>", CONTEXT, sizes_of({"web-root": 1}), lambda: "", reader)
    again = memo.read("<domain/>", CONTEXT, sizes_of({"web-root": 1}), lambda: "", reader)
    assert first == again == "web-root=1" and reader.reads == 1


@pytest.mark.parametrize(
    "xml, context, size",
    [
        ("<domain><memory>2</memory></domain>", CONTEXT, 1),  # its XML changed
        ("<domain/>", (Owner("p", "w"), *CONTEXT[1:]), 1),  # read for another workspace
        ("<domain/>", (CONTEXT[0], [("pool", "/elsewhere")], *CONTEXT[2:]), 1),  # its pool moved
        ("<domain/>", CONTEXT, 2),  # its disk was resized behind vmctl's back
    ],
)
def test_anything_a_reading_depends_on_changing_reads_the_domain_anew(
    xml: str, context: tuple[object, ...], size: int
) -> None:
    memo, reader = ReadMemo(), Reader()
    memo.read("<domain/>", CONTEXT, sizes_of({"web-root": 1}), lambda: "", reader)
    fresh = memo.read(xml, context, sizes_of({"web-root": size}), lambda: "", reader)
    assert reader.reads == 2 and fresh == f"web-root={size}"


def test_a_running_guests_config_is_fetched_once_and_a_changed_one_read_anew() -> None:
    memo, reader = ReadMemo(), Reader(wants_config=True)
    fetched: list[str] = []

    def config(text: str) -> Callable[[], str]:
        return lambda: fetched.append(text) or text

    memo.read("<domain/>", CONTEXT, sizes_of({"web-root": 1}), config("a"), reader)
    assert memo.read("<domain/>", CONTEXT, sizes_of({"web-root": 1}), config("a"), reader) == "web-root=1,config=a"
    assert reader.reads == 1
    changed = memo.read("<domain/>", CONTEXT, sizes_of({"web-root": 1}), config("b"), reader)
    assert changed == "web-root=1,config=b" and reader.reads == 2
    assert fetched == ["a", "a", "b"]  # once a read, never twice


def test_the_memo_keeps_what_this_run_used_and_another_codes_memo_is_dropped(tmp_path: Path) -> None:
    path = memo_path(tmp_path, "qemu:///system", Owner("p"))
    memo, reader = ReadMemo.load(path), Reader()
    memo.read("<domain>gone</domain>", CONTEXT, sizes_of({"web-root": 1}), lambda: "", reader)
    memo.read("<domain/>", CONTEXT, sizes_of({"web-root": 1}), lambda: "", reader)
    memo.save()
    assert path.stat().st_mode & 0o077 == 0  # this user's only

    later = ReadMemo.load(path)
    later.read("<domain/>", CONTEXT, sizes_of({"web-root": 1}), lambda: "", reader)
    assert reader.reads == 2  # from the saved memo
    later.save()
    _stamp, entries = pickle.loads(path.read_bytes())
    assert len(entries) == 1  # the domain not seen this run is forgotten

    path.write_bytes(pickle.dumps(("another vmctl's reading code", entries)))
    ReadMemo.load(path).read("<domain/>", CONTEXT, sizes_of({"web-root": 1}), lambda: "", reader)
    assert reader.reads == 3
    path.write_bytes(b"cut sh")
    ReadMemo.load(path).read("<domain/>", CONTEXT, sizes_of({"web-root": 1}), lambda: "", reader)
    assert reader.reads == 4


def test_a_memo_someone_else_could_have_written_is_never_read(tmp_path: Path) -> None:
    """Unpickling runs code, and vmctl often runs as root: only this user's own file, in a directory
    only this user can write, reached without a link, is read."""
    path = memo_path(tmp_path, "qemu:///system", Owner("p"))
    memo, reader = ReadMemo.load(path), Reader()
    memo.read("<domain/>", CONTEXT, sizes_of({"web-root": 1}), lambda: "", reader)
    memo.save()

    def reads_after_loading(from_path: Path) -> int:
        ReadMemo.load(from_path).read("<domain/>", CONTEXT, sizes_of({"web-root": 1}), lambda: "", reader)
        return reader.reads

    assert reads_after_loading(path) == 1  # this user's: used
    path.chmod(0o666)
    assert reads_after_loading(path) == 2  # anyone could have written it
    path.chmod(0o600)
    link = path.with_name("planted.pickle")
    link.symlink_to(path)
    assert reads_after_loading(link) == 3  # reached through a link
    path.parent.chmod(0o777)
    assert reads_after_loading(path) == 4  # in a directory anyone can write


def test_memos_of_projects_gone_or_long_unused_are_removed(tmp_path: Path) -> None:
    """A CI job's throwaway workspaces leave no memo behind for good."""
    import os
    import time

    from vmctl.hypervisor.readmemo import STALE_AFTER

    path, reader = memo_path(tmp_path, "qemu:///system", Owner("p")), Reader()
    memo = ReadMemo.load(path)
    memo.read("<domain/>", CONTEXT, sizes_of({"web-root": 1}), lambda: "", reader)
    memo.save()
    old = memo_path(tmp_path, "qemu:///system", Owner("p", "ci-1234"))
    old.write_bytes(b"")
    long_ago = time.time() - STALE_AFTER - 60
    os.utime(old, (long_ago, long_ago))
    os.utime(path, (long_ago, long_ago))
    used = ReadMemo.load(path)  # this project's domains, as they were
    used.read("<domain/>", CONTEXT, sizes_of({"web-root": 1}), lambda: "", reader)
    used.save()
    assert path.stat().st_mtime > long_ago  # used: kept fresh
    changed = ReadMemo.load(path)
    changed.read("<domain>new</domain>", CONTEXT, sizes_of({"web-root": 1}), lambda: "", reader)
    changed.save()  # a write sweeps the directory
    assert not old.exists() and path.exists()

    ReadMemo.load(path).save()  # no domain of the project's any more
    assert not path.exists()


def test_a_memo_that_cannot_be_written_never_fails_the_reading(tmp_path: Path) -> None:
    path = memo_path(tmp_path, "qemu:///system", Owner("p"))
    memo = ReadMemo.load(path)
    memo.read("<domain/>", CONTEXT, sizes_of({}), lambda: "", lambda _sizes, _config: lambda: "unpicklable")
    memo.save()
    assert not path.exists() and list(path.parent.iterdir()) == []  # nor a half-written file left
