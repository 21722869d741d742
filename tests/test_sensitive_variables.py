"""A sensitive variable's value never shows: plan text, plan JSON, saved plans, errors, and the
ownership record (with its cloud-init copy) written into libvirt's metadata."""

from __future__ import annotations

import json
from pathlib import Path

from vmctl.libvirtxml.definition import guest_record
from vmctl.libvirtxml.metadata import guest_xml
from vmctl.model import HostFacts, LiveState
from vmctl.plan import saved
from vmctl.plan.planner import make_plan
from vmctl.plan.render import plan_json, render_text
from vmctl.resolve.desired import desired_state
from vmctl.resolve.localfiles import LocalFacts
from vmctl.spec.load import load_spec
from vmctl.spec.variables import VarInputs

from .conftest import run_cli

SECRET = "correct-horse-battery"
SPEC = """\
version: 1
project: lab
variables:
  token: {type: string, sensitive: true}
  greeting: {type: string, default: hello}
guests:
  web:
    cloud_init:
      user_data:
        runcmd: [["register", "--with", "${var.token}"]]
        write_files: [{path: /etc/motd, content: "${var.greeting}, key ${var.token} inside"}]
      meta_data: {note: "${var.token}"}
"""


class _Session:
    def __init__(self, desired: object) -> None:
        self.desired = desired
        self.uri = "test:///default"


def test_a_sensitive_value_is_masked_everywhere_vmctl_writes(tmp_path: Path) -> None:
    (tmp_path / "vmctl.yaml").write_text(SPEC)
    inputs = VarInputs(args=(f"token={SECRET}", "greeting=hi"))
    spec = load_spec([str(tmp_path / "vmctl.yaml")], None, inputs)
    desired = desired_state(spec, LocalFacts(), HostFacts())
    plan = make_plan(desired, LiveState(), "test:///default")
    assert SECRET in json.dumps(desired.guests[0].cloud_init.user_data)  # the seed gets the real value
    text, document = render_text(plan), json.dumps(plan_json(plan))
    assert SECRET not in text + document
    assert "(sensitive)" in text and "hi, key" not in text  # the whole string that holds it is masked
    saved.save(str(tmp_path / "plan.json"), [(plan, _Session(desired), LiveState())], [], inputs)  # type: ignore[list-item]
    saved_text = (tmp_path / "plan.json").read_text()
    assert SECRET not in saved_text
    assert json.loads(saved_text)["vars"] == ["greeting=hi"]  # a sensitive --var is not kept either
    record = guest_xml(guest_record(desired.guests[0], desired))
    assert SECRET not in record and "(sensitive)" in record


def test_a_sensitive_value_is_masked_in_errors(tmp_path: Path) -> None:
    (tmp_path / "vmctl.yaml").write_text(SPEC + "    cpu_model: ${var.token}!\n")
    result = run_cli("validate", "vmctl.yaml", "--var", f"token={SECRET}", cwd=tmp_path)
    assert result.code == 1 and "cpu_model" in result.err
    assert SECRET not in result.out + result.err
