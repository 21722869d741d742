"""Tests of the guest-image tooling (tests.tooling.images).

The e2e tests really build both images with mmdebstrap (as root, ~2 minutes the first time) into
the shared image cache, so the end-to-end tests that boot guests reuse them; they never boot a
guest themselves. The other tests exercise the cache logic with a stand-in builder.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.tooling import images
from tests.tooling.images import BuildOutput, GuestImage, ImageBuildError, ensure_image

BUILD_TOOLS = ("mmdebstrap", "mkfs.ext4", "qemu-img", "apt-get")

needs_builder = pytest.mark.skipif(
    os.geteuid() != 0 or any(shutil.which(tool) is None for tool in BUILD_TOOLS),
    reason=f"building images needs root and {', '.join(BUILD_TOOLS)}",
)


class Recorder:
    """A log callback that keeps the messages."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, message: str) -> None:
        with self._lock:
            self.messages.append(message)

    def count(self, text: str) -> int:
        return sum(text in message for message in self.messages)


def cpio_names(archive: bytes) -> list[str]:
    """Names in a newc cpio archive (enough of a reader to check the tiny initramfs)."""
    names: list[str] = []
    offset = 0
    while True:
        header = archive[offset : offset + 110]
        assert header[:6] == b"070701", f"bad cpio header at {offset}"
        size, name_size = int(header[54:62], 16), int(header[94:102], 16)
        name = archive[offset + 110 : offset + 110 + name_size - 1].decode()
        if name == "TRAILER!!!":
            return names
        names.append(name)
        offset += 110 + name_size
        offset += -offset % 4
        offset += size + (-size % 4)


def cpio_file(archive: bytes, wanted: str) -> bytes:
    offset = 0
    while True:
        header = archive[offset : offset + 110]
        size, name_size = int(header[54:62], 16), int(header[94:102], 16)
        name = archive[offset + 110 : offset + 110 + name_size - 1].decode()
        offset += 110 + name_size
        offset += -offset % 4
        if name == wanted:
            return archive[offset : offset + size]
        if name == "TRAILER!!!":
            raise KeyError(wanted)
        offset += size + (-size % 4)


def assert_bzimage(kernel: Path) -> None:
    data = kernel.read_bytes()
    assert len(data) > 1_000_000
    assert data[0x202:0x206] == b"HdrS", "not an x86 bzImage"


# ---------------------------------------------------------------------------------------------
# Real builds (e2e)


@pytest.fixture(scope="module")
def debian_build() -> tuple[GuestImage, Recorder, float]:
    log = Recorder()
    started = time.monotonic()
    image = ensure_image("debian", log=log)
    return image, log, time.monotonic() - started


@pytest.fixture(scope="module")
def tiny_build() -> tuple[GuestImage, Recorder, float]:
    log = Recorder()
    started = time.monotonic()
    image = ensure_image("tiny", log=log)
    return image, log, time.monotonic() - started


@pytest.mark.e2e
@needs_builder
def test_debian_image_is_complete(debian_build: tuple[GuestImage, Recorder, float]) -> None:
    image, _, _ = debian_build
    assert image.kind == "debian"
    assert_bzimage(image.kernel)
    assert image.initrd.stat().st_size > 1_000_000
    assert image.disk is not None
    info = json.loads(
        subprocess.run(
            ["qemu-img", "info", "--output=json", str(image.disk)], check=True, capture_output=True, text=True
        ).stdout
    )
    assert info["format"] == "qcow2"
    assert info["virtual-size"] >= 3 * 1024**3
    assert "backing-filename" not in info
    subprocess.run(["qemu-img", "check", str(image.disk)], check=True, capture_output=True)
    assert "root=/dev/vda" in image.cmdline.split()
    assert "console=ttyS0" in image.cmdline.split()
    for package in ("linux-image-amd64", "cloud-init", "qemu-guest-agent", "cloud-guest-utils", "sudo"):
        assert image.versions.get(package), f"{package} is not in the image"


