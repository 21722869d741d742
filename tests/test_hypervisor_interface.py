"""The hypervisor interface: both implementations offer every operation, called alike, and the
interface costs no libvirt import (the CLI's `version` and `validate` never load it).

mypy checks the types (tests/fakes/hypervisor.py and vmctl/hypervisor/libvirt/hypervisor.py each assign
their class to `Hypervisor`); this checks what a call site sees at run time: names, order, defaults.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
from collections.abc import Callable

import pytest

from tests.fakes.hypervisor import FakeHypervisor
from vmctl.hypervisor import Hypervisor
from vmctl.hypervisor.libvirt import LibvirtHypervisor

OPERATIONS = sorted(name for name, value in vars(Hypervisor).items() if callable(value) and not name.startswith("_"))


def parameters(function: Callable[..., object]) -> list[tuple[str, object, object]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


@pytest.mark.parametrize("implementation", [LibvirtHypervisor, FakeHypervisor])
@pytest.mark.parametrize("operation", OPERATIONS)
def test_each_implementation_takes_the_interfaces_parameters(implementation: type, operation: str) -> None:
    assert parameters(getattr(implementation, operation)) == parameters(getattr(Hypervisor, operation))


def test_importing_the_interface_does_not_load_libvirt() -> None:
    code = "import sys, vmctl.hypervisor; print(sorted(m for m in sys.modules if m.startswith('libvirt')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
