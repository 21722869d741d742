"""Facts about local files the spec names (images, kernels): digests, sizes, downloads, cached."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from vmctl.cachedir import cache_dir
from vmctl.errors import VmctlError
from vmctl.model import ImageFacts, Spec
from vmctl.resolve.disksize import virtual_size

_CHUNK = 1024 * 1024
Progress = Callable[[str, int, int], None]  # (what, done bytes, total bytes)


@dataclass(frozen=True, slots=True)
class LocalFacts:
    """Measured facts the desired state depends on: per image name, and per boot file path."""

    images: dict[str, ImageFacts] = field(default_factory=dict)
    image_files: dict[str, Path] = field(default_factory=dict)  # image name -> local file (cached download)
    files: dict[Path, ImageFacts] = field(default_factory=dict)  # boot files (kernel, initrd)


def gather(spec: Spec, progress: Progress | None = None) -> LocalFacts:
    """Hash every image and boot file the guests use (cached by path, size and mtime)."""
    used = {d.image for g in spec.guests for d in g.disks if d.image}
    facts = LocalFacts()
    digests = _DigestCache(cache_dir() / "digests.json")
    for image in spec.images:
        if image.name not in used:
            continue
        path = image.path or fetch_url(image.url or "", image.sha256 or "", progress)
        sha = digests.sha256(path)
        if image.sha256 and image.sha256 != sha:
            raise VmctlError(f"image {image.name}: {path} has sha256 {sha}, the spec says {image.sha256}")
        facts.images[image.name] = ImageFacts(sha, virtual_size(path, image.format), path.stat().st_size)
        facts.image_files[image.name] = path
    for path in _boot_files(spec):
        size = path.stat().st_size
        facts.files[path] = ImageFacts(digests.sha256(path), size, size)
    digests.save()
    return facts


def _boot_files(spec: Spec) -> Iterable[Path]:
    for guest in spec.guests:
        if guest.boot:
            yield Path(guest.boot.kernel.path)
            if guest.boot.initrd:
                yield Path(guest.boot.initrd.path)


class _DigestCache:
    """sha256 of files, remembered by (path, size, mtime, inode) so big images are hashed once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.changed = False
        try:
            self.entries: dict[str, str] = json.loads(path.read_text())
        except (OSError, ValueError):
            self.entries = {}

    def sha256(self, file: Path) -> str:
        stat = file.stat()
        key = f"{file.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ino}"
        if key not in self.entries:
            self.entries[key] = file_sha256(file)
            self.changed = True
        return self.entries[key]

    def save(self) -> None:
        if not self.changed:
            return
        import tempfile  # only when the cache changed: 2 ms of every start otherwise

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=self.path.parent, delete=False) as tmp:
                json.dump(self.entries, tmp)
            os.replace(tmp.name, self.path)
        except OSError:
            pass  # a cache that cannot be written only costs time


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_url(url: str, sha256: str, progress: Progress | None = None) -> Path:
    """Download once into the cache, verify, and keep nothing that does not match."""
    import urllib.request

    target = cache_dir() / "downloads" / sha256
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".part")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as response, tmp.open("wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress:
                    progress(f"download {url}", done, total)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise VmctlError(f"cannot download {url}: {exc}") from None
    if digest.hexdigest() != sha256:
        tmp.unlink(missing_ok=True)
        raise VmctlError(f"{url}: sha256 is {digest.hexdigest()}, the spec says {sha256}; nothing was kept")
    os.replace(tmp, target)
    return target
