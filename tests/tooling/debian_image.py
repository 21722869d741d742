"""The "debian" guest image: a Debian 12 cloud-init guest for direct kernel boot.

mmdebstrap builds the root tree, ``mkfs.ext4 -d`` turns it into a filesystem that sits directly on
the disk (no partition table, so the root is /dev/vda), and ``qemu-img convert`` makes a
zstd-compressed qcow2 of it. The kernel and initrd are taken out of the tree.
"""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Mapping
from pathlib import Path

from tests.tooling.buildsteps import (
    DISK_NAME,
    GUEST_DATA,
    INITRD_NAME,
    KERNEL_NAME,
    SUITE,
    BuildOutput,
    ImageBuildError,
    Log,
    installed_versions,
    mmdebstrap,
    remove_tree,
    report_stale_lists,
    run,
    single_file,
)

DEBIAN_PACKAGES = (
    "linux-image-amd64",
    "cloud-init",
    "qemu-guest-agent",
    "ifupdown",
    "isc-dhcp-client",  # ifupdown's "inet dhcp", which cloud-init's fallback network config uses
    "systemd-sysv",
    "dbus",  # logind (power button) and `shutdown` need it: without it a guest ignores shutdown requests
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


def build_debian(workdir: Path, resolved: Mapping[str, str], log: Log) -> BuildOutput:
    root = workdir / "root"
    log(f"mmdebstrap {SUITE} with {len(DEBIAN_PACKAGES)} extra packages (about a minute)")
    mmdebstrap(root, "minbase", DEBIAN_PACKAGES, debian_mmdebstrap_options(), log)
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
