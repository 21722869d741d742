"""The CLI through its entry point: exit codes, messages, what it loads, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from .conftest import CliResult

Cli = Callable[..., CliResult]
SPEC = """\
version: 1
project: clitest
guests:
  web:
    memory: 256MiB
    nics:
      uplink: {user: {}}
"""


def test_version(cli: Cli) -> None:
    result = cli("version")
    assert result.code == 0 and result.out.startswith("vmctl ")
    assert json.loads(cli("version", "--json").out)["vmctl"]


def test_help_exits_zero_and_lists_commands(cli: Cli) -> None:
    result = cli("--help")
    assert result.code == 0
    for command in ("validate", "plan", "apply", "destroy", "status", "xml", "schema", "version"):
        assert command in result.out


def test_usage_errors_exit_1_not_2(cli: Cli) -> None:
    # 2 is reserved for `plan --detailed-exitcode`: a typo must not look like "changes present".
    for args in (("plan", "--no-such-option"), ("no-such-command",), ("apply", "--parallel", "0")):
        result = cli(*args)
        assert result.code == 1, args
        assert "Traceback" not in result.err


def test_a_mistyped_command_or_option_gets_a_suggestion(cli: Cli) -> None:
    command = cli("aply", "--yes")
    assert command.code == 1 and "no command named 'aply' (did you mean apply?)" in command.err
    option = cli("plan", "--detailed-exitcod")
    assert option.code == 1 and "did you mean --detailed-exitcode?" in option.err
    assert "usage: vmctl plan" in option.err and "vmctl plan --help" in option.err


def test_no_command_prints_the_commands_and_exits_1(cli: Cli) -> None:
    result = cli()
    assert result.code == 1
    assert "validate" in result.out and "destroy" in result.out and "COMMAND --help" in result.out


def test_command_help_lists_its_options(cli: Cli) -> None:
    result = cli("destroy", "--help")
    assert result.code == 0
    for option in ("-f, --spec PATH", "--images", "-p, --parallel N", "--shutdown-timeout DURATION"):
        assert option in result.out


def test_options_may_follow_and_precede_spec_paths(cli: Cli, write: Callable[[str, str], Path]) -> None:
    first = write("a.yaml", SPEC)
    second = write("b.yaml", "version: 1\nproject: clitest\nguests:\n  db:\n    memory: 256MiB\n")
    result = cli("validate", str(first), "--json", str(second))
    assert result.code == 0, result.err
    assert sorted(json.loads(result.out)["guests"]) == ["db", "web"]


def test_missing_default_spec_has_a_hint(cli: Cli, tmp_path: Path) -> None:
    result = cli("plan", cwd=tmp_path)
    assert result.code == 1
    assert "no vmctl.yaml in the current directory" in result.err
    assert "hint:" in result.err or "pass a spec file" in result.err


def test_connection_failure_names_the_uri_and_the_fix(cli: Cli, write: Callable[[str, str], Path]) -> None:
    spec = write("vmctl.yaml", SPEC)
    uri = "qemu+unix:///system?socket=/nonexistent/libvirt-sock"
    result = cli("plan", "--connect", uri, str(spec))
    assert result.code == 1
    assert uri in result.err
    assert "libvirtd running" in result.err
    assert "Traceback" not in result.err


def test_global_and_command_options_and_environment(
    cli: Cli, write: Callable[[str, str], Path], test_driver: object
) -> None:
    spec = write("vmctl.yaml", SPEC)
    before = json.loads(cli("--connect", "test:///default", "--workspace", "ci1", "plan", "--json", str(spec)).out)
    after = json.loads(
        cli("plan", "--json", str(spec), env={"VMCTL_CONNECT": "test:///default", "VMCTL_WORKSPACE": "ci1"}).out
    )
    assert before["workspace"] == after["workspace"] == "ci1"
    assert before["connection"] == after["connection"] == "test:///default"
    assert [c["name"] for c in before["changes"] if c["kind"] == "guest"] == ["ci1-web"]


def test_connection_from_the_spec_is_used_when_nothing_else_says(
    cli: Cli, write: Callable[[str, str], Path], test_driver: object
) -> None:
    spec = write("vmctl.yaml", SPEC.replace("project: clitest", "project: clitest\nconnection: test:///default"))
    result = cli("plan", "--json", str(spec), env={"LIBVIRT_DEFAULT_URI": "qemu:///nonexistent"})
    assert result.code == 0, result.err
    assert json.loads(result.out)["connection"] == "test:///default"


def test_xml_prints_the_domain(cli: Cli, write: Callable[[str, str], Path], test_driver: object) -> None:
    spec = write("vmctl.yaml", SPEC)
    result = cli("xml", "web", "--connect", "test:///default", "-f", str(spec))
    assert result.code == 0, result.err
    assert "<name>web</name>" in result.out and '<interface type="user">' in result.out
    missing = cli("xml", "nope", "--connect", "test:///default", "-f", str(spec))
    assert missing.code == 1 and "guests: web" in missing.err


def test_fast_paths_never_load_libvirt(tmp_path: Path) -> None:
    spec = tmp_path / "vmctl.yaml"
    spec.write_text(SPEC)
    code = (
        "import sys; from vmctl.cli.app import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "print('LOADED' if {'libvirt', 'pycdlib'} & set(sys.modules) else 'CLEAN', file=sys.stderr)"
    )
    for args in (["version"], ["validate", str(spec)]):
        result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
        assert result.stderr.strip().endswith("CLEAN"), (args, result.stderr)


def test_plan_against_the_test_driver_end_to_end(
    cli: Cli, write: Callable[[str, str], Path], test_driver: object
) -> None:
    spec = write("vmctl.yaml", SPEC)
    result = cli("plan", "--connect", "test:///default", "--detailed-exitcode", str(spec))
    assert result.code == 2
    assert "+ guest web will be created" in result.out
    assert "+ pool default will be created" in result.out  # the implicit default pool, missing on the test driver
    assert "Plan: 2 to create, 0 to update (0 needs restart), 0 to replace, 0 to delete." in result.out
