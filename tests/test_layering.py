"""The stages import only what their package docstrings allow, and no two modules import each other.

Every `import` in vmctl/**/*.py counts: at module level, inside functions and under TYPE_CHECKING,
because each one is a dependency a reader (or a future refactor) has to carry.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "vmctl"
LIBVIRT = ("libvirt", "libvirt_qemu", "libvirt_lxc", "libvirtaio")
EVERY_STAGE = tuple(
    f"vmctl.{name}"
    for name in (
        *("spec", "model", "resolve", "plan", "cloudinit", "libvirtxml"),
        *("hypervisor", "reach", "importing", "apply", "cli"),
    )
)


def _all_of_vmctl_but(*allowed: str) -> tuple[str, ...]:
    tops = {f"vmctl.{p.stem}" for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__")}
    return tuple(sorted({*EVERY_STAGE, *tops} - set(allowed)))


# What each package must not import: the "Must not import" line of its docstring, as data.
# An entry applies to the package and everything under it; prefixes match whole dotted names.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "vmctl.spec": ("vmctl.resolve", "vmctl.plan", "vmctl.libvirtxml", "vmctl.hypervisor", "vmctl.apply", "vmctl.cli"),
    "vmctl.model": _all_of_vmctl_but("vmctl.model", "vmctl.errors", "vmctl.units"),
    "vmctl.resolve": ("vmctl.plan", "vmctl.hypervisor", "vmctl.apply", "vmctl.cli"),
    "vmctl.plan": ("vmctl.hypervisor", "vmctl.apply", "vmctl.cli", *LIBVIRT),
    "vmctl.cloudinit": ("vmctl.plan", "vmctl.hypervisor", "vmctl.apply", "vmctl.cli"),
    "vmctl.libvirtxml": ("vmctl.plan", "vmctl.hypervisor", "vmctl.apply", "vmctl.cli", *LIBVIRT),
    "vmctl.hypervisor": ("vmctl.plan", "vmctl.apply", "vmctl.cli"),
    "vmctl.importing": ("vmctl.plan", "vmctl.apply", "vmctl.cli", *LIBVIRT),
    "vmctl.reach": ("vmctl.plan", "vmctl.apply", "vmctl.cli", *LIBVIRT),
    "vmctl.apply": ("vmctl.cli",),
}
# vmctl.cli: "Must not be imported by any other package of vmctl".
CLI_IMPORTERS = ("vmctl.cli", "vmctl.__main__")
# vmctl.hypervisor.libvirt: "the only code that imports libvirt" (so model and resolve do not either).
LIBVIRT_IMPORTERS = ("vmctl.hypervisor.libvirt",)

# Imports that break a rule today, (importer, imported), each to be removed by the change that fixes it.
# An entry that no longer occurs fails test_known_violations_still_occur: delete it then.
KNOWN_VIOLATIONS: set[tuple[str, str]] = set()


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def vmctl_modules() -> dict[str, Path]:
    """Every module of the vmctl package in this checkout, by dotted name."""
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "__pycache__" not in p.parts}


MODULES = vmctl_modules()


def _imported_names(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> Iterator[str]:
    """The modules one import statement names: `from a import b` names a.b when that is a module, else a."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:
        anchor = module.split(".")
        anchor = anchor if is_package else anchor[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join([*anchor, base] if base else anchor)
    for alias in node.names:
        yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base


def imports_of(module: str, path: Path) -> set[str]:
    """Every module `module` imports anywhere in its source: top level, functions, TYPE_CHECKING blocks."""
    tree = ast.parse(path.read_text("utf-8"), str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.update(_imported_names(node, module, is_package))
    return found


@cache
def import_graph() -> dict[str, set[str]]:
    """module -> every module it imports (vmctl's and others')."""
    return {name: imports_of(name, path) for name, path in MODULES.items()}


def _rules_for(module: str) -> list[tuple[str, str]]:
    """(forbidden prefix, the rule it comes from) for one importing module."""
    rules = [
        (bad, f"{package}'s Must not import")
        for package, bads in FORBIDDEN.items()
        if _within(module, package)
        for bad in bads
    ]
    if not any(_within(module, allowed) for allowed in CLI_IMPORTERS):
        rules.append(("vmctl.cli", "vmctl.cli is imported only by vmctl.cli and vmctl.__main__"))
    if not any(_within(module, allowed) for allowed in LIBVIRT_IMPORTERS):
        rules.extend((name, "only vmctl.hypervisor.libvirt imports libvirt") for name in LIBVIRT)
    return rules


def layering_violations(graph: dict[str, set[str]]) -> dict[tuple[str, str], str]:
    """(importer, imported) -> the rule the import breaks."""
    found = {}
    for module, imported in graph.items():
        for bad, rule in _rules_for(module):
            found.update({(module, name): rule for name in imported if _within(name, bad) and not _within(module, bad)})
    return found


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components with more than one module: the import cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for succ in graph.get(node, ()):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def internal_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Only the edges between vmctl's modules, without a module's import of itself."""
    return {m: {n for n in imported if n in graph and n != m} for m, imported in graph.items()}


def _without_known(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    return {m: {n for n in imported if (m, n) not in KNOWN_VIOLATIONS} for m, imported in graph.items()}


def _cycle_edges(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    return sorted(f"{m} -> {n}" for m in component for n in graph[m] if n in component)


def test_each_package_imports_only_what_its_docstring_allows() -> None:
    broken = {edge: rule for edge, rule in layering_violations(import_graph()).items() if edge not in KNOWN_VIOLATIONS}
    assert not broken, "\n".join(f"{m} imports {n}: against {rule}" for (m, n), rule in sorted(broken.items()))


def test_no_import_cycles_between_modules() -> None:
    graph = _without_known(internal_graph(import_graph()))
    cycles = [_cycle_edges(graph, component) for component in strongly_connected(graph)]
    assert not cycles, "import cycles:\n" + "\n\n".join("\n".join(edges) for edges in cycles)


def test_known_violations_still_occur() -> None:
    """A violation that was fixed leaves KNOWN_VIOLATIONS, so it cannot come back unnoticed."""
    graph = internal_graph(import_graph())
    in_cycles = {(m, n) for c in strongly_connected(graph) for m in c for n in graph[m] if n in c}
    current = set(layering_violations(import_graph())) | in_cycles
    assert current >= KNOWN_VIOLATIONS, f"fixed, remove from KNOWN_VIOLATIONS: {sorted(KNOWN_VIOLATIONS - current)}"


def _docstring(package: str) -> str:
    init = PACKAGE.parent / package.replace(".", "/") / "__init__.py"
    return " ".join((ast.get_docstring(ast.parse(init.read_text("utf-8"))) or "").split())


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_the_rule_table_says_what_the_package_docstring_says(package: str) -> None:
    rule = re.search(r"Must not import: ((?:[^.`]|`[^`]*`)*)\.", _docstring(package))
    assert rule, f"{package} has no 'Must not import: ...' sentence"
    named = set(re.findall(r"`(vmctl[\w.]*)`", rule[1]))
    if rule[1].startswith("anything of vmctl but"):
        named = set(_all_of_vmctl_but(package, *named))
    if re.search(r"\blibvirt\b", rule[1]):
        named |= set(LIBVIRT)
    assert named == set(FORBIDDEN[package])


def test_the_cli_docstring_says_it_is_imported_by_nothing_else() -> None:
    assert "Must not be imported by any other package of vmctl." in _docstring("vmctl.cli")


def test_the_rules_see_imports_in_functions_and_type_checking_blocks(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from vmctl.apply import guest\n"
        "def f():\n    import libvirt\n    from ..cli import app\n"
    )
    assert imports_of("vmctl.plan.m", source) >= {"vmctl.apply.guest", "libvirt", "vmctl.cli.app"}
    graph = {"vmctl.plan.m": imports_of("vmctl.plan.m", source)}
    assert {n for (_, n) in layering_violations(graph)} >= {"vmctl.apply.guest", "libvirt", "vmctl.cli.app"}


def test_a_cycle_is_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(graph) == [{"a", "b", "c"}]
