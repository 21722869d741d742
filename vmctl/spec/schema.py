"""The spec's JSON Schema, and its validation errors turned into located, readable problems."""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Collection, Iterator
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import vmctl
import vmctl.schemas
from vmctl.errors import Problem
from vmctl.spec.source import NodePath, SourceDoc, character, dotted
from vmctl.spec.templates import has_guest_ref
from vmctl.units import UnitError, parse_duration, parse_size

if TYPE_CHECKING:
    from jsonschema import ValidationError

_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "null": "nothing",
}


def schema_file(name: str) -> Path:
    """A published JSON Schema (schemas/NAME), found as the vmctl.schemas package's data: installed, the
    wheel carries it there; in a checkout, vmctl/schemas is a link to the top-level schemas/.

    The package's directory, not importlib.resources: that would load tempfile and zipfile on every
    run, and vmctl is never imported from a zip (libvirt-python is a C extension).
    """
    return Path(next(iter(vmctl.schemas.__path__))) / name


@cache
def schema_text() -> str:
    """The spec's schema as published (schemas/vmctl.schema.json)."""
    return schema_file("vmctl.schema.json").read_text("utf-8")


@cache
def schema() -> dict[str, Any]:
    """The schema vmctl checks specs with: the published one without its `${...}` alternatives.

    The published schema lets any value be a reference, so an editor accepts `memory: ${var.m}`;
    vmctl checks each document once its references are substituted, against the types themselves.
    """
    loaded: dict[str, Any] = _strict(json.loads(schema_text()))
    return loaded


_REFERENCE = {"$ref": "#/$defs/reference"}
# Keywords that only describe: a $ref whose siblings are all of these means just what it refers to.
_ANNOTATIONS = frozenset({"description", "default", "title", "examples", "markdownDescription", "deprecated"})


def _strict(node: Any) -> Any:
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    alternatives = node.get("anyOf")
    if isinstance(alternatives, list) and len(alternatives) == 2 and alternatives[1] == _REFERENCE:
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        return _strict({**rest, **alternatives[0]})
    return {key: _strict(value) for key, value in node.items()}


@cache
def _checked_schema() -> dict[str, Any]:
    """schema() with each `$ref` to one of its `$defs` replaced by the definition itself. jsonschema
    looks a reference up each time it follows one, once per guest and field: half its time on a spec
    of a thousand guests. Errors still carry the definition as their schema."""
    strict = schema()
    inlined: dict[str, Any] = _inline(strict, strict["$defs"], ())
    return inlined


