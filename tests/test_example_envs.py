"""examples/envs.yaml: one spec, two environments (examples/vars/laptop.yaml and ci.yaml), both valid,
each planning what it says; a sensitive value from the environment never shows."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .conftest import TEST_DRIVER, run_cli, stub_qcow2

EXAMPLES = Path(__file__).parent.parent / "examples"


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    """A copy of the examples with stub images where `make demo` would link the real ones."""
    where = tmp_path / "examples"
    shutil.copytree(EXAMPLES, where, ignore=shutil.ignore_patterns("images"))
    stub_qcow2(where / "images" / "debian-12.qcow2", 2 * 1024**3)
    for name in ("vmlinuz", "initrd.img"):
        (where / "images" / name).write_bytes(b"not a kernel")
    return where


@pytest.mark.parametrize(("env", "guests"), [("laptop", "2 guests"), ("ci", "1 guest")])
def test_both_environments_validate(examples: Path, env: str, guests: str) -> None:
    result = run_cli("validate", "envs.yaml", "--var-file", f"vars/{env}.yaml", cwd=examples)
    assert (result.code, result.out) == (0, f"ok: 1 file(s), {guests} in project envlab\n"), result.err


def test_each_environment_plans_its_own_values(examples: Path) -> None:
    secret = "$6$rounds=4096$saltsalt$HashOfTheCiAdmin"
    env = {"VMCTL_CACHE": str(examples / "cache"), "VMCTL_VAR_admin_password_hash": secret}
    laptop = run_cli("plan", "-c", TEST_DRIVER, "envs.yaml", "--var-file", "vars/laptop.yaml", cwd=examples, env=env)
    ci = run_cli("plan", "-c", TEST_DRIVER, "envs.yaml", "--var-file", "vars/ci.yaml", cwd=examples, env=env)
    assert laptop.code == ci.code == 0, laptop.err + ci.err
    assert "+ guest web-2 will be created" in laptop.out and "198.51.100.129/26" in laptop.out
    assert "+ guest web will be created" in ci.out and "203.0.113.129/26" in ci.out and "512MiB" in ci.out
    assert secret not in laptop.out + ci.out
    as_json = run_cli(
        "plan", "--json", "-c", TEST_DRIVER, "envs.yaml", "--var-file", "vars/ci.yaml", cwd=examples, env=env
    )
    assert as_json.code == 0 and secret not in as_json.out


def test_a_var_overrides_the_var_file(examples: Path) -> None:
    result = run_cli("validate", "envs.yaml", "--var-file", "vars/ci.yaml", "--var", "replicas=3", cwd=examples)
    assert (result.code, result.out) == (0, "ok: 1 file(s), 3 guests in project envlab\n"), result.err
