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
from dataclasses import dataclass, field
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
# jsonschema takes about 30µs a value on cloud-init's schema: a runcmd of 60,000 lines, which fits in
# a 1MiB spec, would cost 2s. Real user-data holds tens to hundreds of values; one run checks at most
# this many, over all its distinct user-data documents.
CHECK_BUDGET = 10_000
# PyYAML's Python parser, the one cloud-init reads user-data with, takes about 4s a MiB (libyaml,
# which vmctl reads specs with, under 1s). User-data text is read with it up to this much in a run,
# with libyaml past that: EC2 takes at most 16KiB of user-data.
EXACT_READ_BUDGET = 64 * 1024
READ_WITH_LIBYAML = (
    f"user-data text past {EXACT_READ_BUDGET // 1024}KiB in all was read with libyaml, not with the YAML parser"
    " cloud-init uses, which refuses a few things libyaml accepts (a tab inside a value)"
)
TOO_LARGE_TO_CHECK = (
    f"user-data was not checked against cloud-init's schema: the spec's user-data holds more than"
    f" {CHECK_BUDGET:,} values in all, more than vmctl checks in one run (cloud-init checks it when the guest boots)"
)


@dataclass(frozen=True, slots=True)
class UserDataProblem:
    """One thing cloud-init would reject: where inside the user-data document, and what."""

    path: tuple[str | int, ...]
    message: str


@dataclass(slots=True)
class CheckBudget:
    """How much more user-data one run may check as cloud-init would (values against its schema,
    text with its YAML parser), and the documents already checked in it."""

    left: int = CHECK_BUDGET
    checked: set[str] = field(default_factory=set)
    text_left: int = EXACT_READ_BUDGET  # characters of user-data text to read as cloud-init does
    read: set[str] = field(default_factory=set)

    def read_exactly(self, text: str) -> bool:
        """Whether user-data `text` may be read with cloud-init's own (slower) YAML parser."""
        if text in self.read:
            return True
        if len(text) > self.text_left:
            return False
        self.text_left -= len(text)
        self.read.add(text)
        return True

    def spend(self, document: str, values: int) -> bool:
        """Whether `document` (JSON text) may be checked: counted guests share theirs, checked once."""
        if document in self.checked:
            return True
        if values > self.left:
            return False
        self.left -= values
        self.checked.add(document)
        return True


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


def check_user_data(
    data: Any, sensitive: Sequence[str] = (), budget: CheckBudget | None = None
) -> list[UserDataProblem] | str:
    """What cloud-init's schema says about a #cloud-config mapping, or a note saying why it was not
    checked: cloud-init is not here (NOT_CHECKED), or the run's `budget` is spent (TOO_LARGE_TO_CHECK).

    Messages never quote a secret (a password's value, say) or a whole mapping or list.
    """
    path = schema_path()
    if path is None:
        return NOT_CHECKED
    if not isinstance(data, dict):
        return [UserDataProblem((), "#cloud-config must be a mapping of module settings")]
    text = json.dumps(data, sort_keys=True, default=repr)
    if _passed_before(path, text):
        return []
    if budget is not None and not budget.spend(text, _values(data)):
        return TOO_LARGE_TO_CHECK
    problems = list(_checked(path, text, tuple(sensitive)))
    if not problems:
        _PASSED.add((path, text))
        _remember(_valid_marker(path, text))
    return problems


_PASSED: set[tuple[Path, str]] = set()  # in this run: counted guests share their user-data


def _passed_before(path: Path, text: str) -> bool:
    if (path, text) in _PASSED:
        return True
    marker = _valid_marker(path, text)
    if marker is None or not marker.exists():
        return False
    _PASSED.add((path, text))
    return True


@cache  # counted guests share their user-data: each distinct document is checked once per run
def _checked(path: Path, text: str, sensitive: tuple[str, ...]) -> tuple[UserDataProblem, ...]:
    validator = _validator(str(path))
    # Each error is made a problem as it comes: under oneOf, jsonschema's errors hold one more per
    # alternative and item, and a long list of wrong items would hold hundreds of megabytes of them.
    found = [(_sort_key(error), _problem(error, sensitive)) for error in validator.iter_errors(json.loads(text))]
    found.sort(key=lambda pair: pair[0])
    return tuple(dict.fromkeys(problem for _, problem in found))


def _sort_key(error: ValidationError) -> list[str]:
    return [str(p) for p in error.absolute_path]


def _values(data: Any) -> int:
    """How many values `data` holds, itself included."""
    if isinstance(data, dict):
        return 1 + sum(1 + _values(value) for value in data.values())
    if isinstance(data, list):
        return 1 + sum(_values(item) for item in data)
    return 1


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


def _valid_marker(schema: Path, content: str) -> Path | None:
    """A document that passed this schema once (same file, same content) is not checked again."""
    from vmctl.cachedir import cache_dir

    try:
        stat = schema.stat()
    except OSError:
        return None
    key = hashlib.sha256(f"{schema}\0{stat.st_size}\0{stat.st_mtime_ns}\0{content}".encode()).hexdigest()
    return cache_dir() / "valid" / f"cloud-config-{key}"


def _remember(marker: Path | None) -> None:
    if marker is None:
        return
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError:
        pass  # a cache that cannot be written only costs time
