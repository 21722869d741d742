"""Shared test fixtures: the CLI run in-process, spec files, libvirt connections, cleanup."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import textwrap
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SYSTEM = "qemu:///system"
TEST_DRIVER = "test:///default"
# Directories qemu (running as libvirt-qemu) can reach: not under /tmp/pytest-of-root (mode 0700).
SCRATCH = Path("/var/lib/vmctl-tests")


def _not_installed() -> str | None:
    """What keeps the suite from testing this checkout: a distribution pyproject names (or vmctl
    itself, installed editable from here) missing from this environment. Metadata lookups only."""
    import json
    import re
    import sys
    import tomllib
    from importlib import metadata

    # Not the checkout itself: an editable install leaves vmctl.egg-info there, installed or not.
    site = [p for p in sys.path if p and Path(p).resolve() != ROOT]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["test"], "vmctl"]
    names = [re.split(r"[\s<>=!~;\[]", spec, maxsplit=1)[0] for spec in wanted]
    missing = [name for name in names if not any(metadata.distributions(name=name, path=site))]
    if missing:
        return f"not installed: {', '.join(missing)}"
    vmctl = next(iter(metadata.distributions(name="vmctl", path=site)))
    origin = json.loads(vmctl.read_text("direct_url.json") or "{}")
    if origin and (origin.get("url") != ROOT.as_uri() or not origin.get("dir_info", {}).get("editable")):
        return f"the vmctl installed here is not an editable install of {ROOT} but of {origin.get('url')}"
    return None


def pytest_configure(config: pytest.Config) -> None:
    problem = _not_installed()
    if problem:
        hint = "Run `make test`, or `pip install -e '.[test]'` in this virtualenv, first."
        pytest.exit(f"vmctl's tests run against this checkout: {problem}. {hint}", pytest.ExitCode.USAGE_ERROR)


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> CliResult:
    """Run `vmctl ARGS` in this process through its entry point; capture stdout, stderr and exit code."""
    from vmctl.cli.app import main

    out, err = io.StringIO(), io.StringIO()
    old_cwd = Path.cwd()
    old_env = dict(os.environ)
    try:
        if cwd:
            os.chdir(cwd)
        os.environ.update(env or {})
        os.environ["NO_COLOR"] = "1"
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(list(args))
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        os.chdir(old_cwd)
        os.environ.clear()
        os.environ.update(old_env)
    return CliResult(code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli() -> Callable[..., CliResult]:
    return run_cli


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """write("vmctl.yaml", text) -> path, with the text dedented."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    return _write


def stub_qcow2(path: Path, size: int) -> Path:
    """Enough of a qcow2 header for vmctl to read the virtual size (plans only; not bootable)."""
    import struct

    path.parent.mkdir(parents=True, exist_ok=True)
    header = b"QFI\xfb" + struct.pack(">I", 3) + bytes(16) + struct.pack(">Q", size) + bytes(64)
    path.write_bytes(header + path.name.encode())
    return path


@pytest.fixture
def project() -> str:
    """A project name no other test uses, so tests never see each other's objects."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def test_driver() -> Iterator[object]:
    """Keep one connection to the test driver open: its state lives as long as a connection does."""
    import libvirt

    conn = libvirt.open(TEST_DRIVER)
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def libvirtd() -> str:
    """A real libvirtd with QEMU on qemu:///system, started if it is not running."""
    subprocess.run(["bash", str(ROOT / "scripts" / "start-libvirtd.sh")], check=True)
    return SYSTEM


@pytest.fixture
def scratch(project: str) -> Iterator[Path]:
    """A directory qemu can read, for this test's pool; removed afterwards."""
    path = SCRATCH / project
    path.mkdir(parents=True, exist_ok=True)
    SCRATCH.chmod(0o755)
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def cleanup(libvirtd: str, project: str) -> Iterator[None]:
    """After the test, remove every libvirt object of the test's project (or workspace of that name)."""
    yield
    remove_project(libvirtd, project)


def remove_project(uri: str, project: str) -> None:
    """Every object of the project (or of a workspace of that name), and its pools."""
    from tests.tooling.cleanup import remove_objects

    remove_objects(
        uri,
        owned=lambda owner: project in (owner.project, owner.workspace),
        pools=lambda name: name.startswith(project),
    )