def _inline(node: Any, defs: dict[str, Any], within: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [_inline(item, defs, within) for item in node]
    if not isinstance(node, dict):
        return node
    name = str(node.get("$ref", "")).removeprefix("#/$defs/")
    if name in defs and name not in within and set(node) - {"$ref"} <= _ANNOTATIONS:
        return _inline(defs[name], defs, (*within, name))
    return {key: _inline(value, defs, within) for key, value in node.items()}


# Pattern rules people can read, for patterns whose description is about something else.
_PATTERN_RULES = {
    "mac": "six pairs of hex digits separated by ':', like 52:54:00:12:34:56",
    "url": "an http://, https:// or file:// URL",
    "sha256": "64 hex digits",
    "ipv4": "an address and prefix, like 198.51.100.1/24",
    "address": "an IPv4 address, like 198.51.100.20",
    "bridge": "a host bridge name: letters, digits, '.', '_', ':' or '-', at most 15 characters",
    "source": "an absolute directory on the hypervisor host",
    "path": "an absolute directory on the hypervisor host",
}


@cache
def _validator_class() -> Any:
    """Draft 2020-12, except that a pattern's '$' does not accept a trailing newline (Python's re does)."""
    import re

    from jsonschema import Draft202012Validator, ValidationError, validators

    def pattern(validator: Any, regex: str, instance: Any, schema: Any) -> Any:
        if not validator.is_type(instance, "string"):
            return
        if not re.search(regex, instance) or (regex.endswith("$") and instance.endswith("\n")):
            yield ValidationError(f"{instance!r} does not match {regex!r}")

    return validators.extend(Draft202012Validator, {"pattern": pattern})  # type: ignore[no-untyped-call]


def check_document(doc: SourceDoc, quiet: Collection[str] = (), cache: bool = True) -> list[Problem]:
    """Every schema violation in one spec file, each at the line of the offending node.

    Values the YAML reader already reported (an unknown tag, say), and `quiet` paths (reported
    elsewhere), are not reported again; values that refer to the guest are checked per instance
    (`check_guest`). A document that passed before (same content, same schema) is not checked again:
    that keeps jsonschema out of every run that changes nothing in the spec. Not with `cache` off
    (the content holds sensitive values: not even a digest of it is written).
    """
    unwritable = [Problem(doc.where(path), dotted(path), message, hint) for path, message, hint in _not_xml(doc.data)]
    marker = _valid_marker(doc) if cache else None
    if marker is not None and marker.exists():
        return unwritable
    validator = _validator_class()(_checked_schema())
    already = {p.path for p in doc.problems} | set(quiet)
    problems: list[Problem] = []
    for error in validator.iter_errors(doc.data):
        if has_guest_ref(error.instance):
            continue
        problems.extend(p for p in _problems_for(error, doc) if p.path not in already)
    if not problems and marker is not None:
        _remember_valid(marker)
    return unwritable + problems


def check_guest(data: dict[str, Any]) -> list[tuple[NodePath, str, str | None]]:
    """Schema violations of one guest instance's values (its body over the defaults, substituted):
    (path under the guest, message, hint)."""
    checked = _checked_schema()
    validator = _validator_class()({**checked["$defs"]["guest"], "$defs": checked["$defs"]})
    found = []
    for error in validator.iter_errors(data):
        path: NodePath = tuple(error.absolute_path)
        if error.validator == "additionalProperties":
            continue  # unknown keys are reported where they are written, by the document's check
        message, hint = _describe(error)
        found.append((path, message, hint))
    return found


# What XML 1.0 cannot hold. The values of these sections end up in libvirt's definitions, which are
# XML, and YAML's escapes ("\x1b", say) can write any character. cloud-init content is kept as JSON,
# which escapes them. Checked once per document, variables substituted: what a guest instance adds
# (its name, its index) cannot hold such a character.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_WRITTEN_TO_XML = ("pools", "networks", "defaults", "guests")


def _not_xml(data: object) -> Iterator[tuple[NodePath, str, str | None]]:
    if isinstance(data, dict):
        for section in _WRITTEN_TO_XML:
            yield from _not_xml_under(data.get(section), (section,))


def _not_xml_under(node: object, path: NodePath) -> Iterator[tuple[NodePath, str, str | None]]:
    """(path, message, hint) for every string (outside cloud-init content) that XML cannot hold."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key != "cloud_init":
                yield from _not_xml_under(value, (*path, key))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _not_xml_under(item, (*path, index))
    elif isinstance(node, str) and (bad := _NOT_XML.search(node)):
        message = f"{character(bad[0])} cannot be written to libvirt's XML"
        yield path, message, "remove it: only cloud-init content may hold control characters"


def _valid_marker(doc: SourceDoc) -> Path | None:
    from vmctl.cachedir import cache_dir

    try:
        content = json.dumps(doc.data, sort_keys=True, default=repr)
    except (TypeError, ValueError):
        return None
    # The version too: a release can add checks in code that the schema text does not show.
    key = hashlib.sha256(f"{vmctl.__version__}\0{schema_text()}\0{content}".encode()).hexdigest()
    return cache_dir() / "valid" / key


def _remember_valid(marker: Path) -> None:
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError:
        pass  # a cache that cannot be written only costs time


def _subschema(error: ValidationError) -> dict[str, Any]:
    return error.schema if isinstance(error.schema, dict) else {}


def _missing_key(error: ValidationError) -> str:
    return str(error.message).split("'")[1] if "'" in error.message else str(error.message)


def _problems_for(error: ValidationError, doc: SourceDoc) -> list[Problem]:
    path: NodePath = tuple(error.absolute_path)
    if error.validator == "required" and not path:
        missing = _missing_key(error)
        return [Problem(doc.where(()), missing, f"missing required key '{missing}'", None)]
    if "propertyNames" in error.relative_schema_path:
        return [_bad_name(error, doc, path)]
    if error.validator == "additionalProperties":
        return _unknown_keys(error, doc, path)
    message, hint = _describe(error)
    return [Problem(doc.where(path), dotted(path), message, hint)]


def _bad_name(error: ValidationError, doc: SourceDoc, path: NodePath) -> Problem:
    name = str(error.instance)
    rule = _subschema(error).get("description", "not a valid name")
    return Problem(doc.key_where((*path, name)), dotted((*path, name)), f"invalid name {name!r}: {rule}")


def _unknown_keys(error: ValidationError, doc: SourceDoc, path: NodePath) -> list[Problem]:
    allowed = sorted(_subschema(error).get("properties", {}))
    instance = error.instance if isinstance(error.instance, dict) else {}
    problems = []
    for key in (k for k in instance if k not in allowed):
        problems.append(
            Problem(doc.key_where((*path, key)), dotted((*path, key)), f"unknown key '{key}'", _suggest(key, allowed))
        )
    return problems


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    return "allowed keys: " + ", ".join(choices) if choices else "no keys are allowed here"


def _describe(error: ValidationError) -> tuple[str, str | None]:
    defs = schema()["$defs"]
    if _subschema(error) == defs["size"]:
        return _unit_message(parse_size, error.instance)
    if _subschema(error) == defs["duration"]:
        return _unit_message(parse_duration, error.instance)
    return _generic_message(error)


def _unit_message(parser: Any, value: object) -> tuple[str, str | None]:
    try:
        parser(value)
    except UnitError as exc:
        return str(exc), exc.hint
    return f"invalid value {value!r}", None  # pragma: no cover - schema and parser agree


def _generic_message(error: ValidationError) -> tuple[str, str | None]:
    kind = error.validator
    value = error.instance
    if kind == "type":
        wanted: Any = error.validator_value
        names = [wanted] if isinstance(wanted, str) else list(wanted)
        hint = "quote it" if isinstance(value, (int, float)) and "string" in names else None
        return f"expected {' or '.join(_TYPE_NAMES[n] for n in names)}, got {_kind_of(value)}", hint
    if kind == "enum":
        allowed: Any = error.validator_value
        choices = [str(c) for c in allowed]
        close = difflib.get_close_matches(str(value), choices, n=1)
        hint = f"did you mean '{close[0]}'?" if close else None
        return f"must be one of {', '.join(choices)}; got {value!r}", hint
    if kind == "const":
        return f"must be {error.validator_value!r}; got {value!r}", None
    if kind == "required":
        return f"missing required key '{_missing_key(error)}'", None
    if kind == "pattern":
        field = str(error.absolute_path[-1]) if error.absolute_path else ""
        if field == "ipv4" and "nics" in error.absolute_path:
            field = "address"
        rule = _PATTERN_RULES.get(field) or _subschema(error).get("description")
        return f"invalid value {value!r}" + (f": {rule}" if rule else ""), None
    if kind in ("minimum", "maximum"):
        word = "at least" if kind == "minimum" else "at most"
        bounds = _subschema(error)
        low, high = bounds.get("minimum"), bounds.get("maximum")
        within = f"give a value from {low} to {high}" if low is not None and high is not None else None
        return f"must be {word} {error.validator_value}; got {value!r}", within
    if kind == "minLength":
        return "must not be empty", None
    return error.message, None


def _kind_of(value: object) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__
