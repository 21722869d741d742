"""Specs are read by libyaml when PyYAML has it (pip's wheels do), by PyYAML's own Python parser when
it has not: the same problems at the same places either way, since vmctl's bounds count the events
both produce."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

HERE = Path(__file__).parent
# Every YAML-level mistake in the corpus, the user-data text read the same way, and the examples.
FILES = sorted([*HERE.glob("bad/yaml-*.yaml"), *HERE.glob("bad/user-data-*.yaml"), *(ROOT / "examples").glob("*.yaml")])

_PROBLEMS_WHERE = """
import json, sys
if sys.argv[1] == "python":
    sys.modules["yaml._yaml"] = None  # as if PyYAML had been built without libyaml
from vmctl.errors import SpecError
from vmctl.spec import bounded
from vmctl.spec.load import load_spec
found = {"libyaml": bounded.LIBYAML}
for path in sys.argv[2:]:
    try:
        load_spec([path])
        found[path] = []
    except SpecError as exc:
        found[path] = [f"{p.location}: {p.path}" for p in exc.problems]
print(json.dumps(found))
"""


def problems_where(parser: str, tmp_path: Path) -> dict[str, object]:
    child = subprocess.run(
        [sys.executable, "-c", _PROBLEMS_WHERE, parser, *map(str, FILES)],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "VMCTL_CACHE": str(tmp_path / parser)},
    )
    found: dict[str, object] = json.loads(child.stdout)
    return found


def test_libyaml_and_the_python_parser_find_the_same_problems_at_the_same_places(tmp_path: Path) -> None:
    with_libyaml = problems_where("libyaml", tmp_path)
    without = problems_where("python", tmp_path)
    assert (with_libyaml.pop("libyaml"), without.pop("libyaml")) == (True, False)
    assert with_libyaml == without
    # The comparison means something: the corpus is full of located YAML problems.
    assert sum(1 for where in without.values() if where) > 10
