"""`vmctl validate` on invalid specs: every problem, located, one per line, exit 1, never a traceback.

The corpus is tests/spec/bad/*.yaml: one file per kind of mistake (a few with several at once).
Each file opens with comments that state what `vmctl validate FILE` must report:

    # One line describing the mistake.
    # args: --workspace 'bad ws'          optional: extra arguments for `vmctl validate`
    # env: NAME=VALUE                     optional: an environment variable for the run (repeatable)
    # xfail: why                          optional: vmctl is known to get this wrong (strict xfail)
    # expect: LINE:COL PATH: MESSAGE      one per problem; '-' for LINE:COL when the problem has no
                                          (FILE:LINE:COL when it is in another file, a var file or
                                          the N-th --var argument: --var:N:COL)
    # expect-hint: HINT                   place in a file, '-' for PATH when it has no path;
                                          MESSAGE and HINT are substrings of what vmctl prints

Line numbers count the comment lines too. A problem prints as `FILE:LINE:COL: PATH: MESSAGE (hint: HINT)`;
the test demands one printed line per expected problem: nothing missing, nothing extra.

tests/spec/multi/ holds the multi-file cases (several files given at once, directories).
"""

from __future__ import annotations

import codecs
import json
import re
import shlex
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import CliResult


HERE = Path(__file__).parent
BAD = HERE / "bad"
MULTI = HERE / "multi"

_EXPECT = re.compile(r"^# expect: (?:(?:(?P<file>\S+?):)?(?P<line>\d+):(?P<col>\d+)|-) (?P<path>\S+): (?P<message>.+)$")
_HINT = re.compile(r"^# expect-hint: (?P<hint>.+)$")
_PROBLEM_LINE = re.compile(r"^(?P<file>[^:\n]+):(?P<line>\d+):(?P<col>\d+): (?P<rest>.*)$")
_SUMMARY = re.compile(r"^error: (\d+) problems? in the spec$")


@dataclass
class Expected:
    file: str | None  # None: the problem has no location
    line: int | None
    column: int | None
    path: str  # "" when the problem has no path
    message: str
    hint: str | None = None

    def prefix(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}: " if self.line is not None else ""
        return where + (f"{self.path}: " if self.path else "")

    def __str__(self) -> str:
        return self.prefix() + f"...{self.message}..." + (f" (hint: ...{self.hint}...)" if self.hint else "")


@dataclass
class Case:
    name: str
    file: Path
    args: list[str]
    expected: list[Expected]
    xfail: str | None
    env: dict[str, str]


def read_env(path: Path) -> dict[str, str]:
    lines = path.read_text("utf-8").splitlines()
    pairs = [line.removeprefix("# env:").strip().partition("=") for line in lines if line.startswith("# env:")]
    return {name: value for name, _, value in pairs}


def read_expectations(path: Path, display: str) -> tuple[list[Expected], list[str], str | None]:
    expected: list[Expected] = []
    args: list[str] = []
    xfail = None
    for raw in path.read_text("utf-8").splitlines():
        if not raw.startswith("#"):
            break
        if m := _EXPECT.match(raw):
            line = int(m["line"]) if m["line"] else None
            col = int(m["col"]) if m["col"] else None
            expected.append(
                Expected(
                    (m["file"] or display) if line is not None else None,
                    line,
                    col,
                    "" if m["path"] == "-" else m["path"],
                    m["message"],
                )
            )
        elif m := _HINT.match(raw):
            assert expected, f"{path.name}: expect-hint before any expect"
            expected[-1].hint = m["hint"]
        elif raw.startswith("# args:"):
            args = shlex.split(raw.removeprefix("# args:"))
        elif raw.startswith("# env:"):
            pass  # read_env
        elif raw.startswith("# xfail:"):
            xfail = raw.removeprefix("# xfail:").strip()
        else:
            assert not raw.startswith("# expect"), f"{path.name}: malformed expectation {raw!r}"
    return expected, args, xfail


