"""How vmctl names what it creates in libvirt, and derives stable identities (MACs)."""

from __future__ import annotations

import hashlib
import re

DEFAULT_POOL = "default"
DEFAULT_POOL_PATH = "/var/lib/libvirt/images"

# libvirt accepts almost anything, but names end up in file names, host names and shell commands.
_LIBVIRT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}$")
WORKSPACE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")


def is_valid_libvirt_name(name: str) -> bool:
    return bool(_LIBVIRT_NAME.match(name))


def instance_names(guest: str, count: int) -> list[str]:
    """'web' x1 -> ['web']; 'web' x3 -> ['web-1', 'web-2', 'web-3']."""
    if count == 1:
        return [guest]
    return [f"{guest}-{i}" for i in range(1, count + 1)]


def domain_name(instance: str, workspace: str | None) -> str:
    return f"{workspace}-{instance}" if workspace else instance


def network_name(project: str, network: str, workspace: str | None) -> str:
    base = f"{project}-{network}"
    return f"{workspace}-{base}" if workspace else base


def disk_volume(domain: str, disk: str) -> str:
    return f"{domain}-{disk}.qcow2"


def seed_volume(domain: str, digest: str) -> str:
    return f"{domain}-seed-{digest[:12]}.iso"


def image_volume(image: str, sha256: str, fmt: str) -> str:
    """Content-addressed: the same bytes get the same name, whoever uploads them."""
    return f"{image}-{sha256[:16]}.{fmt}"


def is_image_volume(volume: str, image: str, fmt: str) -> bool:
    """Whether `volume` is a copy of the image named `image`, whatever its content (any digest)."""
    return re.fullmatch(rf"{re.escape(image)}-[0-9a-f]{{16}}\.{re.escape(fmt)}", volume) is not None


def is_boot_volume(volume: str) -> bool:
    return re.fullmatch(r"(kernel|initrd)-[0-9a-f]{16}", volume) is not None


def boot_volume(kind: str, sha256: str) -> str:
    return f"{kind}-{sha256[:16]}"


def derived_mac(project: str, workspace: str | None, instance: str, nic: str) -> str:
    """A MAC that is the same for the same guest and NIC on every run (QEMU's 52:54 prefix)."""
    digest = hashlib.sha256(f"{project}/{workspace or ''}/{instance}/{nic}".encode()).digest()
    return "52:54:" + ":".join(f"{b:02x}" for b in digest[:4])
