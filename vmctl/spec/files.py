"""Find spec files, parse and schema-check each, and merge them into one located document."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from vmctl.errors import Problem, SpecError
from vmctl.spec.schema import check_document
from vmctl.spec.source import NodePath, SourceDoc, dotted, load_yaml
from vmctl.spec.templates import Scope, substitute_doc
from vmctl.spec.variables import Variables, VarInputs, declarations, mask_problems, resolve

DEFAULT_SPEC = "vmctl.yaml"
SECTIONS = ("hosts", "pools", "images", "networks", "guests")
SCALARS = ("project", "connection", "expires_after")
LISTS = ("moved",)


@dataclass(frozen=True, slots=True)
class Entry:
    """One named thing from a section (a guest, a pool...), with the file it came from."""

    name: str
    body: dict[str, Any]
    doc: SourceDoc
    path: NodePath


@dataclass
class MergedSpec:
    """All files' sections merged by name; each entry still knows its file and line."""

    docs: list[SourceDoc]
    problems: list[Problem] = field(default_factory=list)  # found so far; more come from the semantic checks
    scalars: dict[str, tuple[Any, SourceDoc]] = field(default_factory=dict)
    sections: dict[str, dict[str, Entry]] = field(default_factory=lambda: {s: {} for s in SECTIONS})
    defaults: Entry | None = None
    scope: Scope = field(default_factory=lambda: Scope(Variables({}, {})))
    quiet: set[tuple[str, str]] = field(default_factory=set)  # (file, path) left alone: a problem is elsewhere
    lists: dict[str, list[tuple[Any, SourceDoc, int]]] = field(default_factory=lambda: {k: [] for k in LISTS})

    def problems_in(self, entry: Entry) -> list[str]:
        """Dotted paths, at or under `entry`, where problems were already found."""
        prefix = dotted(entry.path)
        found = [(p.location.file, p.path) for p in self.problems if p.location is not None]
        return [
            path
            for file, path in [*found, *self.quiet]
            if file == entry.doc.file and (path == prefix or path.startswith((prefix + ".", prefix + "[")))
        ]

    def broken(self, entry: Entry | None) -> bool:
        """A problem was already found in `entry`: it is not built (its name still counts for references)."""
        return entry is not None and bool(self.problems_in(entry))


def find_spec_files(paths: Sequence[str]) -> list[tuple[Path, str]]:
    """PATHs (files or directories of *.yaml/*.yml) -> (path, name to show), in a stable order."""
    if not paths:
        if not Path(DEFAULT_SPEC).exists():
            raise SpecError([Problem(None, "", f"no {DEFAULT_SPEC} in the current directory", _NO_SPEC_HINT)])
        paths = [DEFAULT_SPEC]
    found: list[tuple[Path, str]] = []
    for given in paths:
        found.extend(_expand(Path(given), given))
    return found


_NO_SPEC_HINT = "pass a spec file or directory (vmctl plan examples/dev.yaml), or create vmctl.yaml"


def _expand(path: Path, display: str) -> list[tuple[Path, str]]:
    if not path.is_dir():
        return [(path, display)]
    files = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    if not files:
        raise SpecError([Problem(None, "", f"{display}: no *.yaml or *.yml files in this directory")])
    return [(f, str(Path(display) / f.name)) for f in files]


def read_and_merge(paths: Sequence[str], workspace: str | None = None, inputs: VarInputs | None = None) -> MergedSpec:
    """Parse every file, substitute references, schema-check and merge. Problems are collected, not
    raised: the semantic checks still run on everything found sound, so one pass reports all of them.

    The schema checks each document after substitution, so a value from a variable is checked
    exactly as if it were written in its place.
    """
    docs: list[SourceDoc] = []
    problems: list[Problem] = []
    unreadable = False
    for path, display in find_spec_files(paths):
        try:
            doc = load_yaml(path, display)
        except SpecError as exc:
            problems.extend(exc.problems)
            unreadable = True
            continue
        problems.extend(doc.problems)
        docs.append(doc)
    declared, broken, found = declarations(docs)
    variables, given = resolve(declared, broken, inputs or VarInputs())
    problems.extend([*found, *given])
    scope = Scope(variables, frozenset(broken), workspace or "default")
    scope = Scope(variables, frozenset(broken), workspace or "default", _project(docs, scope))
    merged = MergedSpec([], problems, scope=scope)
    for doc in docs:
        done = substitute_doc(doc, scope)
        problems.extend(done.problems)
        problems.extend(check_document(done.doc, done.quiet, cache=not variables.secrets))
        merged.quiet.update((doc.file, path) for path in done.quiet)
        merged.docs.append(done.doc)
    if unreadable or not docs:
        raise SpecError(mask_problems(problems, variables.secrets))
    for doc in merged.docs:
        merged.problems.extend(_merge_doc(merged, doc))
    return merged


def _project(docs: list[SourceDoc], scope: Scope) -> str | None:
    """The project, as the first file that sets it says (references in it substituted): `${project}`
    means this everywhere else."""
    for doc in docs:
        if isinstance(doc.data.get("project"), str):
            project = substitute_doc(replace(doc, data={"project": doc.data["project"]}), scope).doc.data["project"]
            return project if isinstance(project, str) else None
    return None


def _merge_doc(merged: MergedSpec, doc: SourceDoc) -> list[Problem]:
    problems = [p for key in SCALARS if key in doc.data for p in _merge_scalar(merged, doc, key)]
    for section in SECTIONS:
        entries = doc.data.get(section)
        for name, body in entries.items() if isinstance(entries, dict) else ():
            problems.extend(
                _merge_entry(merged, Entry(name, body if isinstance(body, dict) else {}, doc, (section, name)), section)
            )
    if "defaults" in doc.data:
        problems.extend(_merge_defaults(merged, doc))
    for key in LISTS:
        items = doc.data.get(key)
        merged.lists[key].extend((item, doc, i) for i, item in enumerate(items if isinstance(items, list) else ()))
    return problems


def _merge_scalar(merged: MergedSpec, doc: SourceDoc, key: str) -> list[Problem]:
    value = doc.data[key]
    if key not in merged.scalars:
        merged.scalars[key] = (value, doc)
        return []
    first, first_doc = merged.scalars[key]
    if first == value:
        return []
    message = f"{key} is {value!r} here but {first!r} in {first_doc.where((key,))}"
    return [Problem(doc.where((key,)), key, message, f"all files of one spec must agree on {key}")]


def _merge_entry(merged: MergedSpec, entry: Entry, section: str) -> list[Problem]:
    existing = merged.sections[section].get(entry.name)
    if existing is None:
        merged.sections[section][entry.name] = entry
        return []
    singular = section.rstrip("s")
    message = f"{singular} '{entry.name}' is defined twice: here and at {existing.doc.key_where(existing.path)}"
    return [Problem(entry.doc.key_where(entry.path), ".".join(map(str, entry.path)), message, "keep one of them")]


def _merge_defaults(merged: MergedSpec, doc: SourceDoc) -> list[Problem]:
    if merged.defaults is None:
        body = doc.data["defaults"]
        merged.defaults = Entry("defaults", body if isinstance(body, dict) else {}, doc, ("defaults",))
        return []
    first = merged.defaults.doc.key_where(("defaults",))
    message = f"defaults are set here and at {first}"
    return [Problem(doc.key_where(("defaults",)), "defaults", message, "keep defaults in one file")]
