"""Guest images for vmctl's end-to-end tests, built from Debian packages and cached.

Guest images cannot be downloaded here, so they are built from the Debian archive:

* ``debian``: a Debian 12 cloud-init guest. mmdebstrap builds the root tree, ``mkfs.ext4 -d`` turns
  it into a filesystem that sits directly on the disk (no partition table, so the root is
  /dev/vda), and ``qemu-img convert`` makes a zstd-compressed qcow2 of it. The kernel and initrd
  are taken out of the tree for direct kernel boot.
* ``tiny``: the same Debian kernel plus a small initramfs built here (busybox, qemu-ga and the
  virtio modules) whose /init reports on the serial console and never leaves the initramfs.

Builds are cached in a directory (``~/.cache/vmctl/images``, or ``$VMCTL_IMAGE_CACHE``), keyed on
the exact package versions apt would install plus a hash of the recipe (the builder modules and
the data files under ``guest/``). A build happens in a temporary directory next to the cache and is renamed
into place when complete, under a per-kind file lock, so an interrupted build never looks complete
and two processes never build the same image at once.

Command line: ``python -m tests.tooling.images build debian|tiny [--cache DIR]``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from tests.tooling import buildsteps, debian_image, tiny_image
from tests.tooling.buildsteps import (
    GUEST_DATA,
    INITRD_NAME,
    KERNEL_NAME,
    SUITE,
    BuildOutput,
    ImageBuildError,
    Log,
    remove_tree,
    run,
)
from tests.tooling.tiny_image import Cpio

__all__ = ["BuildOutput", "Cpio", "GuestImage", "ImageBuildError", "ensure_image", "run"]

KINDS = ("debian", "tiny")
CACHE_ENV = "VMCTL_IMAGE_CACHE"
MANIFEST = "manifest.json"
# What decides how an image is built: a change here is a new image (this module is only the cache).
RECIPE_MODULES = (buildsteps, debian_image, tiny_image)


@dataclass(frozen=True, slots=True)
class GuestImage:
    kind: str  # "debian" | "tiny"
    kernel: Path
    initrd: Path
    disk: Path | None  # qcow2 root disk for "debian", None for "tiny"
    cmdline: str  # kernel command line to boot it
    # package -> version that went in; left out of the hash so images can be dict keys
    versions: Mapping[str, str] = field(hash=False)


def resolve_versions(patterns: Sequence[str]) -> dict[str, str]:
    """Package -> version apt would install for these patterns onto an empty system.

    Uses the host's apt lists (a simulation against an empty dpkg status, ~2 s), so it is only as
    fresh as the host's last ``apt-get update``.
    """
    out = run(
        [
            "apt-get", "--simulate", "--no-install-recommends", "--quiet",
            "-o", "Dir::State::status=/dev/null",
            "-o", "Debug::NoLocking=true",
            "install", *patterns,
        ]
    )  # fmt: skip
    versions = dict(re.findall(r"^Inst (\S+) \((\S+)", out, flags=re.MULTILINE))
    if not versions:
        raise ImageBuildError(f"apt resolved no packages for {' '.join(patterns)}; run apt-get update")
    return {name.split(":")[0]: version for name, version in versions.items()}


def recipe_digest() -> str:
    """Hash of everything that decides how an image is built: the builder modules and their data."""
    digest = hashlib.sha256()
    for module in RECIPE_MODULES:
        digest.update(Path(str(module.__file__)).read_bytes())
    for path in sorted(GUEST_DATA.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(GUEST_DATA)).encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()


def cache_key(kind: str, versions: Mapping[str, str], recipe: str) -> str:
    payload = json.dumps({"kind": kind, "recipe": recipe, "versions": dict(sorted(versions.items()))})
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def default_cache_dir() -> Path:
    configured = os.environ.get(CACHE_ENV)
    return Path(configured) if configured else Path.home() / ".cache" / "vmctl" / "images"


def package_patterns(kind: str) -> tuple[str, ...]:
    if kind == "debian":
        return (*debian_image.DEBIAN_BASE_PATTERNS, *debian_image.DEBIAN_PACKAGES)
    return tiny_image.TINY_PACKAGES


@contextlib.contextmanager
def exclusive_lock(path: Path, log: Log) -> Iterator[None]:
    """Hold an flock on path; the kernel drops it if the process dies, so no stale locks."""
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for another process building into {path.parent} ({path.name})")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def load_cached(entry: Path) -> GuestImage | None:
    """The image in a finished cache entry, or None if the entry is missing or unusable."""
    try:
        manifest = json.loads((entry / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    disk = entry / manifest["disk"] if manifest.get("disk") else None
    files = [entry / KERNEL_NAME, entry / INITRD_NAME, *([disk] if disk else [])]
    if not all(path.is_file() and path.stat().st_size > 0 for path in files):
        return None
    return GuestImage(
        kind=manifest["kind"],
        kernel=entry / KERNEL_NAME,
        initrd=entry / INITRD_NAME,
        disk=disk,
        cmdline=manifest["cmdline"],
        versions=MappingProxyType(dict(manifest["versions"])),
    )


def remove_abandoned_builds(cache: Path, kind: str, log: Log) -> None:
    """Temporary build directories of this kind left by killed builds (call with the lock held)."""
    for leftover in cache.glob(f".build-{kind}-*"):
        log(f"removing abandoned build {leftover}")
        remove_tree(leftover)


def publish(workdir: Path, entry: Path, manifest: dict[str, object]) -> None:
    """Write the manifest last and rename the work directory into place, which is atomic."""
    (workdir / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    # libvirt's QEMU runs as another user (libvirt-qemu) and must be able to read the files.
    workdir.chmod(0o755)
    for path in workdir.iterdir():
        path.chmod(0o644)
    if entry.exists():
        remove_tree(entry)  # an unusable leftover: load_cached rejected it
    workdir.rename(entry)


Builder = Callable[[Path, Mapping[str, str], Log], BuildOutput]
BUILDERS: dict[str, Builder] = {
    "debian": debian_image.build_debian,
    "tiny": tiny_image.build_tiny,
}


def ensure_image(kind: str, cache_dir: Path | None = None, log: Log | None = None) -> GuestImage:
    """The cached image of this kind for the current package versions, building it if needed."""
    if kind not in BUILDERS:
        raise ValueError(f"unknown image kind {kind!r}; expected one of {', '.join(KINDS)}")
    say = log or (lambda _message: None)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    resolved = resolve_versions(package_patterns(kind))
    entry = cache / f"{kind}-{cache_key(kind, resolved, recipe_digest())}"
    image = load_cached(entry)
    if image is None:
        with exclusive_lock(cache / f".{kind}.lock", say):
            # Another process may have finished the same build while this one waited.
            image = load_cached(entry) or build_entry(kind, cache, entry, resolved, say)
    else:
        say(f"reusing cached {kind} image {entry}")
    return image


def build_entry(kind: str, cache: Path, entry: Path, resolved: Mapping[str, str], log: Log) -> GuestImage:
    remove_abandoned_builds(cache, kind, log)
    log(f"building {kind} image into {entry}")
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix=f".build-{kind}-", dir=cache))
    try:
        output = BUILDERS[kind](workdir, resolved, log)
        seconds = round(time.monotonic() - started, 1)
        publish(workdir, entry, manifest_for(kind, entry, output, seconds))
    except BaseException:
        remove_tree(workdir)
        raise
    log(f"built {kind} image in {seconds} s")
    image = load_cached(entry)
    if image is None:
        raise ImageBuildError(f"the {kind} image at {entry} is incomplete right after building it")
    return image


def manifest_for(kind: str, entry: Path, output: BuildOutput, seconds: float) -> dict[str, object]:
    return {
        "kind": kind,
        "key": entry.name.removeprefix(f"{kind}-"),
        "suite": SUITE,
        "disk": output.disk,
        "cmdline": output.cmdline,
        "versions": dict(sorted(output.versions.items())),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "build_seconds": seconds,
    }


def image_json(image: GuestImage) -> str:
    return json.dumps(
        {
            "kind": image.kind,
            "kernel": str(image.kernel),
            "initrd": str(image.initrd),
            "disk": str(image.disk) if image.disk else None,
            "cmdline": image.cmdline,
            "versions": dict(image.versions),
        },
        indent=2,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.tooling.images", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build (or reuse) an image and print its paths as JSON")
    build.add_argument("kind", choices=KINDS)
    build.add_argument("--cache", type=Path, help=f"cache directory (default ${CACHE_ENV} or ~/.cache/vmctl/images)")
    link = commands.add_parser("link", help="build (or reuse) an image and link its files into a directory")
    link.add_argument("kind", choices=KINDS)
    link.add_argument("directory", type=Path)
    link.add_argument("--cache", type=Path)
    args = parser.parse_args(argv)
    try:
        image = ensure_image(args.kind, args.cache, log=lambda message: print(message, file=sys.stderr))
    except ImageBuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.command == "link":
        link_files(image, args.directory)
    print(image_json(image))
    return 0


LINK_NAMES = {
    "debian": {"disk": "debian-12.qcow2", "kernel": "vmlinuz", "initrd": "initrd.img"},
    "tiny": {"kernel": "tiny-vmlinuz", "initrd": "tiny-initrd.img"},
}


def link_files(image: GuestImage, directory: Path) -> None:
    """Symlinks with the names the example specs use (examples/images/debian-12.qcow2, ...)."""
    directory.mkdir(parents=True, exist_ok=True)
    for attribute, name in LINK_NAMES[image.kind].items():
        target = getattr(image, attribute)
        link = directory / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)


if __name__ == "__main__":
    sys.exit(main())