@pytest.mark.e2e
@needs_builder
@pytest.mark.skipif(shutil.which("lsinitramfs") is None, reason="needs lsinitramfs (initramfs-tools-core)")
def test_debian_initrd_can_mount_a_virtio_root(debian_build: tuple[GuestImage, Recorder, float]) -> None:
    image, _, _ = debian_build
    listing = subprocess.run(["lsinitramfs", str(image.initrd)], check=True, capture_output=True, text=True).stdout
    files = {line.rsplit("/", 1)[-1] for line in listing.splitlines()}
    for module in ("virtio_pci.ko", "virtio_blk.ko", "virtio_scsi.ko", "virtio_net.ko", "ext4.ko"):
        assert module in files


@pytest.mark.e2e
@needs_builder
def test_tiny_image_is_complete(tiny_build: tuple[GuestImage, Recorder, float]) -> None:
    image, _, _ = tiny_build
    assert image.kind == "tiny"
    assert image.disk is None
    assert_bzimage(image.kernel)
    archive = gzip.decompress(image.initrd.read_bytes())
    names = set(cpio_names(archive))
    for needed in (
        "init",
        "bin/busybox",
        "bin/qemu-ga",
        "dev/console",
        "lib64/ld-linux-x86-64.so.2",
        "lib/x86_64-linux-gnu/libglib-2.0.so.0",
        "lib/x86_64-linux-gnu/libc.so.6",
    ):
        assert needed in names
    order = cpio_file(archive, "etc/modules.order").decode().split()
    loaded = [name.rsplit("/", 1)[-1] for name in order]
    for module in ("virtio_pci.ko", "virtio_console.ko", "virtio_blk.ko", "virtio_net.ko", "isofs.ko"):
        assert module in loaded
    # Dependencies come first: virtio before virtio_pci, scsi_mod before sr_mod.
    assert loaded.index("virtio.ko") < loaded.index("virtio_pci.ko")
    assert loaded.index("scsi_mod.ko") < loaded.index("sr_mod.ko")
    assert all(f"lib/modules/{relative}" in names for relative in order)
    assert "console=ttyS0" in image.cmdline.split()
    assert image.versions.get("qemu-guest-agent")


@pytest.mark.e2e
@needs_builder
@pytest.mark.parametrize("kind", ["debian", "tiny"])
def test_second_call_reuses_the_cache(kind: str, request: pytest.FixtureRequest) -> None:
    first, _, _ = request.getfixturevalue(f"{kind}_build")
    manifest_before = (first.kernel.parent / images.MANIFEST).read_text()
    log = Recorder()
    started = time.monotonic()
    second = ensure_image(kind, log=log)
    elapsed = time.monotonic() - started
    assert second == first
    assert log.count("reusing cached") == 1
    assert log.count("building") == 0
    assert elapsed < 20, f"a cache hit took {elapsed:.1f} s"
    assert (second.kernel.parent / images.MANIFEST).read_text() == manifest_before


# ---------------------------------------------------------------------------------------------
# Cache logic with a stand-in builder (fast, no root needed)


FAKE_VERSIONS = {"linux-image-amd64": "6.1.0-1", "qemu-guest-agent": "1:7.2"}


