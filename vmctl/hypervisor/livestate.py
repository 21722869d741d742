"""Live state from what a hypervisor reports: domain XML, pools, networks and volume sizes, into the model.

Pure: every backend (libvirt's, the tests' fake) fetches the XML its own way and builds live state
here, so each reads the same XML into the same state.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

from vmctl.hypervisor.readmemo import ReadMemo
from vmctl.libvirtxml.lock import LOCK_PREFIX
from vmctl.libvirtxml.readback import DiskSize, DomainView, domain_name, is_vmctl_xml, read_domain
from vmctl.libvirtxml.tree import parse
from vmctl.model import (
    ForeignGuest,
    HostFacts,
    LiveGuest,
    LiveNetwork,
    LivePool,
    LiveState,
    OwnedGuest,
    OwnedState,
    Owner,
    VolumeInfo,
    VolumeRef,
)

NOT_MANAGED = "not managed by vmctl"
NOBODY = Owner("")  # reading for no one in particular: no pool is anyone's then


def host_facts(capabilities: str, log_dir: str | None, default_pool_path: str = "", local: bool = True) -> HostFacts:
    """From libvirt's capabilities XML: KVM is usable when offered and the CPU has VMX or SVM."""
    caps = parse(capabilities)
    features = {f.get("name") for f in caps.iterfind("host/cpu/feature")}
    kvm_offered = any(d.get("type") == "kvm" for d in caps.iterfind("guest/arch/domain"))
    kvm = kvm_offered and bool(features & {"vmx", "svm"})
    return HostFacts(kvm_usable=kvm, log_dir=log_dir, default_pool_path=default_pool_path, local=local)


def default_pool_path(uri: str, pools: Iterable[LivePool] = ()) -> str:
    """Where the host's default pool is, or goes: the one it has, else where libvirt's tools put it.

    A system daemon keeps images in /var/lib/libvirt/images; a session daemon in its user's data
    directory, which only a local session can look up. A remote session's is the URI user's usual
    home; "" when even that is unknown (no user in the URI): the spec must name the pool's path.
    """
    existing = next((p.path for p in pools if p.name == "default" and p.kind == "dir"), None)
    if existing:
        return existing
    scheme, _, rest = uri.partition(":")
    if "/session" not in rest:
        return "/var/lib/libvirt/images"
    if "+" not in scheme or scheme.endswith("+unix"):
        data = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
        return f"{data}/libvirt/images"
    from urllib.parse import urlsplit

    user = urlsplit(uri).username
    if not user:
        return ""
    home = "/root" if user == "root" else f"/home/{user}"
    return f"{home}/.local/share/libvirt/images"


def log_dir(uri: str) -> str | None:
    """Where virtlogd writes serial logs on the hypervisor host: libvirt's own log directory."""
    if uri.startswith("test:"):
        return None
    if "/session" in uri:
        if "+" in uri.split(":", 1)[0]:
            return None  # a remote user's home directory is unknown
        return os.path.expanduser("~/.cache/libvirt/qemu/log")
    return "/var/log/libvirt/qemu"


def is_local(uri: str) -> bool:
    """libvirtd runs on this machine: its files are ours to read (the local fast paths)."""
    scheme, _, rest = uri.partition(":")
    return scheme in ("qemu", "qemu+unix") and rest.startswith("///")


def local_dirs(uri: str, pools: Iterable[LivePool]) -> dict[str, str]:
    """Directory pools whose files are on this host: only when libvirtd runs here too."""
    if not is_local(uri):
        return {}
    return {p.name: p.path for p in pools if p.kind == "dir"}


class DiskSizes:
    """Volume sizes, each read once, when a guest's disk first needs it (from any reader thread).

    `read` gives a volume's size in bytes, None if there is no such volume. `known` holds what was read.
    """

    def __init__(self, read: Callable[[str, str, str], int | None] | None = None) -> None:
        self._read = read
        self.known: dict[tuple[str, str], int | None] = {}

    def read(self, pool: str, volume: str, fmt: str) -> int | None:
        """Read one size; a subclass may read its own way instead of being given `read`. (It must not
        pass a bound method of its own: that cycle would keep the sizes, and the libvirt volume handles
        they reach, and so the connection, open until Python's cycle collector happened to run.)"""
        assert self._read is not None, "DiskSizes is given `read`, or a subclass overrides it"
        return self._read(pool, volume, fmt)

    def __call__(self, pool: str, volume: str, fmt: str = "qcow2") -> int | None:
        key = (pool, volume)
        if key not in self.known:
            self.known[key] = self.read(pool, volume, fmt)
        return self.known[key]


@dataclass(frozen=True, slots=True)
class GuestReading:
    """What reading each domain shares: whose guests are wanted, where pools live, disk sizes."""

    owner: Owner
    pool_paths: Mapping[str, str]
    sizes: DiskSize
    adoptable: frozenset[str] = frozenset()  # domains read in full if nobody owns them: the spec adopts them
    memo: ReadMemo | None = None  # what domains read as in an earlier run


@dataclass(frozen=True, slots=True)
class OtherHost:
    """A guest of the owner's project and workspace whose record puts it on another host of the spec."""

    host: str


# The owner's guest, an unowned domain to adopt, the owner's guest of another host, or who owns it.
Seen = LiveGuest | ForeignGuest | OtherHost | str


