"""Where vmctl keeps what it can rebuild: image digests, downloads, spec validity (VMCTL_CACHE)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """$VMCTL_CACHE, else $XDG_CACHE_HOME/vmctl, else ~/.cache/vmctl."""
    base = os.environ.get("VMCTL_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "vmctl"
    )
    return Path(base)
