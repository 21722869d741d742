"""What reading each domain's XML made of it, kept from one run to the next.

Reading a domain (parsing its XML into the model) is most of vmctl's own work in a plan of a big
host: some 0.3 ms a domain here, more than libvirtd takes to send the XML. And most domains are as
they were at the last run. What a domain reads as depends on nothing but its XML, the reading's
context (whose guests are wanted, where pools live, whether it is adopted, its autostart), the sizes
of the volumes it asked for, and for a running guest, its persistent definition: an entry is used
only while every one of these is what it was when the entry was made; otherwise the domain is read
anew. The memo lives in vmctl's cache directory, one file per host and project, and is dropped
whole when vmctl's reading code is not the code that wrote it.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import pickle
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO, TypeVar, cast

from vmctl.libvirtxml.readback import DiskSize
from vmctl.model import ForeignGuest, LiveGuest, Owner

_FORMAT = 1
STALE_AFTER = 30 * 24 * 3600  # seconds: a memo not written for this long is removed
SizeKey = tuple[str, str, str]  # (pool, volume, format)
Seen = TypeVar("Seen")  # what a domain reads as (vmctl.hypervisor.livestate's Seen)


@dataclass(frozen=True, slots=True)
class _Entry:
    seen: object  # without its XML text (the text is at hand whenever the entry is used)
    sizes: tuple[tuple[SizeKey, int | None], ...]  # every volume size the reading asked for
    config_digest: bytes | None  # the persistent definition's, when the reading asked for it


class ReadMemo:
    """Entries by domain XML and context; those used (or made) in this run are the ones saved."""

    def __init__(self, path: Path | None = None, entries: Mapping[bytes, _Entry] | None = None) -> None:
        self.path = path
        self._old = dict(entries or {})
        self._new: dict[bytes, _Entry] = {}
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: Path) -> ReadMemo:
        """The memo saved at `path`; an empty one if there is none, or it is unreadable or another code's.

        Only a file of this user's, in a directory of this user's that no one else can write, opened
        without following a link, is read: unpickling runs code, and vmctl often runs as root.
        """
        try:
            with _private_file(path) as file:
                stamp, entries = pickle.load(file) if file is not None else ("", {})
        except Exception:  # cut short, or not vmctl's: it is only a memo
            return cls(path)
        if stamp != code_stamp() or not isinstance(entries, dict):
            return cls(path)
        return cls(path, entries)

    def read(
        self,
        xml: str,
        context: tuple[object, ...],
        sizes: DiskSize,
        config_xml: Callable[[], str],
        parse: Callable[[DiskSize, Callable[[], str]], Seen],
    ) -> Seen:
        """What `parse(sizes, config_xml)` makes of this domain: remembered, if nothing it depends on changed."""
        key = _digest(xml, repr(context))
        config = _Once(config_xml)
        entry = self._old.get(key) or self._new.get(key)
        if entry is not None and _still_holds(entry, sizes, config):
            self._keep(key, entry)
            return _with_text(cast(Seen, entry.seen), config.text if entry.config_digest is not None else xml)
        asked: dict[SizeKey, int | None] = {}

        def sized(pool: str, volume: str, fmt: str) -> int | None:
            asked[(pool, volume, fmt)] = size = sizes(pool, volume, fmt)
            return size

        seen = parse(sized, config)
        config_digest = _digest(config.text) if config.asked else None
        self._keep(key, _Entry(_with_text(seen, ""), tuple(asked.items()), config_digest))
        return seen

    def _keep(self, key: bytes, entry: _Entry) -> None:
        with self._lock:
            self._new[key] = entry

    def save(self) -> None:
        """Write what this run used, if that is not what was read: atomically, readable by this user only.

        A memo that holds nothing any more (the project's guests are gone) is removed, and so are
        other memos of this directory not used for `STALE_AFTER` (a CI job's throwaway workspaces).
        """
        if self.path is None:
            return
        temporary = None
        try:
            if self._new and self._new == self._old:
                os.utime(self.path)  # used as it was: not stale
                return
            if not self._new:
                self.path.unlink(missing_ok=True)
                return
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not _private_dir(self.path.parent):
                return
            fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".read-memo-")  # mode 0600
            with os.fdopen(fd, "wb") as file:
                _Pickler(file, protocol=pickle.HIGHEST_PROTOCOL).dump((code_stamp(), self._new))
            os.replace(temporary, self.path)
            temporary = None
            _sweep(self.path.parent, time.time() - STALE_AFTER)
        except Exception:  # a memo that cannot be written is no reason to fail a plan
            if temporary is not None:
                with suppress(OSError):
                    os.unlink(temporary)


@contextmanager
def _private_file(path: Path) -> Iterator[BinaryIO | None]:
    """The file at `path` if it and its directory are this user's alone; None otherwise, or if missing."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        yield None
        return
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(fd)
        mine = info.st_uid == os.getuid() and not info.st_mode & 0o022 and _private_dir(path.parent)
        yield file if mine else None


def _private_dir(directory: Path) -> bool:
    try:
        info = os.lstat(directory)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o022


class _Pickler(pickle.Pickler):
    """Frozen dataclasses kept as their class and fields, made again through __init__: that loads in
    half the time of pickle's default for them (a per-object __setstate__ that looks its fields up)."""

    def reducer_override(self, obj: object) -> Any:
        names = _init_fields(type(obj))
        if names is None:
            return NotImplemented
        return type(obj), tuple(getattr(obj, name) for name in names)


_FIELDS: dict[type, tuple[str, ...] | None] = {}


def _init_fields(cls: type) -> tuple[str, ...] | None:
    """The fields of a dataclass whose __init__ sets them all; None for any other class."""
    if cls not in _FIELDS:
        fields = dataclasses.fields(cls) if dataclasses.is_dataclass(cls) else ()
        _FIELDS[cls] = tuple(f.name for f in fields) if fields and all(f.init for f in fields) else None
    return _FIELDS[cls]


def _sweep(directory: Path, before: float) -> None:
    """Remove the memos (and half-written files) of `directory` last written before `before`."""
    for path in directory.iterdir():
        with suppress(OSError):
            if path.lstat().st_mtime < before:
                path.unlink()


def memo_path(cache: Path, uri: str, owner: Owner) -> Path:
    key = hashlib.sha256(f"{uri}\0{owner.project}\0{owner.workspace or ''}".encode()).hexdigest()[:24]
    return cache / "read" / f"{key}.pickle"


@functools.cache
def code_stamp() -> str:
    """Which reading code this is: vmctl's modules that turn domain XML into the model, as on disk."""
    return _stamp_of(_reading_modules())


def _reading_modules() -> Iterable[Path]:
    package = Path(__file__).resolve().parent.parent
    yield Path(__file__).resolve()
    yield package / "hypervisor" / "livestate.py"
    for directory in ("libvirtxml", "model"):
        yield from sorted((package / directory).glob("*.py"))


def _stamp_of(paths: Iterable[Path]) -> str:
    parts = [str(_FORMAT)]
    for path in paths:
        info = path.stat()
        parts.append(f"{path.name}:{info.st_size}:{info.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


class _Once:
    """The persistent definition, fetched when first asked for, and only once."""

    def __init__(self, fetch: Callable[[], str]) -> None:
        self.fetch = fetch
        self.asked = False
        self._text = ""

    def __call__(self) -> str:
        if not self.asked:
            self._text = self.fetch()
            self.asked = True
        return self._text

    @property
    def text(self) -> str:
        return self()


def _still_holds(entry: _Entry, sizes: DiskSize, config: _Once) -> bool:
    if any(sizes(*key) != size for key, size in entry.sizes):
        return False
    return entry.config_digest is None or _digest(config.text) == entry.config_digest


def _with_text(seen: Seen, text: str) -> Seen:
    if isinstance(seen, LiveGuest | ForeignGuest):
        return replace(seen, config_xml=text)
    return seen


def _digest(*texts: str) -> bytes:
    digest = hashlib.blake2b(digest_size=20)
    for text in texts:
        digest.update(text.encode())
        digest.update(b"\0")
    return digest.digest()