def corpus() -> list[Case]:
    cases = []
    for path in sorted(BAD.glob("*.yaml")):
        expected, args, xfail = read_expectations(path, path.name)
        cases.append(Case(path.stem, path, args, expected, xfail, read_env(path)))
    return cases


CASES = corpus()


def params(cases: Sequence[Case]) -> list[Any]:
    out = []
    for case in cases:
        marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
        out.append(pytest.param(case, id=case.name, marks=marks))
    return out


# -- matching printed problems against expectations ------------------------------------------------


@dataclass
class Printed:
    """One problem as `vmctl validate` printed it on stderr."""

    text: str

    def __str__(self) -> str:
        return self.text

    def matches(self, want: Expected) -> bool:
        if not self.text.startswith(want.prefix()):
            return False
        rest = self.text[len(want.prefix()) :]
        if want.line is None and _PROBLEM_LINE.match(self.text):
            return False  # expected no location, but it has one
        message, _, hint = rest.partition(" (hint: ")
        if want.message not in message:
            return False
        return want.hint is None or want.hint in hint


def problem_lines(result: CliResult) -> list[str]:
    """The problem lines of stderr: everything but the closing 'error: N problems in the spec'."""
    lines = result.err.splitlines()
    assert lines, f"nothing on stderr; stdout was:\n{result.out}"
    assert _SUMMARY.match(lines[-1]), f"stderr does not end with 'error: N problems in the spec':\n{result.err}"
    return lines[:-1]


def match_all(items: Sequence[Any], expected: Sequence[Expected], fits: Callable[[Any, Expected], bool]) -> list[str]:
    """One-to-one matching of expectations to printed problems; returns what failed, for the message."""
    owner: dict[int, int] = {}  # item index -> expectation index

    def place(e: int, seen: set[int]) -> bool:
        for i, item in enumerate(items):
            if i in seen or not fits(item, expected[e]):
                continue
            seen.add(i)
            if i not in owner or place(owner[i], seen):
                owner[i] = e
                return True
        return False

    failures = [f"missing: {expected[e]}" for e in range(len(expected)) if not place(e, set())]
    failures += [f"extra:   {items[i]}" for i in range(len(items)) if i not in owner]
    return failures


def assert_clean_failure(result: CliResult) -> None:
    both = result.out + result.err
    assert result.code == 1, f"exit code {result.code}, expected 1\n{both}"
    assert "Traceback" not in both, both
    assert "internal error" not in both, both


def assert_reports(result: CliResult, expected: Sequence[Expected]) -> None:
    assert_clean_failure(result)
    lines = problem_lines(result)
    failures = match_all([Printed(line) for line in lines], expected, Printed.matches)
    assert not failures, "\n".join(["problems printed:", *lines, "", *failures])
    count = int(_SUMMARY.match(result.err.splitlines()[-1])[1])  # type: ignore[index]
    assert count == len(expected), f"the summary counts {count} problems"


# -- the corpus -----------------------------------------------------------------------------------


def test_corpus_is_big_enough() -> None:
    assert len(CASES) >= 45
    assert all(c.expected for c in CASES), [c.name for c in CASES if not c.expected]
    assert sum(len(c.expected) > 1 for c in CASES) >= 3


@pytest.mark.parametrize("case", params(CASES))
def test_bad_spec(case: Case, cli: Callable[..., CliResult]) -> None:
    result = cli("validate", *case.args, case.file.name, cwd=BAD, env=case.env)
    assert_reports(result, case.expected)


def json_problems(result: CliResult) -> list[dict[str, Any]]:
    data = json.loads(result.out)
    assert data["valid"] is False
    problems: list[dict[str, Any]] = data["problems"]
    for p in problems:
        assert set(p) == {"file", "line", "column", "path", "message", "hint"}
    return problems


def render(p: dict[str, Any]) -> str:
    """A JSON problem as the text output prints it."""
    where = f"{p['file']}:{p['line']}:{p['column']}: " if p["line"] is not None else ""
    path = f"{p['path']}: " if p["path"] else ""
    hint = f" (hint: {p['hint']})" if p["hint"] else ""
    return f"{where}{path}{p['message']}{hint}"


