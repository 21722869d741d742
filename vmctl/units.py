"""Sizes and durations: parsed from human units at the edges, bytes and seconds inside."""

from __future__ import annotations

import re

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
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)\s*$")
_AMBIGUOUS = {"k": "KiB", "K": "KiB", "m": "MiB", "M": "MiB", "g": "GiB", "G": "GiB", "t": "TiB", "T": "TiB"}

DURATION_UNITS: dict[str, int] = {"ms": 0, "s": 1, "m": 60, "h": 3600}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


class UnitError(ValueError):
    """A value that is not a valid size or duration; `hint` shows the fix."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


def parse_size(text: object) -> int:
    """Parse '2GiB' / '500MB' into bytes. Bare numbers are refused: units are never guessed."""
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise UnitError(f"expected a size like '2GiB', got {_kind(text)}")
    if isinstance(text, (int, float)) or text.strip().isdigit():
        number = str(text).strip()
        raise UnitError(f"a size needs a unit: {number}", hint=f"write '{number}MiB' or '{number}GiB'")
    match = _SIZE_RE.match(text)
    if not match:
        raise UnitError(f"not a size: {text!r}", hint="write a number and a unit, e.g. '512MiB', '2GiB', '500MB'")
    number, unit = match.groups()
    if unit not in SIZE_UNITS:
        raise UnitError(f"unknown size unit {unit!r} in {text!r}", hint=_unit_hint(number, unit))
    digits, tenths = _decimal(number)
    value, remainder = divmod(digits * SIZE_UNITS[unit], tenths)
    if remainder:
        raise UnitError(f"{text!r} is not a whole number of bytes", hint="use a smaller unit")
    return value


def _decimal(number: str) -> tuple[int, int]:
    """'1.25' -> (125, 100): a decimal as an exact fraction, without the decimal module's import cost."""
    whole, _, fraction = number.partition(".")
    return int(whole + fraction), 10 ** len(fraction)


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


def parse_duration(text: object) -> float:
    """Parse '30s', '5m', '1h30m', '500ms' into seconds."""
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise UnitError(f"expected a duration like '5m', got {_kind(text)}")
    if isinstance(text, (int, float)) or text.strip().isdigit():
        number = str(text).strip()
        raise UnitError(f"a duration needs a unit: {number}", hint=f"write '{number}s' or '{number}m'")
    compact = text.strip()
    parts = _DURATION_PART.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise UnitError(f"not a duration: {text!r}", hint="write e.g. '30s', '5m', '1h', '1m30s'")
    fractions = [_decimal(n) for n, _u in parts]
    common = max(tenths for _digits, tenths in fractions)
    millis = sum(
        digits * (common // tenths) * (1 if unit == "ms" else DURATION_UNITS[unit] * 1000)
        for (digits, tenths), (_n, unit) in zip(fractions, parts, strict=True)
    )
    return millis / (common * 1000)
