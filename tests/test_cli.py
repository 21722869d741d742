"""The CLI through its entry point: exit codes, messages, what it loads, no tracebacks."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from vmctl import __version__

from .conftest import TEST_DRIVER, CliResult, run_cli

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
    cases = {
        ("plan", "--no-such-option"): "No such option: --no-such-option",
        ("no-such-command",): "No such command 'no-such-command'",
        ("apply", "--parallel", "0"): "Invalid value for '--parallel' / '-p'",
        ("xml",): "Missing argument 'GUEST'",
        ("plan", "--connect"): "Option '--connect' requires an argument",
    }
    for args, message in cases.items():
        result = cli(*args)
        assert result.code == 1, args
        assert f"error: {message}" in result.err, (args, result.err)
        assert "Traceback" not in result.err and result.out == ""


def test_a_usage_error_shows_the_usage_of_the_command_it_was_meant_for(cli: Cli) -> None:
    result = cli("destroy", "--parallel", "x")
    assert result.code == 1
    assert re.match(r"Usage: vmctl destroy \[OPTIONS\] \[GUEST\](\.\.\.)?\n", result.err), result.err
    assert "hint: vmctl destroy --help lists what it takes" in result.err


def test_ctrl_c_exits_130_with_a_message(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted() -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr("vmctl.spec.schema.schema_text", interrupted)
    result = cli("schema")
    assert result.code == 130 and result.err == "error: interrupted\n"


def test_a_mistyped_command_or_option_gets_a_suggestion(cli: Cli) -> None:
    command = cli("aply", "--yes")
    assert command.code == 1 and "No such command 'aply'. Did you mean 'apply'?" in command.err
    option = cli("plan", "--detailed-exitcod")
    assert option.code == 1 and "(Possible options: --detailed-exitcode)" in option.err
    assert "Usage: vmctl plan" in option.err and "vmctl plan --help" in option.err


def test_no_command_prints_the_commands_and_exits_1(cli: Cli) -> None:
    result = cli()
    assert result.code == 1
    assert "validate" in result.out and "destroy" in result.out and "COMMAND --help" in result.out


def test_command_help_lists_its_options(cli: Cli) -> None:
    result = cli("destroy", "--help")
    assert result.code == 0
    # typer's rich help: one row per option, its long name, its short name, then its value
    for option in (r"--spec +-f +PATH", r"--images ", r"--parallel +-p +N", r"--shutdown-timeout +DURATION"):
        assert re.search(option, result.out), option
    assert cli("destroy", "-h").out == result.out


def test_version_as_an_option_and_as_a_command(cli: Cli) -> None:
    assert cli("--version").out == cli("version").out == f"vmctl {__version__}\n"


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


def test_a_bad_spec_is_reported_even_when_the_connection_given_fails(
    cli: Cli, write: Callable[[str, str], Path]
) -> None:
    # --connect starts connecting before the spec is read: the spec's problem still comes first.
    spec = write("vmctl.yaml", SPEC.replace("memory: 256MiB", "memory: lots"))
    uri = "qemu+unix:///system?socket=/nonexistent/libvirt-sock"
    result = cli("plan", "--connect", uri, str(spec))
    assert result.code == 1
    assert "guests.web.memory" in result.err
    assert "libvirtd running" not in result.err and uri not in result.err
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


def test_global_options_may_follow_the_command(
    cli: Cli, write: Callable[[str, str], Path], test_driver: object
) -> None:
    spec = write("vmctl.yaml", SPEC)
    result = cli("plan", "--json", str(spec), "--connect", "test:///default", "--workspace", "ci2")
    assert result.code == 0, result.err
    plan = json.loads(result.out)
    assert (plan["workspace"], plan["connection"]) == ("ci2", "test:///default")


def test_an_option_after_the_command_wins_over_the_same_before_it_and_the_environment(
    cli: Cli, write: Callable[[str, str], Path], test_driver: object
) -> None:
    spec = str(write("vmctl.yaml", SPEC))
    env = {"VMCTL_WORKSPACE": "from-env", "VMCTL_CONNECT": "qemu:///nonexistent"}
    before = ["-w", "before", "-c", "qemu:///nonexistent"]
    after = cli(*before, "plan", "-w", "after", "-c", "test:///default", "--json", spec, env=env)
    assert after.code == 0, after.err
    assert (json.loads(after.out)["workspace"], json.loads(after.out)["connection"]) == ("after", "test:///default")
    only_before = cli("-w", "before", "-c", "test:///default", "plan", "--json", spec, env=env)
    assert only_before.code == 0, only_before.err
    assert json.loads(only_before.out)["workspace"] == "before"


def test_destroy_takes_guest_names_even_when_a_file_has_that_name(
    cli: Cli, write: Callable[[str, str], Path], tmp_path: Path, test_driver: object
) -> None:
    # Only -f names a spec: a guest called `web` stays a guest while a file ./web lies around.
    write("vmctl.yaml", SPEC.replace("project: clitest", "project: clidestroy"))
    write("web", "not a spec")
    result = cli("destroy", "--yes", "--connect", "test:///default", "web", cwd=tmp_path)
    assert result.code == 1
    assert "no guest of this project named web" in result.err, result.err


def test_show_completion_prints_the_shell_script(cli: Cli) -> None:
    # typer guesses the shell from the process tree; its own switch lets the test name it instead.
    result = cli("--show-completion", "bash", env={"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"})
    assert result.code == 0, result.err
    assert "complete -o default -F _vmctl_completion vmctl" in result.out


def test_completion_completes_commands_and_options(cli: Cli) -> None:
    command = cli(env={"_VMCTL_COMPLETE": "complete_bash", "COMP_WORDS": "vmctl pl", "COMP_CWORD": "1"})
    assert command.code == 0 and command.out.split() == ["plan"]
    option = cli(env={"_VMCTL_COMPLETE": "complete_bash", "COMP_WORDS": "vmctl plan --det", "COMP_CWORD": "2"})
    assert option.code == 0 and option.out.split() == ["--detailed-exitcode"]


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
    for args in (["version"], ["validate", str(spec)]):
        # -X importtime lists every module the program imports, one per line, on stderr
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "vmctl", *args], capture_output=True, text=True
        )
        assert result.returncode == 0, (args, result.stderr)
        imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "|" in line}
        assert "vmctl.cli.app" in imported, args  # the list is read right
        heavy = {m for m in imported if m.split(".")[0] in ("libvirt", "libvirtmod", "pycdlib")}
        assert not heavy, (args, heavy)


def test_plan_against_the_test_driver_end_to_end(
    cli: Cli, write: Callable[[str, str], Path], test_driver: object
) -> None:
    spec = write("vmctl.yaml", SPEC)
    result = cli("plan", "--connect", "test:///default", "--detailed-exitcode", str(spec))
    assert result.code == 2
    assert "+ guest web will be created" in result.out
    assert "+ pool default will be created" in result.out  # the implicit default pool, missing on the test driver
    assert "Plan: 2 to create, 0 to update (0 needs restart), 0 to replace, 0 to delete." in result.out


# -- CI-native output: GitHub Actions annotations, the pre-commit hook ---------------------------------


def test_validate_format_github_annotates_each_problem(tmp_path: Path) -> None:
    spec = tmp_path / "vmctl.yaml"
    spec.write_text("version: 1\nproject: lab\nguests:\n  web:\n    memory: ${var.mem}\n    cpus: 0\n")
    result = run_cli("validate", "--format", "github", "vmctl.yaml", "--var", "x=1", cwd=tmp_path)
    assert result.code == 1
    assert result.out.splitlines() == [
        "::error file=--var,line=1,col=1,title=x::x: no variable named 'x' is declared "
        "(hint: declare it under 'variables:')",
        "::error file=vmctl.yaml,line=5,col=13,title=guests.web.memory::guests.web.memory: "
        "no variable named 'mem' is declared (hint: declare it under 'variables:')",
        "::error file=vmctl.yaml,line=6,col=11,title=guests.web.cpus::guests.web.cpus: must be at least 1; got 0 "
        "(hint: give a value from 1 to 255)",
    ]
    assert result.err.splitlines()[-1] == "error: 3 problems in the spec"


def test_plan_format_github_annotates_spec_problems(tmp_path: Path) -> None:
    (tmp_path / "vmctl.yaml").write_text("version: 1\nproject: lab\nguests:\n  web: {memory: 12}\n")
    result = run_cli("plan", "--format", "github", "-c", TEST_DRIVER, cwd=tmp_path)
    assert result.code == 1
    assert result.out.startswith("::error file=vmctl.yaml,line=4,col=17,title=guests.web.memory::")


def test_validate_each_checks_specs_apart(tmp_path: Path) -> None:
    """Two specs of different projects are fine apart; together they disagree on the project."""
    (tmp_path / "a.yaml").write_text("version: 1\nproject: one\nguests: {web: {}}\n")
    (tmp_path / "b.yaml").write_text("version: 1\nproject: two\nguests: {db: {}}\n")
    assert run_cli("validate", "a.yaml", "b.yaml", cwd=tmp_path).code == 1
    each = run_cli("validate", "--each", "a.yaml", "b.yaml", cwd=tmp_path)
    assert (each.code, each.out) == (0, "ok: 2 spec(s)\n"), each.err


def test_pre_commit_hook_runs_validate_on_staged_specs() -> None:
    hooks = yaml.safe_load((Path(__file__).parent.parent / ".pre-commit-hooks.yaml").read_text())
    assert [h["id"] for h in hooks] == ["vmctl-validate"]
    hook = hooks[0]
    assert hook["entry"] == "vmctl validate --each" and hook["language"] == "python"
    pattern = re.compile(hook["files"])
    assert [bool(pattern.search(p)) for p in ("vmctl.yaml", "lab/vmctl.yml", "vmctl/web.yaml", "ci.yaml")] == [
        True,
        True,
        True,
        False,
    ]


def test_applying_a_json_file_that_is_not_a_saved_plan_says_so(cli: Cli, tmp_path: Path) -> None:
    broken, other = tmp_path / "broken.json", tmp_path / "other.json"
    broken.write_text('{"format": ')
    other.write_text(json.dumps({"format": "something else"}))
    for path in (broken, other):
        result = cli("apply", "--connect", "qemu:///nonexistent", str(path))
        assert result.code == 1, result.err
        assert f"error: {path}: not a saved vmctl plan" in result.err
        assert "Traceback" not in result.err and result.out == ""
    assert "hint: make one with: vmctl plan -o FILE" in cli("apply", str(other)).err


def test_a_duration_option_that_is_not_one_names_the_option(cli: Cli, write: Callable[[str, str], Path]) -> None:
    spec = str(write("vmctl.yaml", SPEC))
    for option in ("--lock-timeout", "--shutdown-timeout"):
        result = cli("apply", "--yes", option, "soon", "--connect", "test:///default", spec)
        assert result.code == 1, result.err
        assert result.err.startswith(f"error: {option}: "), result.err
        assert "Traceback" not in result.err