@pytest.fixture
def fake_builds(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Replace apt resolution and the builders; yields the list of kinds actually built."""
    built: list[str] = []
    versions = dict(FAKE_VERSIONS)

    def fake_builder(kind: str) -> images.Builder:
        def build(workdir: Path, resolved: Mapping[str, str], log: images.Log) -> BuildOutput:
            built.append(kind)
            time.sleep(0.3)  # long enough for a concurrent caller to find the lock taken
            (workdir / images.KERNEL_NAME).write_bytes(b"kernel")
            (workdir / images.INITRD_NAME).write_bytes(b"initrd")
            return BuildOutput(disk=None, cmdline="console=ttyS0", versions=dict(resolved))

        return build

    monkeypatch.setattr(images, "resolve_versions", lambda patterns: dict(versions))
    monkeypatch.setattr(images, "BUILDERS", {kind: fake_builder(kind) for kind in images.KINDS})
    yield built


def test_builds_once_then_reuses(tmp_path: Path, fake_builds: list[str]) -> None:
    first = ensure_image("tiny", tmp_path)
    second = ensure_image("tiny", tmp_path)
    assert fake_builds == ["tiny"]
    assert first == second
    assert first.kernel.read_bytes() == b"kernel"
    assert dict(first.versions) == FAKE_VERSIONS
    assert not list(tmp_path.glob(".build-*"))


def test_cache_dir_from_environment(tmp_path: Path, fake_builds: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(images.CACHE_ENV, str(tmp_path / "from-env"))
    image = ensure_image("tiny")
    assert image.kernel.is_relative_to(tmp_path / "from-env")


def test_new_package_version_means_new_build(
    tmp_path: Path, fake_builds: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = ensure_image("tiny", tmp_path)
    newer = {**FAKE_VERSIONS, "qemu-guest-agent": "1:7.3"}
    monkeypatch.setattr(images, "resolve_versions", lambda patterns: dict(newer))
    second = ensure_image("tiny", tmp_path)
    assert fake_builds == ["tiny", "tiny"]
    assert first.kernel.parent != second.kernel.parent
    assert second.versions["qemu-guest-agent"] == "1:7.3"


def test_recipe_change_changes_the_key() -> None:
    assert images.cache_key("tiny", FAKE_VERSIONS, "a") != images.cache_key("tiny", FAKE_VERSIONS, "b")
    assert images.cache_key("tiny", FAKE_VERSIONS, "a") != images.cache_key("debian", FAKE_VERSIONS, "a")


def test_concurrent_callers_build_once(tmp_path: Path, fake_builds: list[str]) -> None:
    results: list[GuestImage] = []

    def call() -> None:
        results.append(ensure_image("tiny", tmp_path))

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert fake_builds == ["tiny"]
    assert len(results) == 3
    assert len(set(results)) == 1


def test_failed_build_leaves_nothing_that_looks_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_builds: list[str]
) -> None:
    def broken(workdir: Path, resolved: Mapping[str, str], log: images.Log) -> BuildOutput:
        (workdir / images.KERNEL_NAME).write_bytes(b"half")
        raise ImageBuildError("mmdebstrap failed")

    monkeypatch.setattr(images, "BUILDERS", {**images.BUILDERS, "tiny": broken})
    with pytest.raises(ImageBuildError, match="mmdebstrap failed"):
        ensure_image("tiny", tmp_path)
    assert not [path for path in tmp_path.iterdir() if path.is_dir()]


def test_abandoned_build_is_cleaned_and_incomplete_entry_rebuilt(tmp_path: Path, fake_builds: list[str]) -> None:
    abandoned = tmp_path / ".build-tiny-killed"
    (abandoned / "root").mkdir(parents=True)
    image = ensure_image("tiny", tmp_path)
    assert not abandoned.exists()
    (image.kernel.parent / images.INITRD_NAME).unlink()  # damaged by hand: no longer complete
    again = ensure_image("tiny", tmp_path)
    assert fake_builds == ["tiny", "tiny"]
    assert again.initrd.is_file()


def test_unknown_kind_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown image kind"):
        ensure_image("windows", tmp_path)


def test_failing_command_reports_command_and_stderr() -> None:
    with pytest.raises(ImageBuildError) as raised:
        images.run(["sh", "-c", "echo first >&2; echo the-real-reason >&2; exit 3"])
    message = str(raised.value)
    assert "exit 3" in message
    assert "the-real-reason" in message
    assert "sh -c" in message


def test_cpio_archive_has_parent_directories_first() -> None:
    archive = images.Cpio()
    archive.file("lib/modules/kernel/fs/isofs.ko", b"module")
    archive.symlink("bin/sh", "busybox")
    data = archive.finish()
    assert cpio_names(data) == ["lib", "lib/modules", "lib/modules/kernel", "lib/modules/kernel/fs",
                                "lib/modules/kernel/fs/isofs.ko", "bin", "bin/sh"]  # fmt: skip
    assert cpio_file(data, "lib/modules/kernel/fs/isofs.ko") == b"module"
    assert cpio_file(data, "bin/sh") == b"busybox"


def test_command_line_prints_json(tmp_path: Path, fake_builds: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert images.main(["build", "tiny", "--cache", str(tmp_path)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["kind"] == "tiny"
    assert printed["disk"] is None
    assert Path(printed["kernel"]).is_file()
    assert Path(printed["initrd"]).is_file()