def json_fits(p: dict[str, Any], want: Expected) -> bool:
    return (
        p["file"] == want.file
        and p["line"] == want.line
        and p["column"] == want.column
        and p["path"] == want.path
        and want.message in p["message"]
        and (want.hint is None or want.hint in (p["hint"] or ""))
    )


@pytest.mark.parametrize("case", params(CASES))
def test_bad_spec_json(case: Case, cli: Callable[..., CliResult]) -> None:
    """--json reports the same problems as structured data, and nothing else on stdout."""
    result = cli("validate", "--json", *case.args, case.file.name, cwd=BAD, env=case.env)
    assert result.code == 1, result
    assert "Traceback" not in result.out + result.err
    problems = json_problems(result)
    failures = match_all(problems, case.expected, json_fits)
    assert not failures, "\n".join([json.dumps(problems, indent=2), *failures])
    text = cli("validate", *case.args, case.file.name, cwd=BAD, env=case.env)
    assert [render(p) for p in problems] == problem_lines(text)


# -- files that cannot be committed as text, and files that are not there --------------------------


def test_empty_file(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    (tmp_path / "vmctl.yaml").write_bytes(b"")
    result = cli("validate", "vmctl.yaml", cwd=tmp_path)
    assert_reports(result, [Expected("vmctl.yaml", 1, 1, "", "the file is empty", "version: 1")])


def test_whitespace_only_file(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    (tmp_path / "vmctl.yaml").write_bytes(b"\n   \n\n")
    result = cli("validate", "vmctl.yaml", cwd=tmp_path)
    assert_reports(result, [Expected("vmctl.yaml", 1, 1, "", "the file is empty")])


def test_binary_file(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    (tmp_path / "disk.yaml").write_bytes(b"QFI\xfb\x00\x00\x00\x03" + bytes(range(256)) * 4)
    result = cli("validate", "disk.yaml", cwd=tmp_path)
    assert_reports(result, [Expected("disk.yaml", 1, 1, "", "binary file")])


def test_not_utf8(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    # Latin-1 'é' on line 3, column 16: the place of the first byte that is not UTF-8
    (tmp_path / "vmctl.yaml").write_bytes(b"version: 1\nproject: lab\nconnection: caf\xe9\n")
    result = cli("validate", "vmctl.yaml", cwd=tmp_path)
    assert_reports(result, [Expected("vmctl.yaml", 3, 16, "", "not UTF-8 text: save it as UTF-8")])


def test_not_utf8_column_counts_characters(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    # 'connection: ét' is 14 characters (15 bytes): the stray byte is at column 15
    (tmp_path / "vmctl.yaml").write_bytes(b"version: 1\nproject: lab\nconnection: \xc3\xa9t\xe9\n")
    result = cli("validate", "vmctl.yaml", cwd=tmp_path)
    assert_reports(result, [Expected("vmctl.yaml", 3, 15, "", "not UTF-8 text")])


SPEC_WITH_ONE_PROBLEM = 'version: 1\nproject: lab\nguests:\n  web: {cloud_init: {meta_data: {note: "ü😀"}}, cpus: 0}\n'
BYTE_ORDER_MARKS = {
    "utf-8": codecs.BOM_UTF8,
    "utf-16-le": codecs.BOM_UTF16_LE,
    "utf-16-be": codecs.BOM_UTF16_BE,
    "utf-32-le": codecs.BOM_UTF32_LE,
    "utf-32-be": codecs.BOM_UTF32_BE,
}


@pytest.mark.parametrize("encoding", list(BYTE_ORDER_MARKS))
def test_text_that_starts_with_a_byte_order_mark(encoding: str, cli: Callable[..., CliResult], tmp_path: Path) -> None:
    """What editors save as 'Unicode' is read like UTF-8, lines and columns in characters."""
    text = SPEC_WITH_ONE_PROBLEM
    (tmp_path / "vmctl.yaml").write_bytes(BYTE_ORDER_MARKS[encoding] + text.encode(encoding))
    result = cli("validate", "vmctl.yaml", cwd=tmp_path)
    column = text.splitlines()[3].index("0}") + 1  # 54: the emoji is one character, whatever its bytes
    assert_reports(result, [Expected("vmctl.yaml", 4, column, "guests.web.cpus", "must be at least 1; got 0")])
    (tmp_path / "vmctl.yaml").write_bytes(BYTE_ORDER_MARKS[encoding] + text.replace("0}", "2}").encode(encoding))
    assert cli("validate", "vmctl.yaml", cwd=tmp_path).code == 0


def test_utf16_that_breaks_off(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    """A UTF-16 byte-order mark, then an odd byte at the end: the place, and what to do."""
    body = "version: 1\nproject: lab\n".encode("utf-16-le") + b"x"
    (tmp_path / "vmctl.yaml").write_bytes(codecs.BOM_UTF16_LE + body)
    result = cli("validate", "vmctl.yaml", cwd=tmp_path)
    want = "not UTF-16 text, though it starts with a UTF-16 byte-order mark: save it as UTF-8"
    assert_reports(result, [Expected("vmctl.yaml", 3, 1, "", want)])


def test_utf16_without_byte_order_mark(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    """Without a mark, NUL bytes are all there is to go by: binary, with a hint in case it is text."""
    (tmp_path / "vmctl.yaml").write_bytes("version: 1\nproject: lab\n".encode("utf-16-le"))
    result = cli("validate", "vmctl.yaml", cwd=tmp_path)
    assert_reports(result, [Expected("vmctl.yaml", 1, 1, "", "binary file", "save it as UTF-8")])


def test_control_character(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    (tmp_path / "vmctl.yaml").write_bytes(b'version: 1\nproject: lab\nconnection: "a\x07"\n')
    result = cli("validate", "vmctl.yaml", cwd=tmp_path)
    assert_reports(result, [Expected("vmctl.yaml", 3, 15, "", "the character U+0007 is not allowed", "\\x07")])


def test_file_too_large(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    """A spec file is at most 1MiB; the message gives the limit and the file's size."""
    (tmp_path / "vmctl.yaml").write_bytes(b"version: 1\n" + b"#" * (3 * 1024**2))
    result = cli("validate", "vmctl.yaml", cwd=tmp_path)
    want = "a spec file may be at most 1MiB (1,048,576 bytes): this one is 3,145,739 bytes"
    assert_reports(result, [Expected("vmctl.yaml", 1, 1, "", want, "split it into several files")])


def test_endless_file(cli: Callable[..., CliResult]) -> None:
    """A device that never ends is read up to the limit, not forever."""
    result = cli("validate", "/dev/zero")
    assert_reports(result, [Expected("/dev/zero", 1, 1, "", "at most 1MiB (1,048,576 bytes): this one is larger")])


def test_user_data_file_too_large(cli: Callable[..., CliResult], write: Callable[[str, str], Path]) -> None:
    write("big-user-data", "#cloud-config\n" + "#" * 1024**2)
    path = write(
        "vmctl.yaml",
        """
        version: 1
        project: lab
        guests:
          web:
            cloud_init: {user_data_file: big-user-data}
        """,
    )
    result = cli("validate", "vmctl.yaml", cwd=path.parent)
    path_ = "guests.web.cloud_init.user_data_file"
    assert_reports(result, [Expected("vmctl.yaml", 5, 34, path_, "user-data may be at most 1MiB")])


def test_missing_file(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    result = cli("validate", "nope.yaml", cwd=tmp_path)
    assert_reports(result, [Expected(None, None, None, "", "nope.yaml: no such file")])


def test_missing_default_file(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    result = cli("validate", cwd=tmp_path)
    assert_reports(result, [Expected(None, None, None, "", "no vmctl.yaml in the current directory")])


def test_workspace_from_environment(cli: Callable[..., CliResult]) -> None:
    result = cli("validate", "workspace-invalid.yaml", cwd=BAD, env={"VMCTL_WORKSPACE": "a/b"})
    assert_reports(result, [Expected(None, None, None, "workspace", "invalid workspace name 'a/b'")])


def test_global_workspace_option(cli: Callable[..., CliResult]) -> None:
    result = cli("--workspace=-x", "validate", "workspace-invalid.yaml", cwd=BAD)  # a value starting with - needs the =
    assert_reports(result, [Expected(None, None, None, "workspace", "invalid workspace name '-x'")])


# -- detection, for cases whose xfail is about the location or wording only ------------------------


def test_duplicate_mac_is_detected(cli: Callable[..., CliResult]) -> None:
    result = cli("validate", "--json", "mac-duplicate.yaml", cwd=BAD)
    problems = json_problems(result)
    assert [(p["path"], "is used by web.primary too" in p["message"]) for p in problems] == [
        ("guests.db.nics.primary.mac", True)
    ]


def test_duplicate_mac_on_one_guest(cli: Callable[..., CliResult], write: Callable[[str, str], Path]) -> None:
    path = write(
        "vmctl.yaml",
        """
        version: 1
        project: lab
        guests:
          web:
            nics:
              a: {user: {}, mac: "52:54:00:00:00:01"}
              b: {user: {}, mac: "52:54:00:00:00:01"}
        """,
    )
    result = cli("validate", "--json", "vmctl.yaml", cwd=path.parent)
    problems = json_problems(result)
    assert [(p["path"], p["message"]) for p in problems] == [
        ("guests.web.nics.b.mac", "MAC 52:54:00:00:00:01 is used by web.a too")
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("|\n        #cloud-config\n        packages: [nginx\n", "user-data is #cloud-config but not valid YAML"),
        ("|\n        packages: [nginx]\n", "user-data text has no header cloud-init recognises"),
        ('""', "user-data text has no header cloud-init recognises"),
    ],
    ids=["invalid-cloud-config", "no-header", "empty"],
)
def test_user_data_text_is_checked(
    text: str, message: str, cli: Callable[..., CliResult], write: Callable[[str, str], Path]
) -> None:
    spec = "version: 1\nproject: lab\nguests:\n  web:\n    cloud_init:\n      user_data: " + text
    path = write("vmctl.yaml", spec)
    problems = json_problems(cli("validate", "--json", "vmctl.yaml", cwd=path.parent))
    assert len(problems) == 1
    assert problems[0]["path"].startswith("guests.web.cloud_init")
    assert problems[0]["message"].startswith(message)


def test_user_data_file_is_checked(cli: Callable[..., CliResult], write: Callable[[str, str], Path]) -> None:
    write("cloud/user-data", "#cloud-config\npackages: [nginx\n")
    path = write(
        "vmctl.yaml",
        """
        version: 1
        project: lab
        guests:
          web:
            cloud_init: {user_data_file: cloud/user-data}
        """,
    )
    problems = json_problems(cli("validate", "--json", "vmctl.yaml", cwd=path.parent))
    assert len(problems) == 1
    assert problems[0]["message"].startswith("user-data is #cloud-config but not valid YAML")


def test_file_that_is_a_directory(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    """A directory named like a spec file is read as a directory of specs (here: an empty one)."""
    (tmp_path / "vmctl.yaml").mkdir()
    result = cli("validate", "vmctl.yaml", cwd=tmp_path)
    assert_reports(result, [Expected(None, None, None, "", "vmctl.yaml: no *.yaml or *.yml files")])


def test_corpus_file_copied_elsewhere_reports_its_own_name(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    """FILE is the path as given on the command line."""
    shutil.copy(BAD / "size-no-unit.yaml", tmp_path / "spec.yaml")
    (tmp_path / "sub").mkdir()
    result = cli("validate", "../spec.yaml", cwd=tmp_path / "sub")
    case = next(c for c in CASES if c.name == "size-no-unit")
    want = case.expected[0]
    assert_reports(result, [Expected("../spec.yaml", want.line, want.column, want.path, want.message, want.hint)])


# -- several files ----------------------------------------------------------------------------------


def test_same_guest_in_two_files(cli: Callable[..., CliResult]) -> None:
    d = MULTI / "same-guest"
    result = cli("validate", "a.yaml", "b.yaml", cwd=d)
    assert_reports(
        result,
        [Expected("b.yaml", 4, 3, "guests.web", "guest 'web' is defined twice: here and at a.yaml:5:3", "keep one")],
    )


def test_same_guest_in_a_directory(cli: Callable[..., CliResult]) -> None:
    """A directory is all its *.yaml files, in name order; FILE names the file inside it."""
    result = cli("validate", "same-guest", cwd=MULTI)
    assert_reports(
        result,
        [Expected("same-guest/b.yaml", 4, 3, "guests.web", "defined twice: here and at same-guest/a.yaml:5:3")],
    )


def test_project_disagrees(cli: Callable[..., CliResult]) -> None:
    result = cli("validate", "project-disagrees", cwd=MULTI)
    assert_reports(
        result,
        [
            Expected(
                "project-disagrees/b.yaml",
                2,
                10,
                "project",
                "project is 'shop' here but 'lab' in project-disagrees/a.yaml:2:10",
                "all files of one spec must agree on project",
            )
        ],
    )


def test_defaults_in_two_files(cli: Callable[..., CliResult]) -> None:
    result = cli("validate", "defaults-twice", cwd=MULTI)
    assert_reports(
        result,
        [
            Expected(
                "defaults-twice/b.yaml",
                2,
                1,
                "defaults",
                "defaults are set here and at defaults-twice/a.yaml:3:1",
                "keep defaults in one file",
            )
        ],
    )


def test_directory_without_yaml(cli: Callable[..., CliResult]) -> None:
    result = cli("validate", "no-yaml", cwd=MULTI)
    assert_reports(result, [Expected(None, None, None, "", "no-yaml: no *.yaml or *.yml files in this directory")])


def test_missing_file_among_others(cli: Callable[..., CliResult]) -> None:
    """A missing file does not hide the problems of the files that are there."""
    result = cli("validate", "problems-in-each/a.yaml", "missing.yaml", "problems-in-each/b.yaml", cwd=MULTI)
    assert_reports(
        result,
        [
            Expected(None, None, None, "", "missing.yaml: no such file"),
            Expected("problems-in-each/a.yaml", 5, 13, "guests.web.memory", "a size needs a unit"),
            Expected("problems-in-each/b.yaml", 5, 4, "", "invalid YAML"),
        ],
    )


def test_problems_of_every_file(cli: Callable[..., CliResult]) -> None:
    result = cli("validate", "problems-in-each", cwd=MULTI)
    assert_reports(
        result,
        [
            Expected("problems-in-each/a.yaml", 5, 13, "guests.web.memory", "a size needs a unit"),
            Expected("problems-in-each/b.yaml", 5, 4, "", "invalid YAML"),
            Expected("problems-in-each/c.yaml", 1, 10, "version", "must be 1; got 2"),
        ],
    )


def test_cross_file_reference_typo(cli: Callable[..., CliResult]) -> None:
    """An image defined in one file and misspelt in another: did-you-mean across files."""
    result = cli("validate", "cross-file-ref", cwd=MULTI)
    assert_reports(
        result,
        [
            Expected(
                "cross-file-ref/guests.yaml",
                5,
                21,
                "guests.web.disks.root.image",
                "no image named 'debain12'",
                "did you mean 'debian12'?",
            )
        ],
    )


def test_same_pool_in_two_files(cli: Callable[..., CliResult]) -> None:
    result = cli("validate", "same-pool", cwd=MULTI)
    assert_reports(
        result,
        [
            Expected(
                "same-pool/b.yaml",
                3,
                3,
                "pools.default",
                "pool 'default' is defined twice: here and at same-pool/a.yaml:4:3",
            )
        ],
    )


def test_multi_json(cli: Callable[..., CliResult]) -> None:
    result = cli("validate", "--json", "same-guest", cwd=MULTI)
    assert json_problems(result) == [
        {
            "file": "same-guest/b.yaml",
            "line": 4,
            "column": 3,
            "path": "guests.web",
            "message": "guest 'web' is defined twice: here and at same-guest/a.yaml:5:3",
            "hint": "keep one of them",
        }
    ]
