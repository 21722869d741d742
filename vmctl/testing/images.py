"""Guest images for vmctl's end-to-end tests, built from Debian packages and cached.

Guest images cannot be downloaded here, so they are built from the Debian archive:

* ``debian``: a Debian 12 cloud-init guest. mmdebstrap builds the root tree, ``mkfs.ext4 -d`` turns
  it into a filesystem that sits directly on the disk (no partition table, so the root is
  /dev/vda), and ``qemu-img convert`` makes a zstd-compressed qcow2 of it. The kernel and initrd
  are taken out of the tree for direct kernel boot.
* ``tiny``: the same Debian kernel plus a small initramfs built here (busybox, qemu-ga and the
  virtio modules) whose /init reports on the serial console and never leaves the initramfs.

Builds are cached in a directory (``~/.cache/vmctl/images``, or ``$VMCTL_IMAGE_CACHE``), keyed on
the exact package versions apt would install plus a hash of the recipe (this file and the data
files under ``guest/``). A build happens in a temporary directory next to the cache and is renamed
into place when complete, under a per-kind file lock, so an interrupted build never looks complete
and two processes never build the same image at once.

Command line: ``python -m vmctl.testing.images build debian|tiny [--cache DIR]``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import gzip
import hashlib
import json
import os
import re
import shlex
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

SUITE = "bookworm"
KINDS = ("debian", "tiny")
CACHE_ENV = "VMCTL_IMAGE_CACHE"
GUEST_DATA = Path(__file__).resolve().with_name("guest")
MANIFEST = "manifest.json"
KERNEL_NAME = "vmlinuz"
INITRD_NAME = "initrd.img"
DISK_NAME = "disk.qcow2"

DEBIAN_PACKAGES = (
    "linux-image-amd64",
    "cloud-init",
    "qemu-guest-agent",
    "ifupdown",
    "isc-dhcp-client",  # ifupdown's "inet dhcp", which cloud-init's fallback network config uses
    "systemd-sysv",
    "udev",
    "iproute2",
    "util-linux",
    "procps",
    "e2fsprogs",
    "cloud-guest-utils",
    "sudo",
)
# mmdebstrap's minbase variant is "Essential:yes plus Priority:required"; resolving the same
# patterns against an empty dpkg status gives the full set of packages a build will install.
DEBIAN_BASE_PATTERNS = ("?essential", "?priority(required)")
DEBIAN_CMDLINE = "root=/dev/vda rw console=ttyS0"
# The initrd must be able to mount the root on its own: the builder refuses an image without these.
DEBIAN_INITRD_MODULES = ("virtio_pci.ko", "virtio_blk.ko", "virtio_scsi.ko", "virtio_net.ko", "ext4.ko")
DEBIAN_MIN_DISK_BYTES = 3 * 1024**3
# Docs, man pages and translations are of no use in a test guest and make the image bigger.
DPKG_EXCLUDES = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
    "path-exclude=/usr/share/lintian/*",
)

TINY_PACKAGES = ("linux-image-amd64", "qemu-guest-agent", "busybox-static")
TINY_CMDLINE = "console=ttyS0 loglevel=4"
# The tiny guest's hardware: virtio devices, the seed CD-ROM (IDE on pc, SATA on q35, or SCSI)
# and SCSI disks. Dependencies are added from each module's modinfo.
TINY_MODULES = (
    "virtio_pci",
    "virtio_console",
    "virtio_blk",
    "virtio_net",
    "virtio_scsi",
    "virtio_balloon",
    "virtio_rng",
    "isofs",
    "sr_mod",
    "crct10dif_generic",  # crc-t10dif (needed by sd_mod) fails to load without an implementation
    "sd_mod",
    "ata_piix",
    "ahci",
)
TINY_DIRECTORIES = (
    "bin", "sbin", "usr", "usr/bin", "usr/sbin", "lib", "lib64", "lib/x86_64-linux-gnu",
    "lib/modules", "etc", "dev", "proc", "sys", "run", "tmp", "mnt", "root", "var",
)  # fmt: skip
MULTIARCH_LIBDIR = "lib/x86_64-linux-gnu"
DYNAMIC_LOADER = "lib64/ld-linux-x86-64.so.2"

Log = Callable[[str], None]


class ImageBuildError(RuntimeError):
    """A guest image could not be built; the message names the failing step."""


@dataclass(frozen=True)
class GuestImage:
    kind: str  # "debian" | "tiny"
    kernel: Path
    initrd: Path
    disk: Path | None  # qcow2 root disk for "debian", None for "tiny"
    cmdline: str  # kernel command line to boot it
    # package -> version that went in; left out of the hash so images can be dict keys
    versions: Mapping[str, str] = field(hash=False)


@dataclass(frozen=True)
class BuildOutput:
    """What a builder leaves in its work directory (names relative to it)."""

    disk: str | None
    cmdline: str
    versions: dict[str, str]


# ---------------------------------------------------------------------------------------------
# Running commands


def run(cmd: Sequence[str | Path]) -> str:
    """Run a command and return its stdout; on failure raise ImageBuildError with its stderr tail."""
    argv = [str(part) for part in cmd]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise ImageBuildError(f"{argv[0]} is not installed (needed for: {shlex.join(argv)})") from exc
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-25:])
        raise ImageBuildError(f"command failed (exit {result.returncode}): {shlex.join(argv)}\n{tail}")
    return result.stdout


# ---------------------------------------------------------------------------------------------
# Cache key: package versions and recipe


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
    """Hash of everything that decides how an image is built: this module and its data files."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
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


