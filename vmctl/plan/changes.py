"""The plan: what apply will do, change by change, field by field, and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from vmctl.model.types import DesiredState, GuestSpec, LiveGuest


class Action(Enum):
    """What happens to one object; carries its own symbol."""

    CREATE = ("create", "+")
    UPDATE = ("update", "~")
    UPDATE_RESTART = ("update-restart", "~!")
    REPLACE = ("replace", "-/+")
    DELETE = ("delete", "-")
    NOOP = ("no-op", " ")

    @property
    def label(self) -> str:
        return self.value[0]

    @property
    def symbol(self) -> str:
        return self.value[1]


class Effect(Enum):
    """How one field change is carried out."""

    LIVE = "live"  # on the running guest, which keeps running
    CONFIG = "config"  # written to the persistent config (the guest is stopped, or only the config drifted)
    RESTART = "restart"  # needs the guest restarted
    REPLACE = "replace"  # destroy and recreate; data on replaced disks is lost
    CREATE = "create"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field: its value before and after, how it is done, and why."""

    path: str
    before: Any
    after: Any
    effect: Effect
    reason: str = ""
    destructive: bool = False
    sensitive: bool = False
    unit: str | None = None  # "bytes" for sizes, so renderers can show 2GiB


@dataclass(frozen=True, slots=True)
class Change:
    """One object's change: a guest, volume, image, network or pool."""

    kind: str
    name: str
    action: Action
    fields: tuple[FieldChange, ...] = ()
    notes: tuple[str, ...] = ()
    guest: str | None = None  # for volumes: the guest they belong to
    pool: str | None = None  # for volumes and images
    desired: GuestSpec | None = field(default=None, compare=False, repr=False)
    live: LiveGuest | None = field(default=None, compare=False, repr=False)

    @property
    def destructive(self) -> bool:
        """Data is lost: a volume deleted or recreated (a network or an empty pool holds none)."""
        return any(f.destructive for f in self.fields)

    @property
    def needs_restart(self) -> bool:
        return any(f.effect is Effect.RESTART for f in self.fields)


@dataclass(frozen=True, slots=True)
class Plan:
    """All changes, in the order apply carries them out."""

    project: str
    workspace: str | None
    uri: str
    changes: tuple[Change, ...] = ()
    desired: DesiredState | None = field(default=None, compare=False, repr=False)

    @property
    def empty(self) -> bool:
        return not self.changes

    def count(self, action: Action) -> int:
        return sum(1 for c in self.changes if c.action is action)

    def guest_changes(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.kind == "guest")
