"""#cloud-config user-data checked against cloud-init's own schema, when cloud-init is installed here.

cloud-init is a system package (Debian's `cloud-init`, under /usr/lib/python3/dist-packages) while vmctl
usually runs in a virtualenv that cannot import it. Its schema, though, is a plain JSON Schema file
(draft 4, every $ref inside the file): vmctl reads that file and validates with its own jsonschema, in
process, as `cloud-init schema` would inside the guest minutes later.
"""

from __future__ import annotations

import glob
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vmctl.cloudinit.diff import is_secret

if TYPE_CHECKING:
    from jsonschema import ValidationError

_SCHEMA = "cloudinit/config/schemas/schema-cloud-config-v1.json"
# Where distributions install cloud-init's Python package (Debian and Ubuntu first, then others).
SEARCH_PATHS: tuple[str, ...] = (
    "/usr/lib/python3/dist-packages",
    "/usr/lib/python3*/site-packages",
    "/usr/lib/python3*/dist-packages",
    "/usr/local/lib/python3*/dist-packages",
)
NOT_CHECKED = (
    "user-data was not checked against cloud-init's schema: cloud-init is not installed on this machine"
    " (Debian: apt install cloud-init)"
)


@dataclass(frozen=True, slots=True)
class UserDataProblem:
    """One thing cloud-init would reject: where inside the user-data document, and what."""

    path: tuple[str | int, ...]
    message: str


def schema_path() -> Path | None:
    """cloud-init's cloud-config schema file, if cloud-init is installed on this machine."""
    return _find_schema(SEARCH_PATHS)


@cache
def _find_schema(search_paths: tuple[str, ...]) -> Path | None:
    """Looked for once per run: every guest's user-data asks."""
    for pattern in search_paths:
        for found in sorted(glob.glob(f"{pattern}/{_SCHEMA}")):
            return Path(found)
    return None


def check_user_data(data: Any, sensitive: Sequence[str] = ()) -> list[UserDataProblem] | None:
    """What cloud-init's schema says about a #cloud-config mapping; None when cloud-init is not here.

    Messages never quote a secret (a password's value, say) or a whole mapping or list.
    """
    path = schema_path()
    if path is None:
        return None
    if not isinstance(data, dict):
        return [UserDataProblem((), "#cloud-config must be a mapping of module settings")]
    # Counted guests share their user-data: each distinct document is checked once per run.
    text = json.dumps(data, sort_keys=True, default=repr)
    return list(_checked(path, text, tuple(sensitive)))


@cache
def _checked(path: Path, text: str, sensitive: tuple[str, ...]) -> tuple[UserDataProblem, ...]:
    data = json.loads(text)
    marker = _valid_marker(path, data)
    if marker is not None and marker.exists():
        return ()
    validator = _validator(str(path))
    errors = sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    problems = [_problem(error, sensitive) for error in errors]
    if not problems and marker is not None:
        _remember(marker)
    return tuple(dict.fromkeys(problems))


@cache
def _validator(path: str) -> Any:
    from jsonschema import Draft4Validator, FormatChecker

    schema = json.loads(Path(path).read_text("utf-8"))
    return Draft4Validator(schema, format_checker=FormatChecker())


def _problem(error: ValidationError, sensitive: tuple[str, ...]) -> UserDataProblem:
    """The deepest error: under oneOf/anyOf, the alternative that got furthest into the value."""
    while error.context:
        deeper = max(error.context, key=lambda e: len(e.absolute_path))
        if len(deeper.absolute_path) <= len(error.absolute_path):
            break
        error = deeper
    path = tuple(error.absolute_path)
    return UserDataProblem(path, _message(error, is_secret(".".join(str(p) for p in path), sensitive)))


def _message(error: ValidationError, secret: bool) -> str:
    value = error.instance
    shown = repr(value) if isinstance(value, (bool, int, float, str)) and len(repr(value)) <= 60 else _kind(value)
    if secret:
        shown = "(sensitive)"
    if error.validator == "type":
        return f"{shown} is not of type {_expected(error.validator_value)}"
    if error.validator in ("oneOf", "anyOf"):
        types = [e.validator_value for e in error.context if e.validator == "type"]
        if types and len(types) == len(error.context):
            return f"{shown} is not of type {', '.join(_expected(t) for t in types)}"
        return f"{shown} is not valid under any of the given schemas"
    if error.validator == "enum":
        return f"{shown} is not one of {_expected(error.validator_value)}"
    if error.validator == "required":
        return str(error.message).replace(repr(value), _kind(value)) if not secret else "a required key is missing"
    if error.validator in ("minItems", "maxItems", "minLength", "maxLength", "minimum", "maximum", "pattern", "format"):
        return f"{shown} does not satisfy {error.validator} {error.validator_value!r}"
    return f"{shown} is not valid here ({error.validator})"


def _expected(wanted: Any) -> str:
    return ", ".join(repr(w) for w in wanted) if isinstance(wanted, list) else repr(wanted)


def _kind(value: object) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"a string of {len(value)} characters"
    return "the value"


def _valid_marker(schema: Path, data: dict[str, Any]) -> Path | None:
    """A document that passed this schema once (same file, same content) is not checked again."""
    from vmctl.cachedir import cache_dir

    try:
        stat = schema.stat()
        content = json.dumps(data, sort_keys=True, default=repr)
    except (OSError, TypeError, ValueError):
        return None
    key = hashlib.sha256(f"{schema}\0{stat.st_size}\0{stat.st_mtime_ns}\0{content}".encode()).hexdigest()
    return cache_dir() / "valid" / f"cloud-config-{key}"


def _remember(marker: Path) -> None:
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError:
        pass  # a cache that cannot be written only costs time
