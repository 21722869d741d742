"""Run a command inside a guest through its qemu-guest-agent: for tests and the demo.

    python -m tests.tooling.agent GUEST COMMAND [ARG...]   (prints its output, exits with its code)

The guest is reached through libvirt only, never over a network.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from vmctl.apply.waiting import guest_exec
from vmctl.hypervisor import Hypervisor, connect


def run_in_guest(backend: Hypervisor, guest: str, argv: Sequence[str], timeout: float = 60) -> tuple[int, str]:
    """(exit code, stdout+stderr) of ARGV run in the guest."""
    return guest_exec(backend, guest, argv[0], list(argv[1:]), timeout=timeout)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    backend = connect(os.environ.get("VMCTL_CONNECT") or "qemu:///system")
    try:
        code, output = run_in_guest(backend, args[0], args[1:])
    finally:
        backend.close()
    sys.stdout.write(output)
    return code


if __name__ == "__main__":
    sys.exit(main())
