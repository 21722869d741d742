"""Variables: their declarations in the spec, the values given for them, and those values checked
against their types.

A value comes from, highest precedence first: `--var NAME=VALUE` (the last one given wins),
`--var-file FILE` (later files win), the environment (`VMCTL_VAR_NAME`), then the declaration's
default. Every problem is located: at the declaration, the var file's line, or the `--var`
argument (shown as `--var:N:COL`, the N-th --var and the column within it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from vmctl.cloudinit.diff import SENSITIVE, mask_text
from vmctl.errors import Location, Problem, SpecError
from vmctl.spec.source import SourceDoc, load_yaml, yaml_text_document, yaml_text_problem
from vmctl.units import UnitError, parse_duration, parse_size

ENV_PREFIX = "VMCTL_VAR_"
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class VarType(Enum):
    """What a variable holds; sizes and durations stay text with their unit, as the spec writes them."""

    STRING = "string"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    SIZE = "size"
    DURATION = "duration"
    LIST = "list"
    MAP = "map"


@dataclass(frozen=True, slots=True)
class Declaration:
    """One entry of a spec's `variables:` block."""

    name: str
    type: VarType
    where: Location
    default: Any = None
    has_default: bool = False
    sensitive: bool = False
    description: str = ""
    default_where: Location | None = None


@dataclass(frozen=True, slots=True)
class VarInputs:
    """The values given from outside the spec, as the user typed them."""

    args: tuple[str, ...] = ()  # NAME=VALUE, in the order of the --var options
    files: tuple[str, ...] = ()  # --var-file paths, in order: later files win
    env: Mapping[str, str] = field(default_factory=dict)  # the environment (VMCTL_VAR_NAME=VALUE)


@dataclass(frozen=True, slots=True)
class Variables:
    """The value of every declared variable that has one, and the values that must not be shown."""

    values: Mapping[str, Any]
    declared: Mapping[str, Declaration]
    secrets: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Given:
    """One value from outside the spec: where it was given and what it says."""

    value: Any
    where: Location | None
    label: str  # how the problem's path names it: 'replicas', or 'VMCTL_VAR_replicas' from the environment
    text: bool  # typed as text (--var, environment): parsed by the type; else a YAML value


# -- declarations ---------------------------------------------------------------------------------


def declarations(docs: list[SourceDoc]) -> tuple[dict[str, Declaration], set[str], list[Problem]]:
    """Every well-formed declaration; the names of malformed ones (the schema reports them); problems."""
    found: dict[str, Declaration] = {}
    broken: set[str] = set()
    problems: list[Problem] = []
    for doc in docs:
        block = doc.data.get("variables")
        for name, body in block.items() if isinstance(block, dict) else ():
            declaration = _declaration(doc, str(name), body)
            if declaration is None:
                broken.add(str(name))
            elif name in found:
                first = found[name].where
                message = f"variable '{name}' is declared twice: here and at {first}"
                problems.append(Problem(doc.key_where(("variables", name)), f"variables.{name}", message))
            else:
                found[str(name)] = declaration
    for name, declaration in list(found.items()):
        wrong = _check_default(declaration) if declaration.has_default else []
        if wrong:
            problems.extend(wrong)
            broken.add(name)  # its uses are not reported again
            del found[name]
    return found, broken, problems


def _declaration(doc: SourceDoc, name: str, body: Any) -> Declaration | None:
    if not NAME.match(name) or not isinstance(body, dict) or set(body) - _KEYS:
        return None
    try:
        kind = VarType(body.get("type"))
    except ValueError:
        return None
    if not isinstance(body.get("sensitive", False), bool):
        return None
    return Declaration(
        name,
        kind,
        doc.key_where(("variables", name)),
        body.get("default"),
        "default" in body,
        bool(body.get("sensitive", False)),
        str(body.get("description", "")),
        doc.where(("variables", name, "default")),
    )


_KEYS = {"type", "default", "description", "sensitive"}


def _check_default(declaration: Declaration) -> list[Problem]:
    path = f"variables.{declaration.name}.default"
    if isinstance(declaration.default, str) and "${" in declaration.default:
        message = "a default cannot refer to anything: declarations are not substituted"
        return [Problem(declaration.default_where, path, message, "give the value itself")]
    problem = type_problem(declaration, declaration.default, text=False)
    if problem is None:
        return []
    message, hint = problem
    return [Problem(declaration.default_where, path, f"the default of '{declaration.name}' {message}", hint)]


# -- values ---------------------------------------------------------------------------------------


def resolve(
    declared: Mapping[str, Declaration], broken: set[str], inputs: VarInputs
) -> tuple[Variables, list[Problem]]:
    """Each declared variable's value by precedence, checked against its type; every problem at once."""
    problems: list[Problem] = []
    given: dict[str, _Given] = {}
    for name in declared:
        if ENV_PREFIX + name in inputs.env:
            given[name] = _Given(inputs.env[ENV_PREFIX + name], None, ENV_PREFIX + name, True)
    for path in inputs.files:
        given.update(_from_file(path, declared, broken, problems))
    for index, arg in enumerate(inputs.args, start=1):
        found = _from_arg(index, arg, declared, broken, problems)
        if found is not None:
            given[found[0]] = found[1]
    values: dict[str, Any] = {}
    for name, declaration in declared.items():
        value = _value_of(declaration, given.get(name), problems)
        if value is not _MISSING:
            values[name] = value
    secrets = tuple(sorted({s for n, v in values.items() if declared[n].sensitive for s in _texts(v)}, key=len)[::-1])
    return Variables(values, declared, secrets), problems


