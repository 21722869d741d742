"""`@record` must behave as `@dataclass(frozen=True)` does: same equality, hash, repr, errors."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmctl.model import GuestSpec, ImageSpec
from vmctl.record import record


def _sample(make: Callable[[type], type]) -> Any:
    """One class body, made by `make`: a record and its reference dataclass cannot drift apart."""

    class Sample:
        name: str
        size: int = 0
        tags: tuple[str, ...] = ()
        origin: str | None = field(default=None, compare=False)
        secret: str = field(default="", repr=False)
        extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    return make(Sample)


Reference = _sample(dataclass(frozen=True))
Made = _sample(record)


@record
class One:
    value: float


@record
class Empty:
    pass


values = st.tuples(
    st.text(max_size=3),
    st.integers(-2, 2),
    st.lists(st.text(max_size=2), max_size=2).map(tuple),
    st.none() | st.text(max_size=2),
    st.text(max_size=2),
)


def _pair(args: tuple[Any, ...]) -> tuple[Any, Any]:
    return Reference(*args), Made(*args)


@given(values, values)
def test_equality_and_hash_follow_dataclasses(a: tuple[Any, ...], b: tuple[Any, ...]) -> None:
    ref_a, made_a = _pair(a)
    ref_b, made_b = _pair(b)
    assert (made_a == made_b) is (ref_a == ref_b)
    assert (made_a != made_b) is (ref_a != ref_b)
    assert hash(made_a) == hash(ref_a)  # the same tuple of compared fields is hashed


@given(values)
def test_repr_is_the_dataclass_repr(args: tuple[Any, ...]) -> None:
    ref, made = _pair(args)
    assert repr(made) == repr(ref)


def test_fields_left_out_of_comparison_do_not_count() -> None:
    assert Made("a", origin="x.yaml:1", extra={"k": 1}) == Made("a", origin="y.yaml:9")
    assert Made("a") != Made("a", size=1)


def test_other_classes_are_never_equal() -> None:
    assert Made("a") != Reference("a")
    assert Made("a") != ("a", 0, (), "")
    assert Empty() == Empty() and hash(Empty()) == hash(())
    assert One(1.0) == One(1.0) and hash(One(2.0)) == hash((2.0,))


def test_a_record_is_a_frozen_dataclass() -> None:
    made = Made("a", 1)
    assert dataclasses.is_dataclass(made)
    assert [f.name for f in dataclasses.fields(made)] == [f.name for f in dataclasses.fields(Reference)]
    assert dataclasses.replace(made, size=2) == Made("a", 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.size = 3  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del made.name  # type: ignore[misc]
    assert {made, Made("a", 1)} == {made}


def test_a_record_that_holds_itself_has_a_finite_repr() -> None:
    made_list: list[Any] = []
    ref_list: list[Any] = []
    made, ref = Made("a", tags=(made_list,)), Reference("a", tags=(ref_list,))
    made_list.append(made)
    ref_list.append(ref)
    assert repr(made) == repr(ref)
    assert repr(made).endswith(".Sample(name='a', size=0, tags=([...],), origin=None)")


def test_vmctl_models_keep_dataclass_semantics() -> None:
    image = ImageSpec("base", "qcow2", "default")
    assert image == dataclasses.replace(image)
    assert repr(image).startswith("ImageSpec(name='base', format='qcow2', pool='default'")
    assert hash(image) == hash(dataclasses.replace(image))
    assert "origin" in {f.name for f in dataclasses.fields(GuestSpec)}
