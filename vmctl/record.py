"""`@record`: vmctl's frozen dataclasses, made without compiling what every class can share.

On Python 3.11 `@dataclass(frozen=True)` writes the source of six methods for each class and
compiles them one by one. For vmctl's fifty-odd classes that was 20-25 ms of every command: more
than PyYAML's import, and a tenth of a 100-guest destroy. A record is the same frozen dataclass
(`fields`, `replace`, `field(compare=False)` all work), but dataclasses compiles only `__init__` and
the two methods that make it frozen; equality, hashing and repr are the shared functions below,
which behave exactly as the generated ones (tests/test_record.py holds them to it).
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable
from dataclasses import Field, dataclass, field, fields
from operator import attrgetter
from typing import Any, TypeVar, dataclass_transform

T = TypeVar("T")

_COMPARED = "__record_compared__"
_HASHED = "__record_hashed__"
_SHOWN = "__record_shown__"


@dataclass_transform(frozen_default=True, field_specifiers=(field, Field))
def record(cls: type[T]) -> type[T]:
    """A frozen dataclass with dataclasses' own equality, hash and repr, at half the cost to create."""
    made = dataclass(frozen=True, eq=False, repr=False)(cls)
    every = fields(made)  # type: ignore[arg-type]
    setattr(made, _COMPARED, _values_of([f.name for f in every if f.compare]))
    setattr(made, _HASHED, _values_of([f.name for f in every if (f.compare if f.hash is None else f.hash)]))
    setattr(made, _SHOWN, tuple(f.name for f in every if f.repr))
    for name, shared in (("__eq__", _eq), ("__hash__", _hash), ("__repr__", _repr)):
        setattr(made, name, shared)
    return made


def _values_of(names: list[str]) -> Callable[[object], tuple[Any, ...]]:
    """The tuple dataclasses would build from these fields (attrgetter returns a bare value for one)."""
    if len(names) > 1:
        return attrgetter(*names)
    if names:
        one = attrgetter(names[0])
        return lambda obj: (one(obj),)
    return lambda obj: ()


def _eq(self: object, other: object) -> Any:  # a bool, or NotImplemented for another class
    if other.__class__ is not self.__class__:
        return NotImplemented
    values = getattr(self.__class__, _COMPARED)
    return values(self) == values(other)


def _hash(self: object) -> int:
    return hash(getattr(self.__class__, _HASHED)(self))


@reprlib.recursive_repr()
def _repr(self: object) -> str:
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in getattr(self.__class__, _SHOWN))
    return f"{self.__class__.__qualname__}({shown})"
