"""User-data is checked against cloud-init's own schema before any guest boots, where it was written.

With cloud-init installed (CI installs Debian's package: scripts/system-deps.sh) the real schema is used;
a stand-in schema file shows the mechanism on any machine, and an empty search path stands for a
machine without cloud-init, where vmctl says once that user-data was not checked.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import TEST_DRIVER, CliResult
from vmctl.cloudinit import schema as cloud_schema

Write = Callable[[str, str], Path]
Cli = Callable[..., CliResult]

REAL = cloud_schema.schema_path()
needs_cloud_init = pytest.mark.skipif(REAL is None, reason="cloud-init is not installed (scripts/system-deps.sh)")

SPEC = """
version: 1
project: ud
guests:
  web:
    cloud_init:
      user_data:
        packages: 5
"""


@pytest.fixture
def without_cloud_init(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(cloud_schema, "SEARCH_PATHS", (str(tmp_path / "no-python-here"),))


@pytest.fixture
def stand_in_schema(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A cloud-config schema that only knows `packages` (a list of strings), where cloud-init keeps its own."""
    target = tmp_path / "dist-packages" / "cloudinit/config/schemas/schema-cloud-config-v1.json"
    target.parent.mkdir(parents=True)
    schema = {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "$defs": {"packages": {"type": "array", "items": {"type": "string"}}},
        "properties": {"packages": {"$ref": "#/$defs/packages"}},
    }
    target.write_text(json.dumps(schema))
    monkeypatch.setattr(cloud_schema, "SEARCH_PATHS", (str(tmp_path / "dist-*"),))


@needs_cloud_init
def test_a_wrong_type_is_reported_at_its_node_in_the_spec(cli: Cli, write: Write) -> None:
    spec = write("vmctl.yaml", SPEC)
    result = cli("validate", str(spec))
    assert result.code == 1
    assert f"{spec}:7:19: guests.web.cloud_init.user_data.packages: 5 is not of type 'array'" in result.err
    assert "Traceback" not in result.err and "internal error" not in result.err


@needs_cloud_init
def test_plan_refuses_the_same_user_data_before_touching_the_hypervisor(cli: Cli, write: Write) -> None:
    spec = write("vmctl.yaml", SPEC)
    result = cli("plan", "--connect", TEST_DRIVER, str(spec))
    assert result.code == 1
    assert "guests.web.cloud_init.user_data.packages: 5 is not of type 'array'" in result.err


@needs_cloud_init
def test_problems_in_a_user_data_file_are_located_in_that_file(cli: Cli, write: Write, tmp_path: Path) -> None:
    write("user-data.yaml", "#cloud-config\npackages: [nginx]\nusers:\n  - name: bob\n    sudo: 5\n")
    write(
        "vmctl.yaml",
        """
        version: 1
        project: ud
        guests:
          web: {cloud_init: {user_data_file: user-data.yaml}}
        """,
    )
    result = cli("validate", cwd=tmp_path)
    assert result.code == 1
    expected = (
        "user-data.yaml:5:11: guests.web.cloud_init.user_data_file: users[0].sudo: "
        "5 is not of type 'string', 'null', 'boolean'"
    )
    assert expected in result.err


@needs_cloud_init
def test_a_cloud_config_string_in_the_spec_names_the_line_inside_it(cli: Cli, write: Write) -> None:
    spec = write(
        "vmctl.yaml",
        """
        version: 1
        project: ud
        guests:
          web:
            cloud_init:
              user_data: |
                #cloud-config
                runcmd: reboot
        """,
    )
    result = cli("validate", str(spec))
    assert result.code == 1
    assert "guests.web.cloud_init.user_data: its line 2: runcmd: 'reboot' is not of type 'array'" in result.err


@needs_cloud_init
def test_valid_user_data_passes_without_a_note(cli: Cli, write: Write) -> None:
    text = SPEC.replace("packages: 5", "packages: [nginx]\n        runcmd: [[touch, /x]]\n        users: [default]")
    result = cli("validate", str(write("vmctl.yaml", text)))
    assert (result.code, result.err) == (0, "")


@needs_cloud_init
def test_a_secret_in_a_wrong_place_is_not_quoted(cli: Cli, write: Write) -> None:
    text = SPEC.replace("packages: 5", "users:\n          - {name: bob, passwd: 0xdeadbeef1234, sudo: 5}")
    text = text.replace("passwd: 0xdeadbeef1234", "passwd: [s3cret-planted-value]")
    result = cli("validate", str(write("vmctl.yaml", text)))
    assert result.code == 1
    assert "users[0]" in result.err
    assert "s3cret-planted-value" not in result.out + result.err


