"""The desired state: a spec resolved against the host and the images, exactly what should exist."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vmctl.model.ownership import Owner
from vmctl.model.wanted import GuestSpec, Move, NetworkSpec, PoolSpec


@dataclass(frozen=True, slots=True)
class ImageUpload:
    """A local file that must exist in a pool as a content-addressed volume."""

    name: str  # the spec's image name, or 'kernel'/'initrd'
    pool: str
    volume: str
    source: Path | None
    url: str | None
    sha256: str
    format: str
    size: int = 0  # bytes of the file to upload (0 when not yet downloaded)


@dataclass(frozen=True, slots=True)
class DesiredState:
    """The spec resolved against the host and the images: exactly what should exist."""

    project: str
    workspace: str | None
    pools: tuple[PoolSpec, ...]
    uploads: tuple[ImageUpload, ...]
    networks: tuple[NetworkSpec, ...]
    guests: tuple[GuestSpec, ...]
    moves: tuple[Move, ...] = ()
    # Values of sensitive variables: the plan masks them wherever they appear.
    secrets: tuple[str, ...] = field(default=(), compare=False, repr=False)
    # When what apply makes expires (UTC, as Owner.expires), and whether apply pushes a recorded one
    # forward. Not compared: the time moves on while the spec stays the same.
    expires: str = field(default="", compare=False)
    renew: bool = field(default=False, compare=False)
    host: str = ""  # the spec's name of the host this is wanted on; empty for a spec without hosts
    _by_name: dict[str, GuestSpec] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {g.name: g for g in self.guests})

    def guest(self, name: str) -> GuestSpec | None:
        return self._by_name.get(name)

    @property
    def owner(self) -> Owner:
        """Who vmctl's objects for this spec belong to."""
        return Owner(self.project, self.workspace, expires=self.expires, host=self.host)

    def image_upload(self, image: str | None, sha256: str | None) -> ImageUpload | None:
        """The uploaded volume of an image's content (what a disk on that image is an overlay of)."""
        return next((u for u in self.uploads if (u.name, u.sha256) == (image, sha256)), None)
