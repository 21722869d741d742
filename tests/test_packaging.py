"""vmctl as people install it: the wheel alone carries every module and the schemas, and its `vmctl` runs.

The wheel is built from a copy of the checkout and installed into a fresh virtualenv, whose `vmctl`
runs from a directory outside the checkout, so nothing of the checkout can be imported by accident.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from collections.abc import Callable
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# What a build reads: pyproject names the readme, the package and the schemas' directory.
BUILD_INPUTS = ("pyproject.toml", "README.md", "vmctl", "schemas")
SPEC = """\
version: 1
project: wheel
guests:
  box:
    memory: 256MiB
    disks:
      data: {size: 1GiB}
    wait: {agent: false, cloud_init: false}
"""


def checkout_files() -> set[str]:
    """What the wheel must hold: every module of the checkout's vmctl, and every published schema."""
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "vmctl").rglob("*.py") if "__pycache__" not in p.parts}
    return modules | {f"vmctl/schemas/{p.name}" for p in (ROOT / "schemas").iterdir() if p.is_file()}


def module_names() -> list[str]:
    paths = (p for p in checkout_files() if p.endswith(".py"))
    return sorted(p.removesuffix(".py").removesuffix("/__init__").replace("/", ".") for p in paths)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel `pip wheel .` makes, built from a copy so that no build/ or egg-info lands in the checkout."""
    source = tmp_path_factory.mktemp("source")
    for name in BUILD_INPUTS:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    dist = tmp_path_factory.mktemp("dist")
    pip = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-index", "--no-build-isolation"]
    built = subprocess.run([*pip, "-w", str(dist), str(source)], capture_output=True, text=True)
    hint = "the build uses this environment's setuptools (pyproject's [build-system]): pip install -e '.[test]'"
    assert built.returncode == 0, f"{built.stdout}{built.stderr}\n{hint}"
    return next(dist.glob("vmctl-*.whl"))


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheel installed. The runtime dependencies are this environment's,
    on sys.path after the wheel's site-packages (libvirt-python takes minutes to build)."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (Path(site) / "vmctl-test-dependencies.pth").write_text("".join(f"{path}\n" for path in ours))
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index"]
    installed = subprocess.run([*install, str(wheel)], capture_output=True, text=True)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return venv


def _outside_env() -> dict[str, str]:
    """This environment without what would point Python or vmctl elsewhere (PYTHONPATH, VMCTL_CONNECT)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VMCTL_", "VIRTUAL_ENV"))}


@pytest.fixture
def vmctl(venv: Path, tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the installed `vmctl ARGS` in a directory outside the checkout that holds vmctl.yaml."""
    (tmp_path / "vmctl.yaml").write_text(SPEC)
    env = {**_outside_env(), "NO_COLOR": "1", "VMCTL_CACHE": str(tmp_path / "cache")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [str(venv / "bin" / "vmctl"), *args]
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)

    return run


def test_the_wheel_holds_every_module_and_the_schemas(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        missing = checkout_files() - set(archive.namelist())
    assert not missing, f"not in the wheel (pyproject's packages?): {sorted(missing)}"


def test_the_installed_vmctl_is_the_wheel_and_imports_whole(venv: Path, tmp_path: Path) -> None:
    code = (
        "import importlib, json, sys; print(json.dumps({n: importlib.import_module(n).__file__ for n in sys.argv[1:]}))"
    )
    ran = subprocess.run(
        [venv / "bin" / "python", "-c", code, *module_names()],
        cwd=tmp_path,
        env=_outside_env(),
        capture_output=True,
        text=True,
    )
    assert ran.returncode == 0, ran.stderr
    elsewhere = {name: file for name, file in json.loads(ran.stdout).items() if not Path(file).is_relative_to(venv)}
    assert not elsewhere, f"imported from outside the installed wheel: {elsewhere}"


def test_the_installed_vmctl_validates_plans_applies_and_destroys(
    vmctl: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    validated = vmctl("validate")
    assert validated.returncode == 0, validated.stderr
    assert "1 guest in project wheel" in validated.stdout
    # test:///default keeps its state per process: each command starts from the empty test host.
    planned = vmctl("--connect", "test:///default", "plan")
    assert planned.returncode == 0, planned.stderr
    assert "+ guest box will be created" in planned.stdout
    applied = vmctl("--connect", "test:///default", "apply", "--yes")
    assert applied.returncode == 0, applied.stderr
    assert "Apply complete" in applied.stdout
    destroyed = vmctl("--connect", "test:///default", "destroy", "--yes")
    assert destroyed.returncode == 0, destroyed.stderr


def test_the_installed_vmctl_prints_the_published_schema(
    vmctl: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    printed = vmctl("schema")
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == (ROOT / "schemas" / "vmctl.schema.json").read_text("utf-8")


def _third_party_imports() -> set[str]:
    found = set()
    for path in (ROOT / "vmctl").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"vmctl", "__future__"}


def _normalized(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def test_every_library_vmctl_imports_is_a_declared_dependency() -> None:
    """The fresh virtualenv borrows this one's libraries, so a dependency missing from pyproject would
    not show there; this does."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    declared = {_normalized(re.split(r"[\s<>=!~;\[]", spec, maxsplit=1)[0]) for spec in project["dependencies"]}
    providers = packages_distributions()
    undeclared = {
        module: providers.get(module, ["?"])
        for module in _third_party_imports()
        if not {_normalized(d) for d in providers.get(module, [])} & declared
    }
    assert not undeclared, f"imported by vmctl, not in pyproject's dependencies: {undeclared}"


def test_the_validity_cache_misses_after_an_upgrade(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A spec found valid by one vmctl is checked again by the next: a release can add checks that the
    schema text does not show."""
    import vmctl
    from vmctl.spec.schema import check_document
    from vmctl.spec.source import load_yaml

    monkeypatch.setenv("VMCTL_CACHE", str(tmp_path / "cache"))
    spec = tmp_path / "vmctl.yaml"
    spec.write_text(SPEC)

    def checked_with(version: str) -> set[Path]:
        monkeypatch.setattr(vmctl, "__version__", version)
        assert check_document(load_yaml(spec, "vmctl.yaml")) == []
        return set((tmp_path / "cache" / "valid").iterdir())

    first = checked_with("1.0")
    assert len(first) == 1
    assert checked_with("1.0") == first  # a hit: nothing new remembered
    assert len(checked_with("1.1") - first) == 1  # a miss: checked, and remembered under the new version


def test_pytest_without_an_editable_install_says_what_to_run(venv: Path) -> None:
    """The suite run by a Python whose vmctl is the wheel, not this checkout: a message, not 500 errors."""
    command = [
        venv / "bin" / "python",
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--co",
        "tests/test_layering.py",
    ]
    ran = subprocess.run(command, cwd=ROOT, env=_outside_env(), capture_output=True, text=True)
    assert ran.returncode == pytest.ExitCode.USAGE_ERROR, ran.stdout + ran.stderr
    assert f"not an editable install of {ROOT}" in ran.stderr
    assert "pip install -e '.[test]'" in ran.stderr
