"""Sizes and durations: parsed from human units at the edges, bytes and seconds inside."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

SIZE_UNITS: dict[str, int] = {
    "B": 1,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
    "TiB": 1024**4,
    "PiB": 1024**5,
    "kB": 1000,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "TB": 1000**4,
    "PB": 1000**5,
}
_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]+)\s*$")
_AMBIGUOUS = {"k": "KiB", "K": "KiB", "m": "MiB", "M": "MiB", "g": "GiB", "G": "GiB", "t": "TiB", "T": "TiB"}

DURATION_UNITS: dict[str, int] = {"ms": 0, "s": 1, "m": 60, "h": 3600}
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")


@dataclass(frozen=True, slots=True)
class Range:
    """The values a field takes, both ends included: bytes for sizes, seconds for durations."""

    least: int
    most: int


# What libvirt and off_t hold: the ceiling of any size, so that more than 19 digits is always too many.
ANY_SIZE = Range(0, 2**63 - 1)
# A timeout given on the command line: any longer than a year is a typo, not a wish.
ANY_DURATION = Range(0, 365 * 24 * 3600)
# Digits beyond these cannot change the verdict, so huge numbers are judged without converting them.
# A field's range lies within ANY_SIZE or ANY_DURATION.
_SIZE_DIGITS = len(str(ANY_SIZE.most))  # 19: 10**19 bytes is above every maximum
_SIZE_DECIMALS = 50  # 1/2**50 (1B in PiB) has 50 decimals: more cannot make whole bytes
_DURATION_DIGITS = 12  # 10**12ms (31 years) is above every maximum
_DURATION_DECIMALS = 9  # nanoseconds: what a timeout can tell apart


class UnitError(ValueError):
    """A value that is not a valid size or duration; `hint` shows the fix."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


def parse_size(text: object, allowed: Range = ANY_SIZE) -> int:
    """Parse '2GiB' / '500MB' into bytes within `allowed`. Bare numbers are refused: units are never guessed."""
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise UnitError(f"expected a size like '2GiB', got {_kind(text)}")
    if isinstance(text, (int, float)) or text.strip().isdigit():
        number = _shorten(str(text).strip())
        raise UnitError(f"a size needs a unit: {number}", hint=f"write '{number}MiB' or '{number}GiB'")
    match = _SIZE_RE.match(text)
    if not match:
        raise UnitError(
            f"not a size: {_shorten(text)!r}", hint="write a number and a unit, e.g. '512MiB', '2GiB', '500MB'"
        )
    number, unit = match.groups()
    shown = _shorten(number) + unit
    if unit not in SIZE_UNITS:
        raise UnitError(f"unknown size unit {_shorten(unit)!r} in {shown!r}", hint=_unit_hint(_shorten(number), unit))
    digits, tenths = _decimal(number, _SIZE_DIGITS, _SIZE_DECIMALS + 1)
    if digits is None:
        raise _out_of(allowed, allowed.most + 1, shown, format_size)
    value, remainder = divmod(digits * SIZE_UNITS[unit], tenths)
    if remainder:
        raise UnitError(f"{shown!r} is not a whole number of bytes", hint="use a smaller unit")
    if not allowed.least <= value <= allowed.most:
        raise _out_of(allowed, value, shown, format_size)
    return value


def _decimal(number: str, max_digits: int, max_decimals: int) -> tuple[int | None, int]:
    """'1.25' -> (125, 100): a decimal as an exact fraction, without the decimal module's import cost.

    None for a number with more than `max_digits` before the point: larger than anything allowed,
    and not worth a big-integer conversion. Decimals past `max_decimals` are dropped, after the last
    one that is not zero: a size with more decimals than whole bytes can have stays fractional.
    """
    whole, _, fraction = number.partition(".")
    whole, fraction = whole.lstrip("0"), fraction.rstrip("0")
    fraction = fraction[:max_decimals] if len(fraction) <= max_decimals else fraction[: max_decimals - 1] + "1"
    if len(whole) > max_digits:
        return None, 1
    return int(whole + fraction or "0"), 10 ** len(fraction)


def _out_of(allowed: Range, value: float, shown: str, formatted: Callable[[int], str]) -> UnitError:
    """The error for a value outside `allowed`, naming the end it crossed and the whole range."""
    within = f"give a value from {formatted(allowed.least)} to {formatted(allowed.most)}"
    if value > allowed.most:
        return UnitError(f"{shown} is above the maximum, {formatted(allowed.most)}", hint=within)
    return UnitError(f"{shown} is below the minimum, {formatted(allowed.least)}", hint=within)


def _shorten(text: str) -> str:
    """A long number or word as a message shows it: its first five characters and an ellipsis."""
    return text if len(text) <= 24 else text[:5] + "…"


def _unit_hint(number: str, unit: str) -> str:
    if unit in _AMBIGUOUS:
        return (
            f"'{unit}' is ambiguous: write '{number}{_AMBIGUOUS[unit]}' (binary) or '{number}{unit.upper()}B' (decimal)"
        )
    return "units are B, KiB, MiB, GiB, TiB (binary) or kB, MB, GB, TB (decimal)"


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def format_size(size: int) -> str:
    """The shortest exact human form: 2147483648 -> '2GiB', 500000000 -> '500MB'."""
    for unit in ("PiB", "TiB", "GiB", "MiB", "KiB", "PB", "TB", "GB", "MB", "kB"):
        factor = SIZE_UNITS[unit]
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}B"


def format_duration(seconds: int) -> str:
    """The shortest exact form of whole seconds: 86400 -> '24h', 90 -> '90s'."""
    for unit in ("h", "m"):
        if seconds >= DURATION_UNITS[unit] and seconds % DURATION_UNITS[unit] == 0:
            return f"{seconds // DURATION_UNITS[unit]}{unit}"
    return f"{seconds}s"


def parse_duration(text: object, allowed: Range = ANY_DURATION) -> float:
    """Parse '30s', '5m', '1h30m', '500ms' into seconds within `allowed`."""
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise UnitError(f"expected a duration like '5m', got {_kind(text)}")
    if isinstance(text, (int, float)) or text.strip().isdigit():
        number = _shorten(str(text).strip())
        raise UnitError(f"a duration needs a unit: {number}", hint=f"write '{number}s' or '{number}m'")
    compact = text.strip()
    parts = _DURATION_PART.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise UnitError(f"not a duration: {_shorten(text)!r}", hint="write e.g. '30s', '5m', '1h', '1m30s'")
    fractions = [_decimal(n, _DURATION_DIGITS, _DURATION_DECIMALS) for n, _u in parts]
    shown = compact if len(compact) <= 24 else f"{compact[:5]}…{parts[-1][1]}"
    if any(digits is None for digits, _tenths in fractions):
        raise _out_of(allowed, allowed.most + 1, shown, format_duration)
    common = max(tenths for _digits, tenths in fractions)
    millis = sum(
        (digits or 0) * (common // tenths) * (1 if unit == "ms" else DURATION_UNITS[unit] * 1000)
        for (digits, tenths), (_n, unit) in zip(fractions, parts, strict=True)
    )
    seconds = millis / (common * 1000)
    if not allowed.least <= seconds <= allowed.most:
        raise _out_of(allowed, seconds, shown, format_duration)
    return seconds


def utc_timestamp(seconds: float) -> str:
    """Seconds since the epoch as vmctl records times (creation, expiry): '2026-11-27T19:20:49Z'.

    Fixed width, so two such timestamps compare as text as they do as times.
    """
    import datetime

    return datetime.datetime.fromtimestamp(int(seconds), datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
