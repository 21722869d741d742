"""What every guest's work shares: the hypervisor, the desired state, the user's options, outcomes."""

from __future__ import annotations

from dataclasses import dataclass, field

from vmctl.hypervisor.interface import Hypervisor
from vmctl.model import DesiredState, HostFacts

UNPLUG_TIMEOUT = 20.0
BALLOON_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class ApplyOptions:
    """How apply may act: restarts, waiting, timeouts."""

    allow_restart: bool = False
    wait: bool = False
    shutdown_timeout: float = 60.0
    unplug_timeout: float = UNPLUG_TIMEOUT
    settle_timeout: float = BALLOON_TIMEOUT  # for the guest to carry out live requests


@dataclass(frozen=True, slots=True)
class ApplyContext:
    """What every guest's work shares."""

    backend: Hypervisor
    desired: DesiredState
    host: HostFacts
    pool_paths: dict[str, str]
    options: ApplyOptions

    def pool_path(self, pool: str) -> str:
        """The pool's directory, which keys its locks on this machine; its name if that is not known."""
        return self.pool_paths.get(pool, pool)


@dataclass
class Outcome:
    """What became of one change: done or failed, and what the user must know."""

    subject: str
    ok: bool = True
    summary: str = ""
    warnings: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)  # for a failure: what the error showed (a console's last lines)
