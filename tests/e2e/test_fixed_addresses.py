"""Fixed addresses on a vmctl network, with real tiny guests that run DHCP (busybox udhcpc): each
guest resolves and pings the other by name, and a reservation changed live is what the guest gets
at its next DHCP renewal, with no network restart. Uses 198.51.100.64/27."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import libvirt
import pytest

from tests.tooling.images import GuestImage
from vmctl.hypervisor import Hypervisor

from ..conftest import remove_project
from .conftest import Guest, applied, vmctl, write_spec

pytestmark = [pytest.mark.e2e, pytest.mark.libvirtd]


@dataclass
class Pair:
    project: str
    spec: Path
    image: GuestImage

    def write(self, a: str, b: str) -> Path:
        guest = (
            "    memory: 192MiB\n"
            f'    boot: {{kernel: {self.image.kernel}, initrd: {self.image.initrd}, cmdline: "{self.image.cmdline} vmctl.dhcp"}}\n'
            "    wait: {agent: true, cloud_init: false, timeout: 2m}\n"
        )
        return write_spec(
            self.spec,
            f"""\
version: 1
project: {self.project}
networks:
  net: {{mode: isolated, ipv4: 198.51.100.65/27}}
guests:
  a:
{guest}    nics:
      lan: {{network: net, ipv4: {a}}}
  b:
{guest}    nics:
      lan: {{network: net, ipv4: {b}}}
""",
        )

    def domain(self, guest: str) -> str:
        return f"{self.project}-{guest}"  # the workspace is the project's name


@pytest.fixture(scope="module")
def pair(libvirtd: str, tiny_image: GuestImage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    project = f"addr{uuid.uuid4().hex[:8]}"
    setup = Pair(project, tmp_path_factory.mktemp("addr") / "vmctl.yaml", tiny_image)
    setup.write("198.51.100.70", "198.51.100.71")
    try:
        applied("--wait", "-w", project, str(setup.spec))
        yield setup
    finally:
        remove_project(libvirtd, project)


def address(guest: Guest) -> str:
    return guest.sh("ip -4 -o addr show dev eth0 | sed -n 's/.* inet \\([0-9.]*\\)\\/.*/\\1/p'").strip()


def test_each_guest_resolves_and_pings_the_other_by_name(pair: Pair, backend: Hypervisor) -> None:
    a, b = Guest(backend, pair.domain("a")), Guest(backend, pair.domain("b"))
    assert a.eventually("ip -4 -o addr show dev eth0", lambda out: "198.51.100.70/" in out)
    assert b.eventually("ip -4 -o addr show dev eth0", lambda out: "198.51.100.71/" in out)
    assert "198.51.100.71" in a.sh("nslookup -type=a b")
    assert "198.51.100.70" in b.sh(f"nslookup -type=a a.{pair.project}")
    assert "1 packets received" in a.sh("ping -c 1 -W 5 b")
    assert "1 packets received" in b.sh(f"ping -c 1 -W 5 a.{pair.project}")


def test_a_reservation_changed_live_is_what_the_guest_gets_at_its_next_renewal(pair: Pair, backend: Hypervisor) -> None:
    a, b = Guest(backend, pair.domain("a")), Guest(backend, pair.domain("b"))
    a.eventually("ip -4 -o addr show dev eth0", lambda out: "198.51.100.70/" in out)
    network = f"{pair.project}-{pair.project}-net"
    before = _network_bridge_and_uuid(network)

    pair.write("198.51.100.72", "198.51.100.71")
    plan = vmctl("plan", "-w", pair.project, str(pair.spec))
    assert "~ hosts.a  198.51.100.70 → 198.51.100.72  # live: network update" in plan.stdout, plan.stdout
    out = applied("-w", pair.project, str(pair.spec))
    assert "fixed address(es) changed live" in out, out
    assert _network_bridge_and_uuid(network) == before  # not recreated, not restarted

    assert address(a) == "198.51.100.70"  # a lease is kept until it is renewed
    a.sh("kill -USR1 $(cat /run/udhcpc.eth0.pid)")
    a.eventually("ip -4 -o addr show dev eth0", lambda out: "198.51.100.72/" in out)
    assert "198.51.100.72" in b.sh("nslookup -type=a a")
    assert "1 packets received" in b.sh("ping -c 1 -W 5 a")
    assert vmctl("plan", "--detailed-exitcode", "-w", pair.project, str(pair.spec)).returncode == 0


def _network_bridge_and_uuid(name: str) -> tuple[str, str, bool]:
    conn = libvirt.open("qemu:///system")
    try:
        net = conn.networkLookupByName(name)
        return net.bridgeName(), net.UUIDString(), bool(net.isActive())
    finally:
        conn.close()


def test_a_range_change_recreates_the_network_and_plugs_the_running_guests_back(
    pair: Pair, backend: Hypervisor
) -> None:
    a, b = Guest(backend, pair.domain("a")), Guest(backend, pair.domain("b"))
    wider = pair.spec.read_text().replace("198.51.100.65/27", "198.51.100.65/26")
    pair.spec.write_text(wider)
    held = applied("-w", pair.project, str(pair.spec))
    assert "needs apply --allow-restart" in held, held
    out = applied("--allow-restart", "-w", pair.project, str(pair.spec))
    assert "2 running NIC(s) plugged back" in out, out
    # The guests' NICs are on the new network's bridge: a fresh lease, then each reaches the other.
    renew = "udhcpc -i eth0 -s /etc/udhcpc.script -q -n -t 10 -T 1 >/dev/null 2>&1; ip -4 -o addr show dev eth0"
    a.eventually(renew, lambda out: "198.51.100.72/26" in out, timeout=60)
    b.eventually(renew, lambda out: "198.51.100.71/26" in out, timeout=60)
    assert "1 packets received" in a.sh("ping -c 1 -W 5 b")
    assert vmctl("plan", "--detailed-exitcode", "-w", pair.project, str(pair.spec)).returncode == 0
