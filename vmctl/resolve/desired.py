"""Resolve a Spec against the host and the measured files into the exact state wanted (pure)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from vmctl.cloudinit.seed import seed_digest
from vmctl.errors import Problem, SpecError
from vmctl.libvirtxml.domain import cpu_model
from vmctl.model import (
    BootSpec,
    DesiredState,
    DiskSpec,
    FileRef,
    GuestSpec,
    HostFacts,
    ImageUpload,
    PoolSpec,
    SeedSpec,
    Spec,
    naming,
)
from vmctl.resolve.localfiles import LocalFacts
from vmctl.units import format_size


def desired_state(spec: Spec, facts: LocalFacts, host: HostFacts) -> DesiredState:
    """What should exist: guests with accel, CPU model, image digests, sizes and seeds filled in."""
    problems: list[Problem] = []
    guests = tuple(_resolve_guest(g, spec, facts, host, problems) for g in spec.guests)
    if problems:
        raise SpecError(problems)
    return DesiredState(
        project=spec.project,
        workspace=spec.workspace,
        pools=host_pools(spec.pools, host),
        uploads=_uploads(spec, facts, guests),
        networks=tuple(n for n in spec.networks if n.managed),
        guests=guests,
        moves=spec.moves,
        secrets=spec.secrets,
    )


def host_pools(pools: tuple[PoolSpec, ...], host: HostFacts) -> tuple[PoolSpec, ...]:
    """The spec's pools on this host: the one it names no path for goes where the host keeps its default."""
    unplaced = [p.name for p in pools if not p.path and not host.default_pool_path]
    if unplaced:
        message = f"pool {unplaced[0]}: where this host keeps a session's images is unknown (no user in the URI)"
        raise SpecError(
            [Problem(None, "pools", message, f"name its directory: pools: {{{unplaced[0]}: {{path: ...}}}}")]
        )
    return tuple(replace(p, path=p.path or host.default_pool_path) for p in pools)


def _resolve_guest(
    guest: GuestSpec, spec: Spec, facts: LocalFacts, host: HostFacts, problems: list[Problem]
) -> GuestSpec:
    accel = guest.accel if guest.accel != "auto" else ("kvm" if host.kvm_usable else "tcg")
    return replace(
        guest,
        accel=accel,
        cpu_model=cpu_model(accel, guest.cpu_model),
        disks=tuple(_resolve_disk(d, guest, facts, problems) for d in guest.disks),
        boot=_resolve_boot(guest.boot, facts),
        seed=_seed(guest),
    )


def _resolve_disk(disk: DiskSpec, guest: GuestSpec, facts: LocalFacts, problems: list[Problem]) -> DiskSpec:
    if disk.image is None:
        return disk
    image = facts.images[disk.image]
    if disk.size is not None and disk.size < image.virtual_size:
        message = (
            f"size {format_size(disk.size)} is smaller than image {disk.image} ({format_size(image.virtual_size)})"
        )
        problems.append(Problem(guest.origin, f"guests.{guest.guest}.disks.{disk.name}.size", message))
    return replace(disk, image_sha256=image.sha256, size=disk.size or image.virtual_size)


def _resolve_boot(boot: BootSpec | None, facts: LocalFacts) -> BootSpec | None:
    if boot is None:
        return None

    def ref(file: FileRef | None, kind: str) -> FileRef | None:
        if file is None:
            return None
        return replace(file, volume=naming.boot_volume(kind, facts.files[Path(file.path)].sha256))

    kernel = ref(boot.kernel, "vmlinuz")
    assert kernel is not None
    return replace(boot, kernel=kernel, initrd=ref(boot.initrd, "initrd"))


def _seed(guest: GuestSpec) -> SeedSpec | None:
    if guest.cloud_init is None:
        return None
    digest = seed_digest(guest.cloud_init, guest.name, guest.hostname)
    return SeedSpec(naming.seed_volume(guest.name, digest), guest.pool, digest)


def _uploads(spec: Spec, facts: LocalFacts, guests: tuple[GuestSpec, ...]) -> tuple[ImageUpload, ...]:
    uploads: dict[tuple[str, str], ImageUpload] = {}
    for guest in guests:
        for disk in guest.disks:
            if disk.image:
                image = spec.image(disk.image)
                assert image is not None
                found = facts.images[disk.image]
                volume = naming.image_volume(image.name, found.sha256, image.format)
                source = facts.image_files.get(image.name)
                uploads[(image.pool, volume)] = ImageUpload(
                    image.name, image.pool, volume, source, image.url, found.sha256, image.format, found.file_size
                )
        for ref, kind in _boot_refs(guest):
            found = facts.files[Path(ref.path)]
            source = Path(ref.path)
            uploads[(guest.pool, ref.volume)] = ImageUpload(
                kind, guest.pool, ref.volume, source, None, found.sha256, "raw", found.file_size
            )
    return tuple(uploads.values())


def _boot_refs(guest: GuestSpec) -> list[tuple[FileRef, str]]:
    if guest.boot is None:
        return []
    refs = [(guest.boot.kernel, "kernel")]
    if guest.boot.initrd:
        refs.append((guest.boot.initrd, "initrd"))
    return refs
