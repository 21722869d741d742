"""Steps the guest image builders share: running commands, mmdebstrap, cleaning up build trees."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

SUITE = "bookworm"
GUEST_DATA = Path(__file__).resolve().with_name("guest")
KERNEL_NAME = "vmlinuz"
INITRD_NAME = "initrd.img"
DISK_NAME = "disk.qcow2"

Log = Callable[[str], None]


class ImageBuildError(RuntimeError):
    """A guest image could not be built; the message names the failing step."""


@dataclass(frozen=True, slots=True)
class BuildOutput:
    """What a builder leaves in its work directory (names relative to it)."""

    disk: str | None
    cmdline: str
    versions: dict[str, str]


def run(cmd: Sequence[str | Path]) -> str:
    """Run a command and return its stdout; on failure raise ImageBuildError with its stderr tail."""
    argv = [str(part) for part in cmd]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise ImageBuildError(f"{argv[0]} is not installed (needed for: {shlex.join(argv)})") from exc
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-25:])
        raise ImageBuildError(f"command failed (exit {result.returncode}): {shlex.join(argv)}\n{tail}")
    return result.stdout


def mounts_below(path: Path) -> list[str]:
    """Mount points at or under path, deepest first."""
    prefix = str(path.resolve())
    found = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        point = line.split()[1].encode().decode("unicode_escape")
        if point == prefix or point.startswith(prefix + "/"):
            found.append(point)
    return sorted(found, key=len, reverse=True)


def remove_tree(path: Path) -> None:
    """rm -rf that first unmounts anything mmdebstrap may have left mounted inside (e.g. after
    SIGKILL), so removing a root tree can never reach into the host's /dev or /proc."""
    for point in mounts_below(path):
        subprocess.run(["umount", "--lazy", point], check=False, capture_output=True)
    if mounts_below(path):
        raise ImageBuildError(f"cannot remove {path}: something is still mounted below it")
    shutil.rmtree(path, ignore_errors=True)


def mmdebstrap(target: Path, variant: str, packages: Iterable[str], extra: Sequence[str], log: Log) -> None:
    # Mode root: the build runs as root on CI; it is also the fastest mode.
    command: list[str | Path] = [
        "mmdebstrap", "--mode=root", f"--variant={variant}",
        f"--include={','.join(packages)}", *extra, SUITE, target,
    ]  # fmt: skip
    try:
        run(command)
    except ImageBuildError as error:
        # The recipe is fixed, so a failure is nearly always the archive or the network
        # dropping a download; one more try saves a red CI run.
        log(f"mmdebstrap failed, trying once more: {error}")
        remove_tree(target)
        run(command)


def single_file(directory: Path, pattern: str) -> Path:
    matches = sorted(directory.glob(pattern))
    if len(matches) != 1:
        raise ImageBuildError(f"expected exactly one {pattern} in {directory}, found {matches}")
    return matches[0]


def installed_versions(root: Path) -> dict[str, str]:
    """Package -> version from the dpkg status database of a built tree."""
    versions: dict[str, str] = {}
    status = (root / "var/lib/dpkg/status").read_text()
    for stanza in status.split("\n\n"):
        fields = dict(re.findall(r"^([\w-]+): (.*)$", stanza, flags=re.MULTILINE))
        if fields.get("Status", "").endswith(" installed"):
            versions[fields["Package"]] = fields["Version"]
    return versions


def downloaded_versions(archives: Path) -> dict[str, str]:
    """Package -> version from the .deb file names apt left in an archive cache."""
    versions = {}
    for deb in archives.glob("*.deb"):
        name, version, _arch = deb.stem.split("_")
        versions[name] = version.replace("%3a", ":")
    return versions


def report_stale_lists(resolved: Mapping[str, str], built: Mapping[str, str], log: Log) -> None:
    differing = sorted(name for name in resolved if built.get(name) not in (None, resolved[name]))
    if differing:
        log(
            "the host's apt lists are older than the archive mmdebstrap used "
            f"({', '.join(differing[:5])}...); run apt-get update so the cache key tracks the archive"
        )