def read_guest_xml(xml: str, reading: GuestReading, autostart: bool, config_xml: Callable[[], str]) -> Seen:
    """One domain from its XML as it is now: the owner's guest, a domain to adopt, or who it belongs to.

    `config_xml` fetches the persistent definition, asked only of a running guest of the owner's.
    """
    vmctls = is_vmctl_xml(xml)  # a cheap test first: foreign domains are most of a big host
    adopted = bool(reading.adoptable) and domain_name(xml) in reading.adoptable
    if not vmctls and not adopted:
        return NOT_MANAGED
    if reading.memo is None:
        return _read(xml, reading, autostart, config_xml)
    context = (reading.owner, sorted(reading.pool_paths.items()), adopted, autostart)
    return reading.memo.read(
        xml,
        context,
        reading.sizes,
        config_xml,
        lambda sizes, config: _read(xml, replace(reading, sizes=sizes), autostart, config),
    )


def _read(xml: str, reading: GuestReading, autostart: bool, config_xml: Callable[[], str]) -> Seen:
    if not is_vmctl_xml(xml):
        return _foreign(xml, reading, autostart, config_xml)
    view = read_domain(xml, reading.pool_paths, autostart, reading.sizes, owner=reading.owner)
    if view.record is None:
        return _foreign(xml, reading, autostart, config_xml)
    theirs = view.record.owner
    if not reading.owner.same_scope(theirs):
        where = f"project {theirs.project}" + (f", workspace {theirs.workspace}" if theirs.workspace else "")
        return f"managed by vmctl for {where}"
    if reading.owner.other_host(theirs):
        return OtherHost(theirs.host)  # never this host's to change, nor to adopt a second time
    assert view.guest is not None  # read in full: the owner's own
    if not view.active:
        return LiveGuest(view.name, view.uuid, view.record, view.guest, None, config_xml=xml)
    config_text = config_xml()
    config = read_domain(config_text, reading.pool_paths, autostart, reading.sizes)
    return _running(view, config, config_text)


def _foreign(xml: str, reading: GuestReading, autostart: bool, config_xml: Callable[[], str]) -> ForeignGuest | str:
    if not reading.adoptable or domain_name(xml) not in reading.adoptable:
        return NOT_MANAGED
    view = read_domain(xml, reading.pool_paths, autostart, reading.sizes, foreign=True)
    assert view.guest is not None
    if not view.active:
        return ForeignGuest(view.name, view.uuid, view.guest, None, config_xml=xml)
    config_text = config_xml()
    config = read_domain(config_text, reading.pool_paths, autostart, reading.sizes, foreign=True)
    assert config.guest is not None
    return ForeignGuest(view.name, view.uuid, config.guest, view.guest, config_xml=config_text)


def _running(view: DomainView, config: DomainView, config_xml: str) -> LiveGuest:
    assert view.guest is not None and config.guest is not None and config.record is not None
    return LiveGuest(view.name, view.uuid, config.record, config.guest, view.guest, config_xml=config_xml)


def live_state(
    domains: Iterable[tuple[str, Seen | None]],
    networks: Iterable[LiveNetwork],
    pools: Iterable[LivePool],
    volumes: Mapping[tuple[str, str], VolumeInfo],
) -> LiveState:
    """Live state from each domain as read (None: it vanished meanwhile).

    Everything is in name order: libvirt lists objects in the order of its hash tables.
    """
    guests, others, adoptable, elsewhere = [], {}, {}, {}
    for name, seen in domains:
        if isinstance(seen, LiveGuest):
            guests.append(seen)
        elif name.startswith(LOCK_PREFIX):
            continue  # apply locks are no one's guests, nor anyone's to adopt
        elif isinstance(seen, ForeignGuest):
            adoptable[name] = seen
            others[name] = NOT_MANAGED
        elif isinstance(seen, OtherHost):
            elsewhere[name] = seen.host
            others[name] = f"this project's guest of host {seen.host} (so its record says)"
        elif seen is not None:
            others[name] = seen
    guests.sort(key=lambda g: g.name)
    return LiveState(
        tuple(guests),
        dict(sorted(others.items())),
        _by_name(networks),
        _by_pool(pools),
        dict(volumes),
        dict(sorted(adoptable.items())),
        dict(sorted(elsewhere.items())),
    )


def _by_name(networks: Iterable[LiveNetwork]) -> tuple[LiveNetwork, ...]:
    return tuple(sorted(networks, key=lambda n: n.spec.libvirt_name))


def _by_pool(pools: Iterable[LivePool]) -> tuple[LivePool, ...]:
    return tuple(sorted(pools, key=lambda p: p.name))


def volume_infos(
    present: Iterable[tuple[str, str]], known: Mapping[tuple[str, str], int | None]
) -> dict[tuple[str, str], VolumeInfo]:
    """Every volume listed, with its size where it was read; one that vanished while being sized is left out."""
    infos = {}
    for key in present:
        if key not in known:
            infos[key] = VolumeInfo(key[0], key[1], None)
        elif (size := known[key]) is not None:
            infos[key] = VolumeInfo(key[0], key[1], size)
    return infos


def with_boot_volumes(guest: OwnedGuest, config_xml: str, pool_paths: Mapping[str, str]) -> OwnedGuest:
    """The guest with its kernel and initrd volumes, from its persistent definition."""
    config = read_domain(config_xml, pool_paths).guest
    boot = config.boot if config else None
    if config is None or boot is None:
        return guest
    files = [f for f in (boot.kernel, boot.initrd) if f is not None]
    return replace(guest, boot_volumes=tuple(VolumeRef(config.pool, f.volume) for f in files))


def owned_state(
    guests: Iterable[OwnedGuest],
    networks: Iterable[LiveNetwork],
    pools: Iterable[LivePool],
    present: Iterable[tuple[str, str]],
) -> OwnedState:
    """What an owner owns, everything in name order; volumes are listed, not sized."""
    volumes = {key: VolumeInfo(key[0], key[1], None) for key in present}
    return OwnedState(tuple(sorted(guests, key=lambda g: g.name)), _by_name(networks), _by_pool(pools), volumes)
