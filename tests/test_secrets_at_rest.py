"""Secrets at rest: seeds and saved plans are their owner's alone, and a planted secret shows up
nowhere but inside the seed: not in any output, saved plan, cache, libvirt XML or QEMU's command line.
"""

from __future__ import annotations

import os
import stat
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import libvirt
import pytest

from tests.conftest import CliResult
from tests.test_libvirtd_apply import make_image, spec_text

pytestmark = [pytest.mark.libvirtd, pytest.mark.usefixtures("cleanup")]
Cli = Callable[..., CliResult]


def guest(name: str, password: str, token: str) -> str:
    return f"""\
  {name}:
    state: stopped
    memory: 256MiB
    disks: {{root: {{image: base, size: 1GiB}}}}
    cloud_init:
      sensitive: [write_files]
      user_data:
        password: {password}
        chpasswd: {{expire: false}}
        write_files:
          - {{path: /etc/app.conf, content: "token={token}"}}
"""


def test_a_planted_secret_stays_in_the_seed(cli: Cli, tmp_path: Path, project: str, scratch: Path) -> None:
    password, token = f"pw-{uuid.uuid4().hex}", f"tk-{uuid.uuid4().hex}"
    make_image(tmp_path / "images" / "base.qcow2")
    spec = tmp_path / "vmctl.yaml"
    no_network = "networks:\n  net: {mode: isolated, ipv4: 198.51.100.225/27}\n"
    spec.write_text(spec_text(project, scratch, guest(f"{project}-web", password, token)).replace(no_network, ""))
    cache = tmp_path / "cache"
    env = {"VMCTL_CACHE": str(cache)}
    saved = tmp_path / "plan.json"
    saved.write_text("{}")
    saved.chmod(0o644)  # an existing file is made private too
    results = [
        cli("validate", str(spec), env=env),
        cli("plan", str(spec), env=env),
        cli("plan", "--json", str(spec), env=env),
        cli("plan", "-o", str(saved), str(spec), env=env),
        cli("apply", "--yes", str(saved), env=env),
        cli("status", "--json", str(spec), env=env),
        cli("xml", "-f", str(spec), f"{project}-web", env=env),
    ]
    assert [r.code for r in results] == [0] * len(results), [r.out + r.err for r in results]

    seeds = [p for p in scratch.iterdir() if p.name.startswith(f"{project}-web-seed-")]
    assert len(seeds) == 1
    seed = seeds[0]
    assert password.encode() in seed.read_bytes() and token.encode() in seed.read_bytes()  # the test can fail
    mode = seed.stat()
    assert stat.S_IMODE(mode.st_mode) == 0o600 and mode.st_uid == os.getuid(), oct(mode.st_mode)
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600

    conn = libvirt.open("qemu:///system")
    try:
        dom = conn.lookupByName(f"{project}-web")
        xmls = [dom.XMLDesc(0), dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)]
        pool = conn.storagePoolLookupByName(f"{project}pool")
        xmls += [vol.XMLDesc(0) for vol in pool.listAllVolumes(0)]
    finally:
        conn.close()
    argv = subprocess.run(
        ["virsh", "-c", "qemu:///system", "domxml-to-native", "--domain", f"{project}-web", "qemu-argv"],
        capture_output=True,
        text=True,
    )
    assert argv.returncode == 0 and seed.name in argv.stdout, argv.stderr  # QEMU's command line names the seed
    destroyed = cli("destroy", "--yes", "--images", "-f", str(spec), env=env)
    assert destroyed.code == 0

    cached = [p.read_bytes().decode("utf-8", "replace") for p in cache.rglob("*") if p.is_file()]
    everything = [r.out + r.err for r in [*results, destroyed]] + [saved.read_text(), argv.stdout, *xmls, *cached]
    for secret in (password, token):
        leaks = [text[:200] for text in everything if secret in text]
        assert leaks == [], f"{secret} leaked"