def warn_if_hidden_from_qemu(cache: Path, log: Log) -> None:
    """libvirt's system instance runs QEMU as another user (libvirt-qemu), which must be able to
    reach the kernel, initrd and disk: every directory above the cache must be world-searchable.
    That is not the case for the default cache of root (/root is 0700)."""
    for directory in (cache.resolve(), *cache.resolve().parents):
        if not directory.stat().st_mode & stat.S_IXOTH:
            log(
                f"warning: {directory} is not searchable by other users, so QEMU run by libvirt as "
                f"libvirt-qemu cannot open images in {cache}; set {CACHE_ENV} to a directory such as "
                "/var/cache/vmctl/images"
            )
            return


def package_patterns(kind: str) -> tuple[str, ...]:
    if kind == "debian":
        return (*DEBIAN_BASE_PATTERNS, *DEBIAN_PACKAGES)
    return TINY_PACKAGES


# ---------------------------------------------------------------------------------------------
# Cache directory handling


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


def mounts_below(path: Path) -> list[str]:
    """Mount points at or under path, deepest first."""
    prefix = str(path.resolve())
    found = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        point = line.split()[1].encode().decode("unicode_escape")
        if point == prefix or point.startswith(prefix + "/"):
            found.append(point)
    return sorted(found, key=len, reverse=True)


def remove_tree(path: Path) -> None:
    """rm -rf that first unmounts anything mmdebstrap may have left mounted inside (e.g. after
    SIGKILL), so removing a root tree can never reach into the host's /dev or /proc."""
    for point in mounts_below(path):
        subprocess.run(["umount", "--lazy", point], check=False, capture_output=True)
    if mounts_below(path):
        raise ImageBuildError(f"cannot remove {path}: something is still mounted below it")
    shutil.rmtree(path, ignore_errors=True)


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


# ---------------------------------------------------------------------------------------------
# Shared build steps


def mmdebstrap(target: Path, variant: str, packages: Iterable[str], extra: Sequence[str]) -> None:
    # Mode root: the build runs as root on CI; it is also the fastest mode.
    run(
        [
            "mmdebstrap", "--mode=root", f"--variant={variant}",
            f"--include={','.join(packages)}", *extra, SUITE, target,
        ]
    )  # fmt: skip


def single_file(directory: Path, pattern: str) -> Path:
    matches = sorted(directory.glob(pattern))
    if len(matches) != 1:
        raise ImageBuildError(f"expected exactly one {pattern} in {directory}, found {matches}")
    return matches[0]


def installed_versions(root: Path) -> dict[str, str]:
    """Package -> version from the dpkg status database of a built tree."""
    versions: dict[str, str] = {}
    status = (root / "var/lib/dpkg/status").read_text()
    for stanza in status.split("\n\n"):
        fields = dict(re.findall(r"^([\w-]+): (.*)$", stanza, flags=re.MULTILINE))
        if fields.get("Status", "").endswith(" installed"):
            versions[fields["Package"]] = fields["Version"]
    return versions


