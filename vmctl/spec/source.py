"""Read a YAML spec file into plain data, remembering where every key and value came from.

Files anyone could write are bounded before anything recursive runs on them: the file's size here,
how deep its values nest and how far its aliases expand while the document is composed (bounded.py),
so a hostile file costs a located problem, not minutes, gigabytes or a RecursionError.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from vmctl.errors import Location, Problem, SpecError
from vmctl.spec.bounded import CloudInitLoader, Limit, SpecLoader, TextLoader, compose, syntax_problem
from vmctl.units import format_size

NodePath = tuple[str | int, ...]
_STR = "tag:yaml.org,2002:str"
# The largest example spec is 1.5KiB and a thousand guests written out one by one take about 150KiB;
# 1MiB leaves room for inline cloud-init and reads in well under a second with libyaml (about 4s with
# PyYAML's pure-Python scanner). Larger content belongs in user_data_file.
MAX_FILE_SIZE = 1024**2
# What PyYAML's reader refuses, found here first so the problem has a line and column.
_NOT_PRINTABLE = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Byte-order marks, longest first: UTF-32-LE's starts with UTF-16-LE's.
_BOMS = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)


@dataclass(frozen=True, slots=True)
class SourceDoc:
    """One parsed spec file: its data, and the position of each value and key by path."""

    file: str
    base_dir: Path
    data: dict[str, Any]
    values: Mapping[NodePath, Location] = field(repr=False)
    keys: Mapping[NodePath, Location] = field(repr=False)
    problems: tuple[Problem, ...] = ()  # found while reading but not fatal (duplicate keys)
    # Columns from a scalar's position to its text (1 past a quote), for scalars on one line only:
    # a reference inside the text is reported at its own column.
    offsets: Mapping[NodePath, int] = field(default_factory=dict, repr=False)

    def where(self, path: NodePath) -> Location:
        """Position of the value at `path`, or of its nearest ancestor that exists."""
        for depth in range(len(path), -1, -1):
            found = self.values.get(path[:depth])
            if found:
                return found
        return Location(self.file, 1, 1)

    def key_where(self, path: NodePath) -> Location:
        """Position of the key naming `path` (where an unknown key is best reported)."""
        return self.keys.get(path) or self.where(path)


def load_yaml(path: Path, display: str) -> SourceDoc:
    """Parse `path` as one YAML mapping; raise SpecError with every problem found."""
    text = _read_text(path, display)
    try:
        root, loader = compose(SpecLoader, text)
    except Limit as exc:
        raise SpecError([Problem(Location(display, exc.line, exc.column), "", exc.message, exc.hint)]) from None
    except yaml.MarkedYAMLError as exc:
        raise SpecError([_yaml_problem(display, exc, text)]) from None
    except yaml.YAMLError as exc:
        raise SpecError([Problem(Location(display, 1, 1), "", f"invalid YAML: {exc}")]) from None
    if root is None:
        raise SpecError([Problem(Location(display, 1, 1), "", "the file is empty", "a spec starts with 'version: 1'")])
    builder = _Builder(display, loader)
    data = builder.build(root, ())
    if not isinstance(data, dict):
        message = "the top level must be a mapping of keys, like 'version: 1'"
        raise SpecError([*builder.problems, Problem(builder.values[()], "", message)])
    problems = tuple(builder.problems)
    return SourceDoc(display, path.parent, data, builder.values, builder.keys, problems, builder.offsets)


def yaml_text_problem(text: str, as_cloud_init: bool = False) -> str | None:
    """Why `text` (YAML inside a spec, such as #cloud-config user-data) cannot be read, or None:
    by libyaml, or `as_cloud_init` reads it (PyYAML's Python parser, about five times slower).

    The same bounds as for a spec file apply; lines are the text's own.
    """
    if bad := _NOT_PRINTABLE.search(text):
        return f"{character(bad[0])} is not allowed in YAML (its line {text.count(chr(10), 0, bad.start()) + 1})"
    try:
        root, loader = compose(CloudInitLoader if as_cloud_init else TextLoader, text)
        if root is not None:
            loader.construct_document(root)
    except Limit as exc:
        return f"{exc.message} (its line {exc.line})"
    except yaml.MarkedYAMLError as exc:
        found = syntax_problem(exc, text, "the end of the text")
        return f"{found.problem} (its line {found.line})"
    except yaml.YAMLError as exc:
        return str(exc)
    except (ValueError, OverflowError) as exc:  # a date that is no date, an integer too long to convert
        return f"a value cannot be read: {exc}"
    return None


def yaml_text_document(text: str, display: str, as_cloud_init: bool = False) -> tuple[Any, Mapping[NodePath, Location]]:
    """YAML text that `yaml_text_problem` passed, as data with the position of each value in it."""
    root, loader = compose(CloudInitLoader if as_cloud_init else TextLoader, text)
    if root is None:
        return None, {}
    builder = _Builder(display, loader)
    return builder.build(root, ()), builder.values


def _read_text(path: Path, display: str) -> str:
    """The file's text: UTF-8 (a byte-order mark is allowed), or UTF-16/32 that starts with one."""
    raw = _read_bytes(path, display)
    bom, encoding = next(((mark, name) for mark, name in _BOMS if raw.startswith(mark)), (b"", None))
    if encoding is None and b"\0" in raw[:8192]:
        hint = "if it is text, save it as UTF-8"
        raise SpecError([Problem(Location(display, 1, 1), "", "this is a binary file, not a YAML spec", hint)])
    body = raw[len(bom) :]
    try:
        text = body.decode(encoding or "utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError([_undecodable(display, body, exc.start, encoding)]) from None
    if bad := _NOT_PRINTABLE.search(text):
        where = _text_at(display, text, bad.start())
        hint = "in a double-quoted string, write it as an escape such as \\x07"
        raise SpecError([Problem(where, "", f"invalid YAML: {character(bad[0])} is not allowed", hint)])
    return text


def _read_bytes(path: Path, display: str) -> bytes:
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_FILE_SIZE + 1)
            size = os.fstat(file.fileno()).st_size
    except FileNotFoundError:
        raise SpecError([Problem(None, "", f"{display}: no such file")]) from None
    except IsADirectoryError:
        raise SpecError([Problem(None, "", f"{display}: is a directory, not a file")]) from None
    except OSError as exc:
        raise SpecError([Problem(None, "", f"{display}: cannot read: {exc.strerror}")]) from None
    if len(raw) > MAX_FILE_SIZE:
        this = f"this one is {size:,} bytes" if size > MAX_FILE_SIZE else "this one is larger"
        message = f"a spec file may be at most {format_size(MAX_FILE_SIZE)} ({MAX_FILE_SIZE:,} bytes): {this}"
        hint = (
            "split it into several files (a directory of them is one spec); long cloud-init text goes in user_data_file"
        )
        raise SpecError([Problem(Location(display, 1, 1), "", message, hint)])
    return raw


def _undecodable(display: str, body: bytes, start: int, encoding: str | None) -> Problem:
    before = body[:start].decode(encoding or "utf-8", "replace")
    where = _text_at(display, before, len(before))
    if encoding is None:
        return Problem(where, "", "not UTF-8 text: save it as UTF-8")
    name = encoding.upper().removesuffix("-LE").removesuffix("-BE")
    return Problem(where, "", f"not {name} text, though it starts with a {name} byte-order mark: save it as UTF-8")


def character(char: str) -> str:
    """How a problem names one character: its code point."""
    return f"the character U+{ord(char):04X}"


def _text_at(display: str, text: str, index: int) -> Location:
    line_start = text.rfind("\n", 0, index) + 1
    return Location(display, text.count("\n", 0, index) + 1, index - line_start + 1)


def _yaml_problem(display: str, exc: yaml.MarkedYAMLError, text: str = "") -> Problem:
    found = syntax_problem(exc, text)
    what = f"{found.problem} ({found.context})" if found.context else found.problem
    return Problem(Location(display, found.line, found.column), "", f"invalid YAML: {what}")


class _Builder:
    """Turns composed YAML nodes into dicts/lists/scalars, recording positions on the way."""

    def __init__(self, display: str, loader: TextLoader | CloudInitLoader) -> None:
        self.display = display
        self.loader = loader
        self.values: dict[NodePath, Location] = {}
        self.keys: dict[NodePath, Location] = {}
        self.offsets: dict[NodePath, int] = {}
        self.problems: list[Problem] = []
        self._active: set[int] = set()

    def at(self, node: Node) -> Location:
        return Location(self.display, node.start_mark.line + 1, node.start_mark.column + 1)

    def build(self, node: Node, path: NodePath) -> Any:
        self.values[path] = self.at(node)
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        if id(node) in self._active:  # a collection that holds itself, through an alias
            self.problems.append(Problem(self.at(node), dotted(path), "an alias refers to itself"))
            return None
        self._active.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        finally:
            self._active.discard(id(node))

    def _scalar(self, node: ScalarNode, path: NodePath) -> Any:
        # A plain scalar's style is None from PyYAML's parser and "" from libyaml's.
        if node.style in (None, "", "'", '"') and node.start_mark.line == node.end_mark.line:
            self.offsets[path] = 1 if node.style else 0
        if node.tag == _STR:  # most values: what the constructor would return, without its bookkeeping
            return node.value
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as exc:
            self.problems.append(Problem(self.at(node), dotted(path), f"invalid value: {exc.problem}"))
        except (ValueError, OverflowError):
            self.problems.append(self._unreadable(node, path))
        return None

    def _unreadable(self, node: Node, path: NodePath) -> Problem:
        """What the resolver took for a date or a number but is none: 2024-13-01, or an integer
        longer than Python converts (4,300 digits)."""
        text = str(node.value)
        shown = text if len(text) <= 24 else text[:20] + "…"
        if str(node.tag).endswith(":timestamp"):
            return Problem(self.at(node), dotted(path), f"{shown!r} is not a date", "quote it to keep it as text")
        return Problem(self.at(node), dotted(path), f"{shown!r} has too many digits to be a number")

    def _mapping(self, node: MappingNode, path: NodePath) -> dict[str, Any]:
        self._check_duplicates(node, path)
        try:
            self.loader.flatten_mapping(node)
        except yaml.MarkedYAMLError as exc:
            self.problems.append(_yaml_problem(self.display, exc))  # a merge key (<<) of what cannot merge
            return {}
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.problems.append(Problem(self.at(key_node), dotted(path), "a key must be a plain name"))
                continue
            key = str(key_node.value)
            self.keys[(*path, key)] = self.at(key_node)
            result[key] = self.build(value_node, (*path, key))
        return result

    def _check_duplicates(self, node: MappingNode, path: NodePath) -> None:
        seen: dict[str, Node] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.value == "<<":
                continue
            first = seen.setdefault(key_node.value, key_node)
            if first is not key_node:
                self.problems.append(
                    Problem(
                        self.at(key_node),
                        dotted((*path, key_node.value)),
                        f"duplicate key '{key_node.value}' (first defined at line {first.start_mark.line + 1})",
                        "remove one of them",
                    )
                )


def dotted(path: NodePath) -> str:
    """('guests', 'web', 'disks', 0) -> 'guests.web.disks[0]'."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
