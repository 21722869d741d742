"""`vmctl gc` and `vmctl workspaces` reach a host by its name in a spec's `hosts:` as well as by URI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from .conftest import TEST_DRIVER, CliResult

SPEC = f"""
version: 1
project: spread
hosts:
  lab: {{uri: "{TEST_DRIVER}"}}
guests:
  web: {{}}
"""

Cli = Callable[..., CliResult]


def test_workspaces_and_gc_take_a_host_of_the_spec(cli: Cli, write: Callable[[str, str], Path]) -> None:
    spec = write("vmctl.yaml", SPEC)
    listed = cli("workspaces", "--host", "lab", "-f", str(spec), "--json")
    assert listed.code == 0, listed.err
    assert json.loads(listed.out)["connection"] == TEST_DRIVER  # the URI the spec gives host lab
    collected = cli("gc", "--host", "lab", "-f", str(spec), "--dry-run")
    assert collected.code == 0, collected.err


def test_a_host_the_spec_does_not_have_is_named_with_the_ones_it_has(
    cli: Cli, write: Callable[[str, str], Path]
) -> None:
    spec = write("vmctl.yaml", SPEC)
    result = cli("gc", "--host", "rack9", "-f", str(spec))
    assert result.code == 1
    assert "no host named rack9 in the spec" in result.err and "its hosts: lab" in result.err
    both = cli("workspaces", "--host", "lab", "--connect", TEST_DRIVER, "-f", str(spec))
    assert both.code == 1 and "not both" in both.err