@pytest.mark.usefixtures("stand_in_schema")
def test_the_schema_file_cloud_init_installs_is_the_one_used(cli: Cli, write: Write) -> None:
    spec = write("vmctl.yaml", SPEC.replace("packages: 5", "packages: [nginx, 3]"))
    result = cli("validate", str(spec))
    assert result.code == 1
    assert f"{spec}:7:27: guests.web.cloud_init.user_data.packages[1]: 3 is not of type 'string'" in result.err


def packages(count: int) -> str:
    """SPEC with `count` packages, the last of them a number (which cloud-init's schema refuses)."""
    return SPEC.replace("packages: 5", f"packages: [{'nginx, ' * (count - 1)}3]")


@pytest.mark.usefixtures("stand_in_schema")
def test_user_data_past_the_runs_budget_is_not_checked_and_a_note_says_so(cli: Cli, write: Write) -> None:
    """jsonschema takes seconds over tens of thousands of values: a run checks at most CHECK_BUDGET."""
    result = cli("validate", str(write("vmctl.yaml", packages(cloud_schema.CHECK_BUDGET))))
    assert (result.code, result.err) == (0, f"note: {cloud_schema.TOO_LARGE_TO_CHECK}\n")
    assert "more than 10,000 values in all" in result.err


@pytest.mark.usefixtures("stand_in_schema")
def test_counted_guests_share_their_user_data_and_its_check(cli: Cli, write: Write) -> None:
    """Three guests of one user-data of 4,000 values cost the budget 4,000, not 12,000: another
    guest's 3,000 are still checked."""
    web = packages(4_000).replace("  web:", "  web:\n    count: 3")
    db = "  db: {cloud_init: {user_data: {packages: [%s3]}}}\n" % ("nginx, " * 2_999)
    result = cli("validate", str(write("vmctl.yaml", web + db)))
    assert result.code == 1
    assert "guests.web.cloud_init.user_data.packages[3999]: 3 is not of type 'string'" in result.err
    assert "guests.db.cloud_init.user_data.packages[2999]: 3 is not of type 'string'" in result.err


@pytest.mark.usefixtures("without_cloud_init")
def test_user_data_text_is_read_as_cloud_init_reads_it_up_to_the_runs_budget(cli: Cli, write: Write) -> None:
    """A tab inside a value: cloud-init's YAML parser refuses it (tests/spec/bad/user-data-tab-in-value.yaml).
    Past EXACT_READ_BUDGET of text in a run, libyaml reads it, takes the tab, and a note says so."""
    padding = "".join(f"          - echo {n}\n" for n in range(cloud_schema.EXACT_READ_BUDGET // 8))
    spec = SPEC.replace("      user_data:\n        packages: 5", "      user_data: |\n        #cloud-config\n")
    text = spec + "        runcmd:\n" + padding + "          - echo a\tb\n"
    result = cli("validate", str(write("vmctl.yaml", text)))
    assert result.code == 0, result.err
    assert f"note: {cloud_schema.READ_WITH_LIBYAML}" in result.err.splitlines()


@pytest.mark.usefixtures("without_cloud_init")
def test_without_cloud_init_validate_says_once_that_user_data_was_not_checked(cli: Cli, write: Write) -> None:
    text = SPEC.replace("  web:", "  web:\n    count: 3") + "  db: {cloud_init: {user_data: {packages: 6}}}\n"
    result = cli("validate", str(write("vmctl.yaml", text)))
    assert result.code == 0
    assert result.err.count("user-data was not checked") == 1
    assert "cloud-init is not installed" in result.err


@pytest.mark.usefixtures("without_cloud_init")
def test_without_cloud_init_plan_says_it_too(cli: Cli, write: Write) -> None:
    result = cli("plan", "--connect", TEST_DRIVER, str(write("vmctl.yaml", SPEC)))
    assert result.code == 0, result.err
    assert result.err.count("note: user-data was not checked") == 1


@pytest.mark.usefixtures("without_cloud_init")
def test_without_user_data_there_is_nothing_to_say(cli: Cli, write: Write) -> None:
    text = SPEC.replace("cloud_init:\n      user_data:\n        packages: 5", "cpus: 1")
    result = cli("validate", str(write("vmctl.yaml", text)))
    assert (result.code, result.err) == (0, "")
