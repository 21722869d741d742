"""`${...}` references in a spec's values, substituted on the located tree so every problem keeps
the file, line and column of the reference.

A value that is one reference and nothing else takes the referred value with its type (an integer
stays an integer, a list a list); a reference inside a longer string is substituted as text. `$${`
writes a literal `${`. References to the guest (`${guest.name}`, `${guest.index}`) differ per
instance of a counted guest: strings holding one are left as written here and substituted when each
instance is built (`for_guest`).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from vmctl.errors import Location, Problem
from vmctl.spec.source import NodePath, SourceDoc, dotted
from vmctl.spec.variables import Variables

_TOKEN = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_VAR = re.compile(r"^var\.([A-Za-z_][A-Za-z0-9_]*)$")
GUEST_REFS = ("guest.name", "guest.index")
_GUEST_SCOPED = ("guests", "defaults")  # top-level sections whose values may refer to the guest
_NOT_SUBSTITUTED = ("variables", "version")


@dataclass(frozen=True, slots=True)
class Scope:
    """What references can refer to."""

    variables: Variables
    quiet: frozenset[str] = frozenset()  # variables whose problem is reported elsewhere: no second one
    workspace: str = "default"
    project: str | None = None
    guest: tuple[str, int] | None = None  # the instance's name and its position under count (from 1)

    def for_guest(self, name: str, index: int) -> Scope:
        return replace(self, guest=(name, index))


@dataclass(frozen=True, slots=True)
class _Ref:
    text: str  # what is between the braces
    start: int  # index of '$' in the scalar


@dataclass
class Substituted:
    """One document after substitution: its problems, and the paths left alone because of them."""

    doc: SourceDoc
    problems: list[Problem] = field(default_factory=list)
    quiet: set[str] = field(default_factory=set)  # dotted paths not to check further


def _tokens(text: str) -> Iterator[tuple[str, _Ref | None]]:
    """Literal pieces and references, in order; an unclosed '${' is a reference with text None-like ''."""
    last = 0
    for match in _TOKEN.finditer(text):
        if match.start() > last:
            yield text[last : match.start()], None
        token = match.group(0)
        if token == "$${":
            yield "${", None
        elif match.group(1) is None:
            yield "", _Ref("\0", match.start())  # '${' with no closing brace
        else:
            yield "", _Ref(match.group(1).strip(), match.start())
        last = match.end()
    if last < len(text):
        yield text[last:], None


def has_guest_ref(value: Any) -> bool:
    """The value (or anything in it) refers to the guest, so it is substituted per instance."""
    if isinstance(value, dict):
        return any(has_guest_ref(v) for v in value.values())
    if isinstance(value, list):
        return any(has_guest_ref(v) for v in value)
    return isinstance(value, str) and "${" in value and any(r and r.text in GUEST_REFS for _, r in _tokens(value))


def substitute_doc(doc: SourceDoc, scope: Scope) -> Substituted:
    """The document with every reference it can resolve substituted; guest references left as written."""
    out = Substituted(doc)
    data = {
        key: value if key in _NOT_SUBSTITUTED else _walk(doc, (key,), value, _for_key(key, scope), out)
        for key, value in doc.data.items()
    }
    out.doc = replace(doc, data=data)
    return out


def _for_key(key: str, scope: Scope) -> Scope:
    """`${project}` means the project everywhere but in the project itself."""
    return replace(scope, project=None) if key == "project" else scope


def _walk(doc: SourceDoc, path: NodePath, value: Any, scope: Scope, out: Substituted) -> Any:
    if isinstance(value, dict):
        return {k: _walk(doc, (*path, k), v, scope, out) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(doc, (*path, i), v, scope, out) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value
    return _scalar(doc, path, value, scope, out)


def _scalar(doc: SourceDoc, path: NodePath, text: str, scope: Scope, out: Substituted) -> Any:
    tokens = list(_tokens(text))
    whole = len(tokens) == 1 and tokens[0][1] is not None
    found = 0
    quiet = False
    for _literal, ref in tokens:
        if ref is None:
            continue
        problem, silent = _check(ref, whole, path, scope)
        if problem:
            found += 1
            out.problems.append(Problem(_at(doc, path, ref), dotted(path), *problem))
        quiet = quiet or silent
    if found or quiet:
        out.quiet.add(dotted(path))
        return text
    if any(ref and ref.text in GUEST_REFS for _, ref in tokens) and scope.guest is None:
        return text  # substituted for each instance of the guest
    return render(tokens, scope)


def _at(doc: SourceDoc, path: NodePath, ref: _Ref) -> Location:
    where = doc.where(path)
    offset = doc.offsets.get(path)
    return where if offset is None else Location(where.file, where.line, where.column + offset + ref.start)


def _check(ref: _Ref, whole: bool, path: NodePath, scope: Scope) -> tuple[tuple[str, str | None] | None, bool]:
    """(message, hint) of what is wrong with one reference, and whether it is quietly left alone."""
    text = ref.text
    if text == "\0":
        return ("'${' is not closed with '}'", "write $${ for a literal '${'"), False
    if text in ("workspace",):
        return None, False
    if text == "project":
        if scope.project is None:
            return ("the project cannot refer to itself", None), False
        return None, False
    if text in GUEST_REFS:
        if path[0] not in _GUEST_SCOPED or len(path) < 2:
            return (f"${{{text}}} is only known inside a guest (or defaults)", None), False
        if path[-1] == "count" and len(path) == (3 if path[0] == "guests" else 2):
            return ("count cannot refer to the guest: the instances come from it", None), False
        return None, False
    match = _VAR.match(text)
    if not match:
        hint = "references are ${var.NAME}, ${workspace}, ${project}, ${guest.name} and ${guest.index}"
        return (f"unknown reference '${{{text}}}'", hint), False
    return _check_var(match.group(1), whole, scope)


def _check_var(name: str, whole: bool, scope: Scope) -> tuple[tuple[str, str | None] | None, bool]:
    declared = scope.variables.declared
    if name in scope.quiet or (name in declared and name not in scope.variables.values):
        return None, True  # its declaration or its missing value is reported where it is declared
    if name not in declared:
        import difflib

        close = difflib.get_close_matches(name, list(declared), n=1)
        hint = f"did you mean '{close[0]}'?" if close else "declare it under 'variables:'"
        return (f"no variable named '{name}' is declared", hint), False
    value = scope.variables.values[name]
    if not whole and isinstance(value, (list, dict)):
        kind = "list" if isinstance(value, list) else "map"
        hint = "a list or map variable can only be a whole value: key: ${var.NAME}"
        return (f"variable '{name}' is a {kind}: it cannot be part of a string", hint), False
    return None, False


def render(tokens: list[tuple[str, _Ref | None]], scope: Scope) -> Any:
    """The value of checked tokens: one reference alone keeps its type, anything else is text."""
    if len(tokens) == 1 and tokens[0][1] is not None:
        return copy.deepcopy(_value(tokens[0][1], scope))
    return "".join(literal if ref is None else _text(_value(ref, scope)) for literal, ref in tokens)


def _value(ref: _Ref, scope: Scope) -> Any:
    if ref.text == "workspace":
        return scope.workspace
    if ref.text == "project":
        return scope.project
    if ref.text in GUEST_REFS:
        assert scope.guest is not None
        return scope.guest[0] if ref.text == "guest.name" else scope.guest[1]
    return scope.variables.values[ref.text.removeprefix("var.")]


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def substitute_guest(value: Any, scope: Scope) -> Any:
    """A guest's (already checked) values with the references left for it substituted."""
    if isinstance(value, dict):
        return {k: substitute_guest(v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute_guest(v, scope) for v in value]
    if isinstance(value, str) and "${" in value and has_guest_ref(value):
        return render(list(_tokens(value)), scope)
    return value