def downloaded_versions(archives: Path) -> dict[str, str]:
    """Package -> version from the .deb file names apt left in an archive cache."""
    versions = {}
    for deb in archives.glob("*.deb"):
        name, version, _arch = deb.stem.split("_")
        versions[name] = version.replace("%3a", ":")
    return versions


def report_stale_lists(resolved: Mapping[str, str], built: Mapping[str, str], log: Log) -> None:
    differing = sorted(name for name in resolved if built.get(name) not in (None, resolved[name]))
    if differing:
        log(
            "the host's apt lists are older than the archive mmdebstrap used "
            f"({', '.join(differing[:5])}...); run apt-get update so the cache key tracks the archive"
        )


# ---------------------------------------------------------------------------------------------
# The "debian" image


def build_debian(workdir: Path, resolved: Mapping[str, str], log: Log) -> BuildOutput:
    root = workdir / "root"
    log(f"mmdebstrap {SUITE} with {len(DEBIAN_PACKAGES)} extra packages (about 80 s)")
    mmdebstrap(root, "minbase", DEBIAN_PACKAGES, debian_mmdebstrap_options())
    kernel = single_file(root / "boot", "vmlinuz-*")
    initrd = single_file(root / "boot", "initrd.img-*")
    check_debian_initrd(root, initrd)
    shutil.copyfile(kernel, workdir / KERNEL_NAME)
    shutil.copyfile(initrd, workdir / INITRD_NAME)
    versions = installed_versions(root)
    report_stale_lists(resolved, versions, log)
    log("making the ext4 filesystem and the qcow2 disk")
    make_disk(root, workdir / DISK_NAME)
    remove_tree(root)
    return BuildOutput(disk=DISK_NAME, cmdline=DEBIAN_CMDLINE, versions=versions)


def debian_mmdebstrap_options() -> list[str]:
    data = GUEST_DATA / "debian"
    hook = 'sh {} "$1"'.format  # mmdebstrap runs hooks with the root as $1
    return [
        *(f"--dpkgopt={rule}" for rule in DPKG_EXCLUDES),
        f"--essential-hook={hook(shlex.quote(str(data / 'essential.sh')))}",
        f"--customize-hook={hook(shlex.quote(str(data / 'customize.sh')))}",
    ]


def check_debian_initrd(root: Path, initrd: Path) -> None:
    listing = run(["chroot", root, "lsinitramfs", f"/boot/{initrd.name}"])
    names = {line.rsplit("/", 1)[-1] for line in listing.splitlines()}
    missing = [module for module in DEBIAN_INITRD_MODULES if module not in names]
    if missing:
        raise ImageBuildError(f"the initrd {initrd.name} lacks {', '.join(missing)}")


def make_disk(root: Path, disk: Path) -> None:
    """ext4 straight from the tree into a sparse file (no loop mount), then a compressed qcow2."""
    raw = disk.with_suffix(".raw")
    used = sum(entry.stat().st_size for entry in root.rglob("*") if entry.is_file() and not entry.is_symlink())
    with raw.open("wb") as handle:
        handle.truncate(max(DEBIAN_MIN_DISK_BYTES, 2 * used))
    run(["mkfs.ext4", "-q", "-F", "-L", "vmctl-root", "-d", root, raw])
    # zstd compresses about as well as zlib but five times faster (3 s against 16 s), and QEMU
    # reads it back just as fast; guest writes land uncompressed in the overlay anyway.
    run(["qemu-img", "convert", "-c", "-o", "compression_type=zstd", "-O", "qcow2", raw, disk])
    raw.unlink()


# ---------------------------------------------------------------------------------------------
# The "tiny" image


def build_tiny(workdir: Path, resolved: Mapping[str, str], log: Log) -> BuildOutput:
    tree = workdir / "tree"
    log("extracting linux-image-amd64, qemu-guest-agent and busybox-static (about 10 s)")
    # The extract variant unpacks the packages and their dependencies without configuring
    # anything; the downloaded .debs are kept to record which versions went in.
    mmdebstrap(tree, "extract", TINY_PACKAGES, ["--skip=cleanup/apt/cache"])
    versions = downloaded_versions(tree / "var/cache/apt/archives")
    report_stale_lists(resolved, versions, log)
    kernel = single_file(tree / "boot", "vmlinuz-*")
    shutil.copyfile(kernel, workdir / KERNEL_NAME)
    log("writing the initramfs")
    archive = Cpio()
    add_tiny_skeleton(archive)
    add_agent(archive, tree)
    add_modules(archive, tree / "lib/modules" / kernel.name.removeprefix("vmlinuz-"))
    (workdir / INITRD_NAME).write_bytes(gzip.compress(archive.finish(), compresslevel=9, mtime=0))
    remove_tree(tree)
    return BuildOutput(disk=None, cmdline=TINY_CMDLINE, versions=versions)


