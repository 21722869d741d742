"""Reading live state while another program removes things: a network or pool removed between the
listing and its read is as if it had been listed a moment later, never an error for a plan."""

from __future__ import annotations

import libvirt
import pytest

from vmctl.errors import HypervisorError
from vmctl.hypervisor.libvirt.connection import Connection
from vmctl.hypervisor.libvirt.reading import StateReader

NETWORK_XML = "<network><name>{name}</name><forward mode='nat'/><ip address='203.0.113.1' prefix='24'/></network>"


class Gone(libvirt.libvirtError):
    """What libvirt raises for an object removed behind our back."""

    def __init__(self, code: int) -> None:
        super().__init__("not found")
        self.code = code

    def get_error_code(self) -> int:
        return self.code


class Net:
    def __init__(self, name: str, vanished: int | None = None) -> None:
        self._name, self.vanished = name, vanished

    def name(self) -> str:
        return self._name

    def XMLDesc(self, _flags: int) -> str:
        if self.vanished is not None:
            raise Gone(self.vanished)
        return NETWORK_XML.format(name=self._name)

    def isActive(self) -> int:
        return 1

    def autostart(self) -> int:
        return 1


class Conn:
    def __init__(self, nets: list[Net]) -> None:
        self.nets = nets

    def listAllNetworks(self, _flags: int) -> list[Net]:
        return self.nets


def reader(nets: list[Net]) -> StateReader:
    return StateReader(Connection(Conn(nets), "test:///default"))  # type: ignore[arg-type]


def test_a_network_removed_while_reading_is_left_out() -> None:
    nets = reader([Net("kept"), Net("removed", libvirt.VIR_ERR_NO_NETWORK)])._read_networks()
    assert [n.spec.libvirt_name for n in nets] == ["kept"]


def test_any_other_failure_to_read_a_network_is_an_error_naming_it() -> None:
    with pytest.raises(HypervisorError, match="read network broken failed"):
        reader([Net("broken", libvirt.VIR_ERR_INTERNAL_ERROR)])._read_networks()
