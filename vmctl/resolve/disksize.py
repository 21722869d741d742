"""The size a guest sees of a qcow2 or raw disk file, read from the file itself."""

from __future__ import annotations

import os
import struct
from pathlib import Path

from vmctl.errors import VmctlError


def virtual_size(path: str | Path, fmt: str) -> int:
    """From the qcow2 header, or the file size for raw images (what libvirt reports as capacity)."""
    if fmt == "raw":
        return os.stat(path).st_size
    with open(path, "rb") as handle:
        header = handle.read(32)
    if len(header) < 32 or header[:4] != b"QFI\xfb":
        raise VmctlError(f"{path} is not a qcow2 image", hint="set format: raw for raw images")
    return int(struct.unpack(">Q", header[24:32])[0])
