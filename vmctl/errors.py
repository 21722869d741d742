"""Typed errors raised by vmctl's core; the CLI turns them into messages and exit codes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Location:
    """A place in a spec file: 1-based line and column."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a spec: where, which field, what, and how to fix it."""

    location: Location | None
    path: str
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        field = f"{self.path}: " if self.path else ""
        hint = f" (hint: {self.hint})" if self.hint else ""
        return f"{where}{field}{self.message}{hint}"

    def sort_key(self) -> tuple[str, int, int, str]:
        loc = self.location
        return (loc.file, loc.line, loc.column, self.path) if loc else ("", 0, 0, self.path)


class VmctlError(Exception):
    """Base of every foreseeable failure; `str()` is the message shown to the user."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None, reasons: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.reasons = tuple(reasons)

    def details(self) -> list[str]:
        """Lines shown under the message: specifics first, the hint last."""
        return [*self.reasons, *([f"hint: {self.hint}"] if self.hint else [])]


class SpecError(VmctlError):
    """The spec is invalid; carries every problem found, not just the first."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(sorted(problems, key=Problem.sort_key))
        count = len(self.problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} in the spec")

    def details(self) -> list[str]:
        return [str(p) for p in self.problems]


class HypervisorError(VmctlError):
    """A libvirt operation failed; keeps libvirt's own message."""

    def __init__(self, operation: str, detail: str, *, guest: str | None = None, hint: str | None = None) -> None:
        subject = f"{guest}: " if guest else ""
        super().__init__(f"{subject}{operation} failed: {detail}", hint=hint)
        self.operation = operation
        self.detail = detail
        self.guest = guest


class ConnectError(HypervisorError):
    """The hypervisor could not be reached."""


class PlanError(VmctlError):
    """The plan cannot be made or used as asked (guards, conflicts, stale saved plans)."""

    def __init__(self, message: str, *, reasons: Iterable[str] = (), hint: str | None = None) -> None:
        super().__init__(message, hint=hint, reasons=reasons)


class ApplyError(VmctlError):
    """Some changes failed while applying; the others were carried out."""


class LockTimeout(VmctlError):
    """Another vmctl holds the lock for this connection, project and workspace."""


class AbortedByUser(VmctlError):
    """The user answered no."""


class WaitTimeout(VmctlError):
    """A guest did not become ready in time."""
