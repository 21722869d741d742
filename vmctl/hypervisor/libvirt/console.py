"""A guest's serial console over a libvirt stream: virDomainOpenConsole, so remote hosts work too."""

from __future__ import annotations

from contextlib import suppress

import libvirt

from vmctl.hypervisor.libvirt.connection import translated


class ConsoleSession:
    """One console stream, blocking: one thread reads while another types."""

    def __init__(self, conn: libvirt.virConnect, dom: libvirt.virDomain, name: str) -> None:
        self.name = name
        self.stream = conn.newStream(0)
        with translated("open the serial console", name):
            # FORCE takes the console over from a session left behind (a killed virsh console).
            dom.openConsole(None, self.stream, libvirt.VIR_DOMAIN_CONSOLE_FORCE)

    def recv(self, size: int) -> bytes:
        with translated("read the serial console", self.name):
            data = self.stream.recv(size)
        return data if isinstance(data, bytes) else b""

    def send(self, data: bytes) -> None:
        with translated("write to the serial console", self.name):
            while data:
                sent = self.stream.send(data)
                data = data[max(sent, 0) :]

    def close(self) -> None:
        with suppress(libvirt.libvirtError):
            self.stream.abort()
