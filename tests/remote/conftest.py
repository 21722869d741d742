"""Two hypervisors on one machine, reached over libvirt's ssh transport: see tests/tooling/sshhosts.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.tooling.sshhosts import Machine, TwoHosts, loopback_hosts

__all__ = ["Machine", "TwoHosts"]


@pytest.fixture(scope="session")
def two_hosts(libvirtd: str) -> Iterator[TwoHosts]:
    with loopback_hosts() as hosts:
        yield hosts
