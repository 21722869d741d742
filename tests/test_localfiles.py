"""Local facts: image digests (cached), virtual sizes, and verified downloads that keep nothing bad."""

from __future__ import annotations

import hashlib
import io
import subprocess
from pathlib import Path

import pytest

from vmctl.apply.progress import download_progress
from vmctl.errors import VmctlError
from vmctl.resolve.disksize import virtual_size
from vmctl.resolve.localfiles import fetch_url, file_sha256, gather
from vmctl.spec.load import load_spec


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VMCTL_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def qcow2(path: Path, size: str) -> Path:
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), size], check=True)
    return path


def test_virtual_size_of_qcow2_and_raw(tmp_path: Path) -> None:
    assert virtual_size(qcow2(tmp_path / "a.qcow2", "3G"), "qcow2") == 3 * 1024**3
    raw = tmp_path / "b.img"
    raw.write_bytes(b"\0" * 4096)
    assert virtual_size(raw, "raw") == 4096
    with pytest.raises(VmctlError, match="not a qcow2 image"):
        virtual_size(raw, "qcow2")


def test_download_is_verified_cached_and_reported(tmp_path: Path, cache: Path) -> None:
    source = qcow2(tmp_path / "src.qcow2", "1G")
    sha = file_sha256(source)
    lines = io.StringIO()
    first = fetch_url(source.as_uri(), sha, download_progress(lines))
    assert first.read_bytes() == source.read_bytes()
    assert f"download {source.as_uri()}: 100%" in lines.getvalue()
    source.unlink()  # the second time comes from the cache
    assert fetch_url(source.as_uri(), sha) == first


def test_a_download_with_the_wrong_checksum_keeps_nothing(tmp_path: Path, cache: Path) -> None:
    source = tmp_path / "src.img"
    source.write_bytes(b"not what was promised")
    wrong = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(VmctlError, match="nothing was kept"):
        fetch_url(source.as_uri(), wrong)
    assert not any((cache / "downloads").iterdir())


def test_an_unreachable_url_is_a_clean_error(tmp_path: Path) -> None:
    with pytest.raises(VmctlError, match="cannot download"):
        fetch_url((tmp_path / "missing.img").as_uri(), "0" * 64)


def test_a_url_image_in_a_spec_is_fetched_and_measured(tmp_path: Path) -> None:
    source = qcow2(tmp_path / "src.qcow2", "2G")
    spec = tmp_path / "vmctl.yaml"
    spec.write_text(
        "version: 1\nproject: p\nimages:\n"
        f"  base: {{url: '{source.as_uri()}', sha256: {file_sha256(source)}}}\n"
        "guests:\n  g:\n    disks:\n      root: {image: base}\n"
    )
    facts = gather(load_spec([str(spec)]))
    assert facts.images["base"].virtual_size == 2 * 1024**3
    assert facts.images["base"].sha256 == file_sha256(source)


def test_a_local_image_that_differs_from_its_pinned_sha256_is_refused(tmp_path: Path) -> None:
    source = qcow2(tmp_path / "src.qcow2", "1G")
    spec = tmp_path / "vmctl.yaml"
    spec.write_text(
        f"version: 1\nproject: p\nimages:\n  base: {{path: {source}, sha256: {'a' * 64}}}\n"
        "guests:\n  g:\n    disks:\n      root: {image: base}\n"
    )
    with pytest.raises(VmctlError, match="the spec says"):
        gather(load_spec([str(spec)]))


def test_digests_are_cached_by_size_and_mtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = qcow2(tmp_path / "src.qcow2", "1G")
    spec = tmp_path / "vmctl.yaml"
    spec.write_text(
        f"version: 1\nproject: p\nimages:\n  base: {{path: {source}}}\nguests:\n  g:\n    disks:\n      root: {{image: base}}\n"
    )
    first = gather(load_spec([str(spec)])).images["base"].sha256
    calls = []
    monkeypatch.setattr("vmctl.resolve.localfiles.file_sha256", lambda path: calls.append(path) or "x")
    assert gather(load_spec([str(spec)])).images["base"].sha256 == first
    assert calls == []  # unchanged file: not hashed again
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write 0 64k", str(source)], check=True, capture_output=True)
    assert gather(load_spec([str(spec)])).images["base"].sha256 == "x"  # changed: hashed again
