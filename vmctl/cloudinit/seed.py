"""The cloud-init NoCloud seed: its files, their digest, and a byte-for-byte reproducible ISO."""

from __future__ import annotations

import hashlib
import io
import json
import time as _time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from vmctl.model import CloudInitSpec

VOLUME_LABEL = "cidata"
SEED_FORMAT = 1  # bump when the files rendered from the same data change
# Every timestamp inside the ISO: the seed must not change when nothing in it changed.
SEED_EPOCH = 946684800.0  # 2000-01-01T00:00:00Z

_FILES = (("user-data", "USERDATA.;1"), ("meta-data", "METADATA.;1"), ("network-config", "NETCONF.;1"))


@dataclass(frozen=True, slots=True)
class SeedContent:
    """The files of one guest's seed and the digest that names them."""

    digest: str
    files: Mapping[str, bytes]


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=True, default_flow_style=False, allow_unicode=True)


def user_data_text(user_data: Any) -> str:
    """A mapping becomes #cloud-config YAML (keys sorted, so reordering changes nothing); text is kept."""
    if user_data is None:
        return "#cloud-config\n{}\n"
    if isinstance(user_data, str):
        return user_data if user_data.endswith("\n") else user_data + "\n"
    return "#cloud-config\n" + _dump(user_data)


def seed_digest(cloud_init: CloudInitSpec, domain: str, hostname: str) -> str:
    """The identity of a seed's content, from the data itself (not from how YAML happens to print it),
    so planning needs no rendering and a new PyYAML never looks like a new seed."""
    text = user_data_text(cloud_init.user_data) if isinstance(cloud_init.user_data, str) else None
    data = None if text is not None else cloud_init.user_data
    document = [SEED_FORMAT, domain, hostname, text, data, cloud_init.meta_data, cloud_init.network_config]
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()


def seed_content(cloud_init: CloudInitSpec, domain: str, hostname: str) -> SeedContent:
    """Render the seed files. The instance-id carries the digest, so any edit is a new instance."""
    digest = seed_digest(cloud_init, domain, hostname)
    meta = {"instance-id": f"{domain}-{digest[:12]}", "local-hostname": hostname, **dict(cloud_init.meta_data)}
    files = {"user-data": user_data_text(cloud_init.user_data).encode(), "meta-data": _dump(meta).encode()}
    if cloud_init.network_config is not None:
        files["network-config"] = _dump(dict(cloud_init.network_config)).encode()
    return SeedContent(digest, files)


class _FixedClock:
    """Stands in for the `time` module inside pycdlib: a fixed instant, always in UTC."""

    @staticmethod
    def time() -> float:
        return SEED_EPOCH

    localtime = staticmethod(_time.gmtime)
    gmtime = staticmethod(_time.gmtime)
    strftime = staticmethod(_time.strftime)
    mktime = staticmethod(_time.mktime)


def _pin_pycdlib_clock() -> None:
    """pycdlib stamps the wall clock (in local time) everywhere; pin it so builds are reproducible."""
    import pycdlib
    from pycdlib import dates, dr, headervd, inode, rockridge, udf, utils
    from pycdlib import pycdlib as core

    for module in (core, dates, dr, headervd, inode, rockridge, udf, utils, pycdlib):
        if hasattr(module, "time"):
            setattr(module, "time", _FixedClock)  # noqa: B010


def build_iso(content: SeedContent) -> bytes:
    """The NoCloud ISO (label cidata, Joliet + Rock Ridge) for `content`; same input, same bytes."""
    import pycdlib

    _pin_pycdlib_clock()
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident=VOLUME_LABEL, sys_ident="LINUX")
    for name, iso_name in _FILES:
        data = content.files.get(name)
        if data is None:
            continue
        iso.add_fp(io.BytesIO(data), len(data), f"/{iso_name}", rr_name=name, joliet_path=f"/{name}")
    out = io.BytesIO()
    iso.write_fp(out)
    iso.close()
    return out.getvalue()