_MISSING = object()


def _value_of(declaration: Declaration, given: _Given | None, problems: list[Problem]) -> Any:
    if given is None:
        if declaration.has_default:
            return declaration.default
        how = f"give it with --var {declaration.name}=VALUE, a --var-file, or {ENV_PREFIX}{declaration.name}"
        message = f"variable '{declaration.name}' has no value"
        problems.append(Problem(declaration.where, f"variables.{declaration.name}", message, how))
        return _MISSING
    value = given.value
    if given.text:
        value = _parse_text(declaration.type, value)
    problem = type_problem(declaration, value, text=given.text)
    if problem is None:
        return value
    wrong, hint = problem
    problems.append(Problem(given.where, given.label, wrong, hint))
    return _MISSING


def _from_file(
    path: str, declared: Mapping[str, Declaration], broken: set[str], problems: list[Problem]
) -> dict[str, _Given]:
    try:
        doc = load_yaml(Path(path), path)
    except SpecError as exc:
        problems.extend(exc.problems)
        return {}
    problems.extend(doc.problems)
    found: dict[str, _Given] = {}
    for name, value in doc.data.items():
        if name in broken:
            continue
        if name not in declared:
            problems.append(_unknown(name, declared, doc.key_where((name,)), name))
            continue
        found[name] = _Given(value, doc.where((name,)), name, False)
    return found


def _from_arg(
    index: int, arg: str, declared: Mapping[str, Declaration], broken: set[str], problems: list[Problem]
) -> tuple[str, _Given] | None:
    name, equals, text = arg.partition("=")
    if not equals:
        hint = "write --var NAME=VALUE"
        problems.append(Problem(Location("--var", index, 1), "", f"expected NAME=VALUE, got {arg!r}", hint))
        return None
    if name in broken:
        return None
    if name not in declared:
        problems.append(_unknown(name, declared, Location("--var", index, 1), name))
        return None
    return name, _Given(text, Location("--var", index, len(name) + 2), name, True)


def _unknown(name: str, declared: Mapping[str, Declaration], where: Location, label: str) -> Problem:
    import difflib

    close = difflib.get_close_matches(name, list(declared), n=1)
    hint = f"did you mean '{close[0]}'?" if close else "declare it under 'variables:'"
    return Problem(where, label, f"no variable named '{name}' is declared", hint)


def _parse_text(kind: VarType, text: str) -> Any:
    """A value typed on the command line or in the environment, read as its type reads text."""
    if kind is VarType.INTEGER and re.fullmatch(r"[-+]?[0-9]+", text.strip()):
        return int(text)
    if kind is VarType.BOOLEAN and text.strip().lower() in _BOOLEANS:
        return _BOOLEANS[text.strip().lower()]
    if kind in (VarType.LIST, VarType.MAP) and yaml_text_problem(text) is None:
        return yaml_text_document(text, "")[0]  # read with a spec file's bounds: it can be as hostile
    return text


_BOOLEANS = {"true": True, "false": False, "yes": True, "no": False, "on": True, "off": False, "1": True, "0": False}
_EXAMPLES = {
    VarType.STRING: "a string",
    VarType.INTEGER: "a whole number",
    VarType.BOOLEAN: "true or false",
    VarType.SIZE: "a size like 2GiB",
    VarType.DURATION: "a duration like 5m",
    VarType.LIST: "a list, like [a, b]",
    VarType.MAP: "a mapping, like {a: 1}",
}


def type_problem(declaration: Declaration, value: Any, text: bool) -> tuple[str, str | None] | None:
    """Why `value` is not of the variable's type (message, hint), or None. A sensitive value is never shown."""
    kind = declaration.type
    shown = SENSITIVE if declaration.sensitive else _shown(value)
    wanted = f"must be {_EXAMPLES[kind]}, got {shown}"
    if kind is VarType.STRING:
        return None if isinstance(value, str) else (wanted, "quote it" if not text else None)
    if kind is VarType.INTEGER:
        return None if isinstance(value, int) and not isinstance(value, bool) else (wanted, None)
    if kind is VarType.BOOLEAN:
        return None if isinstance(value, bool) else (wanted, None)
    if kind is VarType.LIST:
        return None if isinstance(value, list) else (wanted, "in YAML: [a, b]")
    if kind is VarType.MAP:
        return None if isinstance(value, dict) else (wanted, "in YAML: {key: value}")
    parse = parse_size if kind is VarType.SIZE else parse_duration
    if not isinstance(value, str):
        return wanted, None
    try:
        parse(value)
    except UnitError as exc:
        message = f"must be {_EXAMPLES[kind]}: {exc}" if not declaration.sensitive else wanted
        return message, exc.hint
    return None


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:36] + "…")
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "nothing (null)" if value is None else type(value).__name__


def _texts(value: Any) -> list[str]:
    """The text of a value as it can appear anywhere: every scalar in it, as a string."""
    if isinstance(value, dict):
        return [t for v in value.values() for t in _texts(v)]
    if isinstance(value, list):
        return [t for v in value for t in _texts(v)]
    if value is None or isinstance(value, bool):
        return []
    text = str(value)
    return [text] if text else []


def mask_problems(problems: list[Problem], secrets: tuple[str, ...]) -> list[Problem]:
    if not secrets:
        return problems
    return [
        Problem(p.location, p.path, mask_text(p.message, secrets), p.hint and mask_text(p.hint, secrets))
        for p in problems
    ]
