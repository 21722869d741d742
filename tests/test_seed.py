"""The cloud-init seed: NoCloud layout, read back by ISO tools, reproducible bytes, valid user-data."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vmctl.cloudinit.seed import build_iso, seed_content
from vmctl.model import CloudInitSpec

USER_DATA = {
    "hostname": "web",
    "packages": ["nginx"],
    "write_files": [{"path": "/etc/motd", "content": "hello\n"}],
    "users": [{"name": "ops", "ssh_authorized_keys": ["ssh-ed25519 AAAAC3Nza ops@x"]}],
    "runcmd": [["sh", "-c", "echo hi > /run/hi"]],
}
NETWORK = {"version": 2, "ethernets": {"eth0": {"match": {"macaddress": "52:54:00:00:00:01"}, "dhcp4": True}}}
SPEC = CloudInitSpec(USER_DATA, {"public-keys": ["k"]}, NETWORK)


def iso_file(iso: Path, name: str, mode: str) -> bytes:
    return subprocess.run(["isoinfo", mode, "-x", f"/{name}", "-i", str(iso)], capture_output=True, check=True).stdout


@pytest.fixture
def iso(tmp_path: Path) -> Path:
    path = tmp_path / "seed.iso"
    path.write_bytes(build_iso(seed_content(SPEC, "lab-web", "web")))
    return path


def test_iso_has_label_cidata_and_the_three_files(iso: Path) -> None:
    info = subprocess.run(["isoinfo", "-d", "-i", str(iso)], capture_output=True, text=True, check=True).stdout
    assert "Volume id: cidata" in info
    assert "Joliet" in info and "Rock Ridge" in info
    content = seed_content(SPEC, "lab-web", "web")
    for name, data in content.files.items():
        assert iso_file(iso, name, "-R") == data  # Rock Ridge names (what Linux mounts show)
        assert iso_file(iso, name, "-J") == data  # Joliet names
    assert set(content.files) == {"user-data", "meta-data", "network-config"}


def test_xorriso_reads_the_same_files(iso: Path, tmp_path: Path) -> None:
    out = tmp_path / "x"
    subprocess.run(
        ["xorriso", "-osirrox", "on", "-indev", str(iso), "-extract", "/", str(out)], capture_output=True, check=True
    )
    assert sorted(p.name for p in out.iterdir()) == ["meta-data", "network-config", "user-data"]
    meta = yaml.safe_load((out / "meta-data").read_text())
    assert meta["local-hostname"] == "web"
    assert meta["instance-id"].startswith("lab-web-")
    assert meta["public-keys"] == ["k"]
    assert yaml.safe_load((out / "network-config").read_text()) == NETWORK


def test_user_data_passes_cloud_inits_own_validator(tmp_path: Path) -> None:
    assert shutil.which("cloud-init"), "cloud-init (Debian package) provides the schema validator"
    path = tmp_path / "user-data"
    path.write_bytes(seed_content(SPEC, "lab-web", "web").files["user-data"])
    assert path.read_text().startswith("#cloud-config\n")
    result = subprocess.run(["cloud-init", "schema", "--config-file", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_validator_is_a_real_oracle(tmp_path: Path) -> None:
    path = tmp_path / "user-data"
    path.write_bytes(seed_content(CloudInitSpec({"users": 3}), "x", "x").files["user-data"])
    assert subprocess.run(["cloud-init", "schema", "--config-file", str(path)], capture_output=True).returncode != 0


def test_same_content_gives_the_same_bytes() -> None:
    one = build_iso(seed_content(SPEC, "lab-web", "web"))
    two = build_iso(seed_content(SPEC, "lab-web", "web"))
    assert one == two


def _digest_in(tz: str) -> str:
    code = (
        "import hashlib, sys; from tests.test_seed import SPEC; from vmctl.cloudinit.seed import build_iso, seed_content;"
        "sys.stdout.write(hashlib.sha256(build_iso(seed_content(SPEC, 'lab-web', 'web'))).hexdigest())"
    )
    env = {**os.environ, "TZ": tz}
    root = Path(__file__).parent.parent
    return subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True, check=True
    ).stdout


def test_builds_in_different_timezones_are_identical() -> None:
    here = hashlib.sha256(build_iso(seed_content(SPEC, "lab-web", "web"))).hexdigest()
    assert _digest_in("America/Los_Angeles") == _digest_in("Asia/Kathmandu") == here


def test_any_edit_is_a_new_instance_but_key_order_is_not() -> None:
    base = seed_content(SPEC, "lab-web", "web")
    reordered = seed_content(
        CloudInitSpec(dict(reversed(list(USER_DATA.items()))), {"public-keys": ["k"]}, NETWORK), "lab-web", "web"
    )
    edited = seed_content(
        CloudInitSpec({**USER_DATA, "packages": ["nginx", "curl"]}, {"public-keys": ["k"]}, NETWORK), "lab-web", "web"
    )
    renamed = seed_content(SPEC, "lab-web", "web2")
    assert reordered.digest == base.digest and reordered.files == base.files
    assert edited.digest != base.digest and renamed.digest != base.digest

    def instance(content: object) -> str:
        return str(yaml.safe_load(content.files["meta-data"])["instance-id"])  # type: ignore[attr-defined]

    assert instance(edited) != instance(base)


def test_user_data_text_is_kept_as_written() -> None:
    script = "#!/bin/sh\necho hi\n"
    assert seed_content(CloudInitSpec(script), "a", "a").files["user-data"] == script.encode()


def test_user_meta_data_overrides_defaults() -> None:
    meta = yaml.safe_load(seed_content(CloudInitSpec({}, {"local-hostname": "custom"}), "a", "a").files["meta-data"])
    assert meta["local-hostname"] == "custom"
