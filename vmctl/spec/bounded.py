"""YAML read with bounds a hostile file cannot get past, and YAML's syntax errors in plain words.

PyYAML's composer, counting as it goes, sits on top of libyaml's scanner and parser (PyYAML's
`CParser`, in pip's wheels), or of PyYAML's pure-Python ones when it was built without libyaml, and
for #cloud-config text, which cloud-init reads with those. The bounds are checked on parser events
as they arrive, before anything recursive runs on the document, so a hostile file costs a located
problem, not minutes, gigabytes or a RecursionError.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent, NodeEvent, ScalarEvent
from yaml.nodes import Node
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"

# A spec nests about 6 levels (guests.web.cloud_init.user_data.write_files[0].content), cloud-config
# mappings a few more. 64 is far beyond that and far below what Python's stack takes: PyYAML's
# composer and constructor, the schema check and vmctl's own walks each recurse once per level.
MAX_DEPTH = 64
# Values in the document once every alias is expanded (each use of an alias copies what it refers to).
# A thousand guests written out take about 18,000; the examples, a few hundred; more guests than
# that are a `count` or a spec of several files. Every value costs time in each stage after the
# reader (about 10us to read it, two or three times that for a guest's to be checked and built), so
# the limit is what keeps any file well under 2s even on a busy machine: a 1MiB file of short lines
# would hold 100,000. An alias bomb (nine aliases nine levels deep expand to 387 million) stops at
# the alias that crosses the limit, before anything is built.
MAX_VALUES = 30_000


class _PythonEvents(Reader, Scanner, Parser):
    """PyYAML's own reader, scanner and parser: events of the same kinds and places as libyaml's,
    about 5x slower, for a few texts libyaml accepts an error instead (a tab inside a value)."""

    def __init__(self, text: str) -> None:
        Reader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)


try:
    from yaml._yaml import CParser as _Events

    LIBYAML = True
except ImportError:  # PyYAML built without libyaml
    _Events = _PythonEvents  # type: ignore[misc,assignment]
    LIBYAML = False


class Limit(Exception):
    """A bound on hostile input was crossed, at `event`."""

    def __init__(self, event: NodeEvent, message: str, hint: str) -> None:
        super().__init__(message)
        mark = event.start_mark
        self.line, self.column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        self.message = message
        self.hint = hint


_DEPTH_HINT = "a spec nests about 10 levels; look for unclosed brackets"
_ALIAS_HINT = "each use of an alias copies everything it refers to, so aliases of aliases multiply"


class _BoundedComposer(Composer):
    """PyYAML's composer, counting as it goes: how deep values nest and how many there are, both
    with every alias expanded as vmctl will expand it. It stops at the first event past a limit,
    before the document is built and while its own recursion is still shallow."""

    def __init__(self) -> None:
        Composer.__init__(self)
        self._depth = 0
        self._values = 0
        self._deepest: list[int] = []  # per node being composed: the deepest level under it so far
        self._anchored: dict[str, tuple[int, int]] = {}  # anchor -> (values, levels) of its node

    peek_event: Callable[[], NodeEvent]  # the parser's, in the loaders below

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            self._expand(event)
            return super().compose_node(parent, index)
        if self._depth >= MAX_DEPTH:
            raise Limit(event, f"values nest more than {MAX_DEPTH} levels deep", _DEPTH_HINT)
        self._count(1, event)
        if event.anchor is None and isinstance(event, ScalarEvent):
            # Most values: straight to PyYAML's scalar node, skipping the bookkeeping a collection needs.
            self._reached(self._depth + 1)
            return self.compose_scalar_node(None)  # type: ignore[arg-type]  # the stub's type is wrong: an anchor
        self._depth += 1
        first = self._values
        self._deepest.append(self._depth)
        node = super().compose_node(parent, index)
        deepest = self._deepest.pop()
        self._depth -= 1
        self._reached(deepest)
        if event.anchor is not None:
            self._anchored[event.anchor] = (self._values - first + 1, deepest - self._depth)
        return node

    def _expand(self, alias: AliasEvent) -> None:
        # An alias to a node still being composed refers to itself: the builder reports it, as one value.
        values, levels = self._anchored.get(alias.anchor or "", (1, 1))
        if self._depth + levels > MAX_DEPTH:
            message = f"this alias makes values nest more than {MAX_DEPTH} levels deep"
            raise Limit(alias, message, _ALIAS_HINT)
        self._count(values, alias)
        self._reached(self._depth + levels)

    def _count(self, values: int, event: NodeEvent) -> None:
        self._values += values
        if self._values <= MAX_VALUES:
            return
        if isinstance(event, AliasEvent):
            message = f"this alias expands the document past {MAX_VALUES:,} values"
            raise Limit(event, message, _ALIAS_HINT)
        hint = "split the spec into several files"
        raise Limit(event, f"the document has more than {MAX_VALUES:,} values", hint)

    def _reached(self, level: int) -> None:
        if self._deepest and level > self._deepest[-1]:
            self._deepest[-1] = level


class TextLoader(_BoundedComposer, _Events, SafeConstructor, Resolver):
    """PyYAML's SafeLoader with the bounded composer: YAML as cloud-init reads it.

    The composer comes first so that its Python compose methods, which count, replace CParser's own.
    """

    def __init__(self, text: str) -> None:
        _Events.__init__(self, text)
        _BoundedComposer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)


class CloudInitLoader(_BoundedComposer, _PythonEvents, SafeConstructor, Resolver):
    """YAML as cloud-init reads user-data in the guest: with PyYAML's Python parser, which refuses a
    few things libyaml accepts (a tab inside a value), and with the same bounds."""

    def __init__(self, text: str) -> None:
        _PythonEvents.__init__(self, text)
        _BoundedComposer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)


class SpecLoader(TextLoader):
    """YAML 1.1 as PyYAML reads it, minus base-60 numbers: an unquoted MAC stays a string."""


SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_INT, _FLOAT)]
    for first, resolvers in Resolver.yaml_implicit_resolvers.items()
}
SpecLoader.add_implicit_resolver(
    _INT,
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)
SpecLoader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def compose(
    loader_class: type[TextLoader | CloudInitLoader], text: str
) -> tuple[Node | None, TextLoader | CloudInitLoader]:
    """The document's root node, and the loader that composed it (which constructs its values).

    Raises Limit past a bound, or PyYAML's error for text that is not YAML.
    """
    loader = loader_class(text)
    try:
        return loader.get_single_node(), loader
    except yaml.MarkedYAMLError as exc:
        if exc.problem != "exceeded maximum nesting depth" or exc.problem_mark is None:
            raise
        # libyaml stops at its own limit, 1,000 levels, when it looks ahead along one line full of
        # brackets before any of them reaches the composer. Up to that point the text nests more than
        # MAX_DEPTH levels, and libyaml reads it to the end: the composer finds the level that crosses.
        loader_class(text[: exc.problem_mark.index]).get_single_node()
        raise  # not reached
    finally:
        loader.dispose()


# -- syntax errors in plain words ------------------------------------------------------------------


class _Mark(Protocol):
    line: int
    column: int
    index: int


@dataclass(frozen=True, slots=True)
class SyntaxProblem:
    """Where a YAML text stops being YAML (1-based), and why."""

    line: int
    column: int
    problem: str  # what is wrong, in plain words
    context: str | None  # what was being read, and from which line ("while parsing a flow sequence at line 8")


def syntax_problem(exc: yaml.MarkedYAMLError, text: str, end: str = "the end of the file") -> SyntaxProblem:
    """`exc` as a located problem. Where libyaml says "did not find expected ','", this says what was
    found instead (as PyYAML's Python parser does), read from the text at the error's mark; `end`
    names the end of the text."""
    mark: _Mark | None = exc.problem_mark or exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    problem = _plain(exc, text, end) if exc.problem else "syntax error"
    context = exc.context
    if context and exc.context_mark and exc.problem_mark and exc.context_mark.line != exc.problem_mark.line:
        context = f"{context} at line {exc.context_mark.line + 1}"
    return SyntaxProblem(line, column, problem, context)


# What was expected, as libyaml says it ("did not find expected key") and as PyYAML's Python parser
# does ("expected <block end>, but found '<block mapping start>'"): what was found instead is then
# read from the text, in the same words for both.
_EXPECTED = (
    re.compile(r"(?:did not|could not) find (?:the )?expected (?P<what>.+)"),
    re.compile(r"expected (?P<what>.+?), but (?:got|found) .+"),
)
# Their names for what they expected, as a reader would put them.
_WANTED = {
    "key": "a key",
    "'-' indicator": "'-'",
    "node content": "a value",
    "the node content": "a value",
    "<block end>": "the end of the block",
    "<document start>": "the end of the document",
    "'<document start>'": "the end of the document",
    "hexdecimal number": "a hexadecimal number",
    "alphabetic or numeric character": "a letter or a digit",
}
# In a block (indented) mapping or list: what each line holds, and how to say that it lines up.
_BLOCK = {
    "while parsing a block mapping": ("a key", "the mapping's keys above are"),
    "while parsing a block collection": ("'-'", "the list's '-' above are"),
}


def _plain(exc: yaml.MarkedYAMLError, text: str, end: str) -> str:
    problem, at = str(exc.problem), exc.problem_mark
    if at is None:
        return problem
    found = _found(text, at.index, end)
    if problem == "found character that cannot start any token" and at.index < len(text):
        return f"found character {text[at.index]!r} that cannot start any token"
    if problem == "found unknown escape character" and at.index + 1 < len(text):
        return f"found unknown escape character {text[at.index + 1]!r}"
    expected = _EXPECTED[0].fullmatch(problem) or _EXPECTED[1].fullmatch(problem)
    if expected is None:
        return problem
    block, opened = _BLOCK.get(exc.context or ""), exc.context_mark
    if block and opened and at.column != opened.column:
        return f"{found} is in column {at.column + 1}, but {block[1]} in column {opened.column + 1}"
    if block and opened:
        return f"expected {block[0]} in column {opened.column + 1}, but found {found}"
    what = expected["what"]
    return f"expected {_WANTED.get(what, what)}, but found {found}"


_WORD = re.compile(r"[^\s,\[\]{}:#]{1,20}")


def _found(text: str, index: int, end: str) -> str:
    """What is at `index` of the text, in a few words: a quoted word or character, or its end."""
    if index >= len(text):
        return end
    char = text[index]
    if char in "\r\n\x85\u2028\u2029":
        return "the end of the line"
    if word := _WORD.match(text, index):
        return repr(word[0])
    return repr(char)
