"""Named points where tests kill vmctl as `kill -9` would, to prove any interruption converges.

`VMCTL_FAILPOINT=NAME` makes the process exit at once, without cleanup, when it reaches NAME.
"""

from __future__ import annotations

import os


def failpoint(name: str) -> None:
    if os.environ.get("VMCTL_FAILPOINT") == name:
        os._exit(137)
