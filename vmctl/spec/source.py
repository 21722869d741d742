"""Read a YAML spec file into plain data, remembering where every key and value came from."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from vmctl.errors import Location, Problem, SpecError

NodePath = tuple[str | int, ...]
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"


@dataclass(frozen=True, slots=True)
class SourceDoc:
    """One parsed spec file: its data, and the position of each value and key by path."""

    file: str
    base_dir: Path
    data: dict[str, Any]
    values: Mapping[NodePath, Location] = field(repr=False)
    keys: Mapping[NodePath, Location] = field(repr=False)
    problems: tuple[Problem, ...] = ()  # found while reading but not fatal (duplicate keys)

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


class _SpecLoader(yaml.SafeLoader):
    """YAML 1.1 as PyYAML reads it, minus base-60 numbers: an unquoted MAC stays a string."""


_SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_INT, _FLOAT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_SpecLoader.add_implicit_resolver(
    _INT,
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)
_SpecLoader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def load_yaml(path: Path, display: str) -> SourceDoc:
    """Parse `path` as one YAML mapping; raise SpecError with every problem found."""
    text = _read_text(path, display)
    loader = _SpecLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        raise SpecError([_yaml_problem(display, exc)]) from None
    except yaml.YAMLError as exc:
        raise SpecError([Problem(Location(display, 1, 1), "", f"invalid YAML: {exc}")]) from None
    finally:
        loader.dispose()
    if root is None:
        raise SpecError([Problem(Location(display, 1, 1), "", "the file is empty", "a spec starts with 'version: 1'")])
    builder = _Builder(display, loader)
    data = builder.build(root, ())
    if not isinstance(data, dict):
        message = "the top level must be a mapping of keys, like 'version: 1'"
        raise SpecError([*builder.problems, Problem(builder.values[()], "", message)])
    return SourceDoc(display, path.parent, data, builder.values, builder.keys, tuple(builder.problems))


def _read_text(path: Path, display: str) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SpecError([Problem(None, "", f"{display}: no such file")]) from None
    except IsADirectoryError:
        raise SpecError([Problem(None, "", f"{display}: is a directory, not a file")]) from None
    except OSError as exc:
        raise SpecError([Problem(None, "", f"{display}: cannot read: {exc.strerror}")]) from None
    if b"\0" in raw[:8192]:
        raise SpecError([Problem(Location(display, 1, 1), "", "this is a binary file, not a YAML spec")])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        problem = Problem(Location(display, line, column), "", "the file is not UTF-8 text")
        raise SpecError([problem]) from None


def _yaml_problem(display: str, exc: yaml.MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    where = Location(display, mark.line + 1, mark.column + 1) if mark else Location(display, 1, 1)
    what = exc.problem or "syntax error"
    if exc.context:
        opened = f" at line {exc.context_mark.line + 1}" if exc.context_mark and exc.problem_mark else ""
        what = f"{what} ({exc.context}{opened})"
    return Problem(where, "", f"invalid YAML: {what}")


class _Builder:
    """Turns composed YAML nodes into dicts/lists/scalars, recording positions on the way."""

    def __init__(self, display: str, loader: yaml.SafeLoader) -> None:
        self.display = display
        self.loader = loader
        self.values: dict[NodePath, Location] = {}
        self.keys: dict[NodePath, Location] = {}
        self.problems: list[Problem] = []
        self._active: set[int] = set()

    def at(self, node: Node) -> Location:
        return Location(self.display, node.start_mark.line + 1, node.start_mark.column + 1)

    def build(self, node: Node, path: NodePath) -> Any:
        self.values[path] = self.at(node)
        if id(node) in self._active:
            self.problems.append(Problem(self.at(node), dotted(path), "an alias refers to itself"))
            return None
        self._active.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
            if isinstance(node, SequenceNode):
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            return self._scalar(node, path)
        finally:
            self._active.discard(id(node))

    def _scalar(self, node: Node, path: NodePath) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as exc:
            self.problems.append(Problem(self.at(node), dotted(path), f"invalid value: {exc.problem}"))
            return None

    def _mapping(self, node: MappingNode, path: NodePath) -> dict[str, Any]:
        self._check_duplicates(node, path)
        try:
            self.loader.flatten_mapping(node)
        except yaml.MarkedYAMLError as exc:
            self.problems.append(_yaml_problem(self.display, exc))
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