class Cpio:
    """A newc ("070701") cpio archive, as the kernel unpacks an initramfs, built in memory."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._directories: set[str] = set()
        self._inode = 1

    def directory(self, name: str) -> None:
        if name not in self._directories:
            self._parents(name)
            self._directories.add(name)
            self._entry(name, stat.S_IFDIR | 0o755, b"")

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def char_device(self, name: str, major: int, minor: int) -> None:
        self._entry(name, stat.S_IFCHR | 0o600, b"", rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0, b"")
        return b"".join(self._chunks)

    def _parents(self, name: str) -> None:
        # The kernel's unpacker does not create missing parent directories: a file whose directory
        # has not been seen earlier in the archive is silently dropped.
        parent = name.rpartition("/")[0]
        if parent:
            self.directory(parent)

    def _entry(self, name: str, mode: int, data: bytes, rdev: tuple[int, int] = (0, 0)) -> None:
        if not stat.S_ISDIR(mode) and name != "TRAILER!!!":
            self._parents(name)
        encoded = name.encode() + b"\0"
        nlink = 2 if stat.S_ISDIR(mode) else 1
        fields = (self._inode, mode, 0, 0, nlink, 0, len(data), 0, 0, *rdev, len(encoded), 0)
        header = b"070701" + b"".join(b"%08x" % value for value in fields)
        self._chunks += [header, encoded, _pad4(len(header) + len(encoded)), data, _pad4(len(data))]
        self._inode += 1


def _pad4(length: int) -> bytes:
    return b"\0" * (-length % 4)


def add_tiny_skeleton(archive: Cpio) -> None:
    for directory in TINY_DIRECTORIES:
        archive.directory(directory)
    # The kernel opens /dev/console for init's stdio before init can mount devtmpfs.
    archive.char_device("dev/console", 5, 1)
    data = GUEST_DATA / "tiny"
    archive.file("init", (data / "init").read_bytes(), 0o755)
    archive.file("sbin/shutdown", (data / "shutdown").read_bytes(), 0o755)
    archive.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    archive.file("etc/group", b"root:x:0:\n")


def add_agent(archive: Cpio, tree: Path) -> None:
    """busybox, qemu-ga and the shared libraries qemu-ga links against, from the extracted tree."""
    archive.file("bin/busybox", (tree / "bin/busybox").read_bytes(), 0o755)
    archive.symlink("bin/sh", "busybox")  # /init installs the other applets itself
    archive.file("bin/qemu-ga", (tree / "usr/sbin/qemu-ga").read_bytes(), 0o755)
    for library in shared_libraries(tree, tree / "usr/sbin/qemu-ga"):
        archive.file(f"{MULTIARCH_LIBDIR}/{library.name}", library.read_bytes(), 0o755)
    archive.symlink(DYNAMIC_LOADER, f"/{MULTIARCH_LIBDIR}/ld-linux-x86-64.so.2")


def shared_libraries(tree: Path, binary: Path) -> list[Path]:
    """The libraries a binary of the tree loads, resolved inside the tree by the tree's own ld.so
    (like ldd, without running anything from the tree but the loader in list mode)."""
    library_path = f"{tree / MULTIARCH_LIBDIR}:{tree / 'usr' / MULTIARCH_LIBDIR}"
    listing = run([tree / DYNAMIC_LOADER, "--library-path", library_path, "--list", binary])
    libraries = [Path(path) for path in re.findall(r"=> (/\S+)", listing)]
    outside = [path for path in libraries if not path.is_relative_to(tree)]
    if outside:
        raise ImageBuildError(f"{binary.name} resolved libraries outside the tree: {outside}")
    # These are the names the binary asks for (often symlinks; copying reads through them). The
    # loader's own line ("/lib64/ld-linux-x86-64.so.2 => TREE/lib64/...") is among them.
    return libraries


def add_modules(archive: Cpio, modules_dir: Path) -> None:
    """The tiny guest's modules plus dependencies, and /etc/modules.order listing them so that
    every module comes after the modules it depends on (init insmods them in that order)."""
    builtin = builtin_modules(modules_dir)
    index = module_index(modules_dir)
    order: list[Path] = []
    for name in TINY_MODULES:
        add_with_dependencies(name, index, builtin, order)
    relative = [str(module.relative_to(modules_dir)) for module in order]
    for module, name in zip(order, relative, strict=True):
        archive.file(f"lib/modules/{name}", module.read_bytes())
    archive.file("etc/modules.order", "".join(f"{name}\n" for name in relative).encode())


def module_index(modules_dir: Path) -> dict[str, Path]:
    """Module name, as the kernel spells it (dashes become underscores) -> module file."""
    return {path.name.removesuffix(".ko").replace("-", "_"): path for path in modules_dir.rglob("*.ko")}


def builtin_modules(modules_dir: Path) -> set[str]:
    builtin_list = modules_dir / "modules.builtin"
    lines = builtin_list.read_text().split() if builtin_list.exists() else []
    return {Path(line).name.removesuffix(".ko").replace("-", "_") for line in lines}


def add_with_dependencies(name: str, index: Mapping[str, Path], builtin: set[str], order: list[Path]) -> None:
    """Append a module to order after its dependencies (depth first); built-in ones need nothing."""
    name = name.replace("-", "_")
    if name in builtin:
        return
    if name not in index:
        raise ImageBuildError(f"kernel module {name} is neither built in nor in the kernel package")
    if index[name] in order:
        return
    for dependency in module_dependencies(index[name]):
        add_with_dependencies(dependency, index, builtin, order)
    order.append(index[name])


def module_dependencies(module: Path) -> list[str]:
    """The "depends=" entry of a module's .modinfo section, which is what depmod reads (the
    extracted package has no modules.dep: depmod runs in its postinst)."""
    for entry in elf_section(module, ".modinfo").split(b"\0"):
        if entry.startswith(b"depends="):
            return [name for name in entry.removeprefix(b"depends=").decode().split(",") if name]
    return []


def elf_section(path: Path, wanted: str) -> bytes:
    """The contents of a named section of a little-endian ELF64 file (kernel modules are)."""
    data = path.read_bytes()
    if data[:6] != b"\x7fELF\x02\x01":
        raise ImageBuildError(f"{path} is not a little-endian ELF64 file")
    (section_table,) = struct.unpack_from("<Q", data, 0x28)
    entry_size, count, names_index = struct.unpack_from("<HHH", data, 0x3A)

    def section(index: int) -> tuple[int, int, int]:
        base = section_table + index * entry_size
        (name,) = struct.unpack_from("<I", data, base)
        offset, size = struct.unpack_from("<QQ", data, base + 0x18)
        return name, offset, size

    _, names_offset, _ = section(names_index)
    for index in range(count):
        name, offset, size = section(index)
        end = data.index(b"\0", names_offset + name)
        if data[names_offset + name : end].decode() == wanted:
            return data[offset : offset + size]
    raise ImageBuildError(f"{path} has no {wanted} section")


# ---------------------------------------------------------------------------------------------
# Entry points


Builder = Callable[[Path, Mapping[str, str], Log], BuildOutput]
BUILDERS: dict[str, Builder] = {
    "debian": build_debian,
    "tiny": build_tiny,
}


def ensure_image(kind: str, cache_dir: Path | None = None, log: Log | None = None) -> GuestImage:
    """The cached image of this kind for the current package versions, building it if needed."""
    if kind not in BUILDERS:
        raise ValueError(f"unknown image kind {kind!r}; expected one of {', '.join(KINDS)}")
    say = log or (lambda _message: None)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    warn_if_hidden_from_qemu(cache, say)
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
    parser = argparse.ArgumentParser(prog="python -m vmctl.testing.images", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build (or reuse) an image and print its paths as JSON")
    build.add_argument("kind", choices=KINDS)
    build.add_argument("--cache", type=Path, help=f"cache directory (default ${CACHE_ENV} or ~/.cache/vmctl/images)")
    args = parser.parse_args(argv)
    try:
        image = ensure_image(args.kind, args.cache, log=lambda message: print(message, file=sys.stderr))
    except ImageBuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(image_json(image))
    return 0


if __name__ == "__main__":
    sys.exit(main())
