"""The "tiny" guest image: the Debian kernel plus a small initramfs built here (busybox, qemu-ga
and the virtio modules) whose /init reports on the serial console and never leaves the initramfs.
With `vmctl.dhcp` on its kernel command line it also runs busybox udhcpc on every NIC (a lease's
address, route and DNS server set by /etc/udhcpc.script), so guests can find each other by name."""

from __future__ import annotations

import gzip
import re
import shutil
import stat
import struct
from collections.abc import Mapping
from pathlib import Path

from tests.tooling.buildsteps import (
    GUEST_DATA,
    INITRD_NAME,
    KERNEL_NAME,
    BuildOutput,
    ImageBuildError,
    Log,
    downloaded_versions,
    mmdebstrap,
    remove_tree,
    report_stale_lists,
    run,
    single_file,
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


def build_tiny(workdir: Path, resolved: Mapping[str, str], log: Log) -> BuildOutput:
    tree = workdir / "tree"
    log("extracting linux-image-amd64, qemu-guest-agent and busybox-static (about 10 s)")
    # The extract variant unpacks the packages and their dependencies without configuring
    # anything; the downloaded .debs are kept to record which versions went in.
    mmdebstrap(tree, "extract", TINY_PACKAGES, ["--skip=cleanup/apt/cache"], log)
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
    archive.file("etc/udhcpc.script", (data / "udhcpc.script").read_bytes(), 0o755)
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
