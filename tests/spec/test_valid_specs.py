"""Valid specs: every key of the schema accepted, and the model load_spec makes of them.

One full spec (two files, written into tmp_path) uses every key the schema defines; the tests check the
values vmctl derives from it: sizes in bytes, durations in seconds, count expansion, the workspace
prefix, derived MACs, defaults deep-merged, relative paths resolved against the file that wrote them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from vmctl.model import (
    CloudInitSpec,
    DevicesSpec,
    DiskSpec,
    GuestSpec,
    HostEntry,
    ImageSpec,
    NetworkSpec,
    NicSpec,
    PoolSpec,
    ShareSpec,
    Spec,
    naming,
)
from vmctl.spec.load import load_spec
from vmctl.units import UnitError, parse_duration, parse_size

if TYPE_CHECKING:
    from conftest import CliResult

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "schemas" / "vmctl.schema.json"
SHA_UPPER = "ABCDEF0123456789" * 4

MAIN = f"""\
version: 1
project: lab.test_1
connection: qemu:///session
expires_after: 2h
pools:
  default: {{path: /var/lib/libvirt/images/}}
  fast: {{path: /srv/fast}}
images:
  debian12:
    path: images/debian12.qcow2
    format: qcow2
    pool: fast
  alpine:
    url: https://example.org/alpine.raw
    sha256: {SHA_UPPER}
    format: raw
networks:
  labnet: {{mode: nat, ipv4: 198.51.100.1/24, dhcp: false}}
  iso: {{mode: isolated, ipv4: 203.0.113.1/24}}
  hostbr: {{mode: bridge, bridge: br0}}
  usernet: {{mode: user}}
defaults:
  memory: 512MiB
  boot: {{kernel: boot/vmlinuz}}
  devices: {{vsock: true}}
  disks:
    scratch: {{size: 1GiB}}
  cloud_init:
    meta_data: {{owner: team-a}}
    sensitive: [token]
  wait: {{timeout: 2m}}
guests:
  web:
    count: 2
    accel: tcg
    machine: pc-q35-8.2
    firmware: uefi
    cpu_model: qemu64
    cpus: 2
    max_cpus: 4
    memory: 1.5GiB
    max_memory: 2GiB
    state: stopped
    autostart: true
    pool: fast
    boot:
      kernel: boot/vmlinuz-web
      initrd: boot/initrd.img
      cmdline: console=ttyS0
    disks:
      root: {{image: debian12, size: 20GB, bus: virtio, pool: default}}
      data: {{size: 512MB, bus: scsi}}
    nics:
      primary: {{network: labnet, model: e1000}}
      uplink: {{bridge: br1}}
      slirp: {{user: {{}}}}
      viabridge: {{network: hostbr}}
      viauser: {{network: usernet}}
    shares:
      src: {{source: /srv/src, readonly: true}}
    devices:
      rng: false
      balloon: false
      agent: true
      console: none
    cloud_init:
      user_data:
        packages: [nginx]
        password: hunter2
      meta_data: {{role: web}}
      network_config: {{version: 2, ethernets: {{}}}}
      sensitive: [password]
    wait:
      agent: true
      cloud_init: true
      timeout: 1m30s
    prevent_destroy: true
  db:
    disks:
      pg: {{image: alpine}}
    nics:
      primary: {{network: iso, mac: "52:54:00:AB:CD:EF", ipv4: 203.0.113.20}}
    cloud_init:
      user_data: |
        #cloud-config
        packages: [postgresql]
  cache:
    cloud_init:
      user_data_file: cloud/cache.yaml
"""

EXTRA = """\
version: 1
variables:
  edge_cpus: {type: integer, default: 1, description: "vCPUs of the edge guest", sensitive: false}
moved:
  - {from: gateway, to: edge}
guests:
  edge:
    cpus: ${var.edge_cpus}
    ignore_changes: [memory, cloud_init]
    nics:
      primary: {network: labnet}
    cloud_init:
      user_data_file: user-data
"""

# What `vmctl import` writes: an adopted domain on existing volumes, files and networks.
ADOPTED = """\
version: 1
project: legacy
networks:
  shared: {mode: existing, name: default}
guests:
  legacy:
    adopt: true
    disks:
      root: {volume: {pool: default, name: legacy.qcow2}, format: qcow2}
      old: {path: /srv/old.img, format: raw}
      seed: {cdrom: true, volume: {pool: default, name: legacy-cidata.iso}}
      install: {cdrom: true, bus: ide}
    nics:
      primary: {network: shared, mac: "52:54:00:12:34:56"}
"""

HOSTS = """\
version: 1
project: spread
hosts:
  laptop: {uri: "qemu:///system"}
  rack1: {uri: "qemu+ssh://ops@rack1/system"}
defaults:
  host: laptop
guests:
  web: {host: rack1}
  db: {}
"""

CACHE_USER_DATA = "#cloud-config\npackages: [redis]\n"
EDGE_USER_DATA = "#!/bin/sh\necho edge\n"


@pytest.fixture
def full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The full spec in tmp_path/specs; the current directory is tmp_path/elsewhere."""
    specs = tmp_path / "specs"
    for name, text in {
        "vmctl.yaml": MAIN,
        "more/extra.yaml": EXTRA,
        "images/debian12.qcow2": "stub image\n",
        "boot/vmlinuz": "stub kernel\n",
        "boot/vmlinuz-web": "stub kernel for web\n",
        "boot/initrd.img": "stub initrd\n",
        "cloud/cache.yaml": CACHE_USER_DATA,
        "more/user-data": EDGE_USER_DATA,
    }.items():
        (specs / name).parent.mkdir(parents=True, exist_ok=True)
        (specs / name).write_text(text)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    yield specs


FILES = ["../specs/vmctl.yaml", "../specs/more/extra.yaml"]


def load(workspace: str | None = "ci") -> Spec:
    return load_spec(FILES, workspace)


def by_name(items: Any) -> dict[str, Any]:
    return {item.name: item for item in items}


# -- the schema is covered -------------------------------------------------------------------------


def schema() -> dict[str, Any]:
    """The schema as vmctl checks a spec with it: every value of its type (references substituted)."""
    from vmctl.spec.schema import schema as strict

    return strict()


def schema_keys(node: dict[str, Any], where: str, out: set[tuple[str, str]]) -> None:
    """Every (object, key) the schema defines, objects named by their $defs name ('' for the top)."""
    for key in node.get("properties", {}):
        out.add((where, key))


def used_keys(node: dict[str, Any], where: str, data: Any, out: set[tuple[str, str]], defs: dict[str, Any]) -> None:
    """Walk data alongside the schema, recording each (object, key) the data uses."""
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[1]
        used_keys(defs[name], name, data, out, defs)
        return
    if isinstance(data, list) and isinstance(node.get("items"), dict):
        for item in data:
            used_keys(node["items"], where, item, out, defs)
        return
    if not isinstance(data, dict):
        return
    for key, value in data.items():
        if key in node.get("properties", {}):
            out.add((where, key))
            used_keys(node["properties"][key], f"{where}.{key}", value, out, defs)
        elif isinstance(node.get("additionalProperties"), dict):
            used_keys(node["additionalProperties"], where, value, out, defs)


def test_full_spec_uses_every_key_of_the_schema() -> None:
    s = schema()
    defs = s["$defs"]
    defined: set[tuple[str, str]] = set()
    schema_keys(s, "", defined)
    for name, node in defs.items():
        schema_keys(node, name, defined)
    defined.add(("cloudInit.network_config", "version"))  # the one nested object with its own properties
    used: set[tuple[str, str]] = set()
    for text in (MAIN, EXTRA, ADOPTED, HOSTS):
        used_keys(s, "", yaml.safe_load(text), used, defs)
    assert defined - used == set()


def test_validate_full_spec(full: Path, cli: Callable[..., CliResult]) -> None:
    result = cli("validate", "--workspace", "ci", *FILES, cwd=Path.cwd())
    assert result.code == 0, result.err
    assert result.err == ""
    assert result.out == "ok: 2 file(s), 5 guests in project lab.test_1\n"


def test_validate_full_spec_json(full: Path, cli: Callable[..., CliResult]) -> None:
    result = cli("-w", "ci", "validate", "--json", *FILES, cwd=Path.cwd())
    assert result.code == 0, result.err
    assert json.loads(result.out) == {
        "valid": True,
        "project": "lab.test_1",
        "files": FILES,
        "guests": ["ci-web-1", "ci-web-2", "ci-db", "ci-cache", "ci-edge"],
    }


def test_validate_a_directory(full: Path, cli: Callable[..., CliResult]) -> None:
    """A directory means its *.yaml files (not those of its subdirectories)."""
    result = cli("validate", "../specs", cwd=Path.cwd())
    assert result.code == 0, result.err
    assert result.out == "ok: 1 file(s), 4 guests in project lab.test_1\n"


# -- the model -------------------------------------------------------------------------------------


def test_top_level(full: Path) -> None:
    spec = load()
    assert (spec.project, spec.workspace, spec.connection) == ("lab.test_1", "ci", "qemu:///session")
    assert spec.files == tuple(FILES)
    assert spec.pools == (PoolSpec("default", "/var/lib/libvirt/images"), PoolSpec("fast", "/srv/fast"))


def test_images(full: Path) -> None:
    images = by_name(load().images)
    assert images["debian12"] == ImageSpec("debian12", "qcow2", "fast", full / "images/debian12.qcow2")
    assert images["alpine"] == ImageSpec(
        "alpine", "raw", "default", None, "https://example.org/alpine.raw", SHA_UPPER.lower()
    )


def test_networks(full: Path) -> None:
    networks = by_name(load().networks)
    assert networks == {
        "labnet": NetworkSpec("labnet", "ci-lab.test_1-labnet", "nat", "198.51.100.1/24", False),
        "iso": NetworkSpec(
            "iso",
            "ci-lab.test_1-iso",
            "isolated",
            "203.0.113.1/24",
            True,
            hosts=(HostEntry("52:54:00:ab:cd:ef", "203.0.113.20", ("db", "db.lab.test_1")),),
        ),
        "hostbr": NetworkSpec("hostbr", "ci-lab.test_1-hostbr", "bridge", None, False, "br0"),
        "usernet": NetworkSpec("usernet", "ci-lab.test_1-usernet", "user", None, False),
    }


def test_fixed_address_and_expiry(full: Path) -> None:
    spec = load()
    db = next(g for g in spec.guests if g.guest == "db")
    assert db.nics[0].ipv4 == "203.0.113.20"
    assert spec.expires_after == 2 * 3600


def test_count_expansion_and_workspace_prefix(full: Path) -> None:
    guests = load().guests
    assert [(g.name, g.guest, g.hostname) for g in guests] == [
        ("ci-web-1", "web", "web-1"),
        ("ci-web-2", "web", "web-2"),
        ("ci-db", "db", "db"),
        ("ci-cache", "cache", "cache"),
        ("ci-edge", "edge", "edge"),
    ]
    assert [g.name for g in load(None).guests] == ["web-1", "web-2", "db", "cache", "edge"]


def test_guest_scalars(full: Path) -> None:
    web = load().guest("ci-web-2")
    assert isinstance(web, GuestSpec)
    assert (web.accel, web.machine, web.firmware, web.cpu_model) == ("tcg", "pc-q35-8.2", "uefi", "qemu64")
    assert (web.cpus, web.max_cpus) == (2, 4)
    assert (web.memory, web.max_memory) == (1536 * 1024**2, 2 * 1024**3)
    assert (web.state, web.autostart, web.pool, web.prevent_destroy) == ("stopped", True, "fast", True)
    assert web.shares == (ShareSpec("src", "/srv/src", True),)
    assert web.devices == DevicesSpec(rng=False, balloon=False, agent=True, vsock=True, console="none")


def test_guest_defaults_when_unset(full: Path) -> None:
    cache = load().guest("ci-cache")
    assert isinstance(cache, GuestSpec)
    assert (cache.accel, cache.machine, cache.firmware, cache.cpu_model) == ("auto", "q35", "bios", None)
    assert (cache.cpus, cache.max_cpus) == (1, 1)
    assert (cache.memory, cache.max_memory) == (512 * 1024**2, 512 * 1024**2)  # memory from defaults
    assert (cache.state, cache.autostart, cache.pool, cache.prevent_destroy) == ("running", False, "default", False)
    assert cache.devices == DevicesSpec(vsock=True)  # defaults' devices, the rest at their defaults
    assert cache.shares == ()
    assert cache.nics == ()


def test_disks(full: Path) -> None:
    spec = load()
    web, db = spec.guest("ci-web-1"), spec.guest("ci-db")
    assert web is not None and db is not None
    assert by_name(web.disks) == {
        "scratch": DiskSpec("scratch", "virtio", "fast", "ci-web-1-scratch.qcow2", 1024**3),  # from defaults
        "root": DiskSpec("root", "virtio", "default", "ci-web-1-root.qcow2", 20_000_000_000, "debian12"),
        "data": DiskSpec("data", "scsi", "fast", "ci-web-1-data.qcow2", 512_000_000),
    }
    assert by_name(db.disks) == {
        "scratch": DiskSpec("scratch", "virtio", "default", "ci-db-scratch.qcow2", 1024**3),
        "pg": DiskSpec("pg", "virtio", "default", "ci-db-pg.qcow2", None, "alpine"),  # None: the image's size
    }


def test_nics(full: Path) -> None:
    spec = load()
    web = spec.guest("ci-web-1")
    assert web is not None
    nics = by_name(web.nics)
    assert {n: (nic.kind, nic.source, nic.model) for n, nic in nics.items()} == {
        "primary": ("network", "ci-lab.test_1-labnet", "e1000"),
        "uplink": ("bridge", "br1", "virtio"),
        "slirp": ("user", "", "virtio"),
        "viabridge": ("bridge", "br0", "virtio"),  # a bridge network is its host bridge
        "viauser": ("user", "", "virtio"),
    }
    db = spec.guest("ci-db")
    assert db is not None
    assert db.nics == (NicSpec("primary", "network", "ci-lab.test_1-iso", "52:54:00:ab:cd:ef"),)  # lower case


def all_macs(spec: Spec) -> dict[tuple[str, str], str]:
    return {(g.name, n.name): n.mac for g in spec.guests for n in g.nics}


def test_derived_macs_are_stable_unique_and_local(full: Path) -> None:
    first, again, bare = all_macs(load()), all_macs(load()), all_macs(load(None))
    assert first == again
    assert len(set(first.values())) == len(first) == 12
    derived = {k: v for k, v in first.items() if k != ("ci-db", "primary")}
    for (guest, nic), mac in derived.items():
        hostname = guest.removeprefix("ci-")
        assert mac == naming.derived_mac("lab.test_1", "ci", hostname, nic)
        assert mac.startswith("52:54:")
        octets = [int(part, 16) for part in mac.split(":")]
        assert len(octets) == 6 and octets[0] & 1 == 0  # unicast
    assert first[("ci-web-1", "primary")] != first[("ci-web-2", "primary")]
    # another workspace gets other MACs (the explicit one stays)
    assert bare[("db", "primary")] == first[("ci-db", "primary")]
    assert bare[("web-1", "primary")] != first[("ci-web-1", "primary")]


def test_defaults_deep_merged(full: Path) -> None:
    """Mappings merge key by key; everything else (scalars, lists) is replaced by the guest's value."""
    spec = load()
    web, db = spec.guest("ci-web-1"), spec.guest("ci-db")
    assert web is not None and db is not None and web.cloud_init and db.cloud_init
    assert web.cloud_init.meta_data == {"owner": "team-a", "role": "web"}  # merged
    assert web.cloud_init.sensitive == ("password",)  # list replaced, not concatenated
    assert db.cloud_init.meta_data == {"owner": "team-a"}
    assert db.cloud_init.sensitive == ("token",)
    assert web.memory == 1536 * 1024**2 and db.memory == 512 * 1024**2  # scalar replaced
    assert {d.name for d in web.disks} == {"scratch", "root", "data"}  # disks merged by name
    assert web.devices.vsock and not web.devices.rng  # devices merged
    assert (web.wait.timeout, db.wait.timeout) == (90.0, 120.0)


def test_relative_paths_resolved_against_their_file(full: Path) -> None:
    spec = load()
    web, db, edge = spec.guest("ci-web-1"), spec.guest("ci-db"), spec.guest("ci-edge")
    assert web is not None and db is not None and edge is not None
    assert web.boot is not None and web.boot.initrd is not None
    assert web.boot.cmdline == "console=ttyS0"
    assert web.boot.kernel.path == full / "boot/vmlinuz-web"
    assert web.boot.initrd.path == full / "boot/initrd.img"
    assert db.boot is not None and db.boot.kernel.path == full / "boot/vmlinuz"  # from defaults
    # edge is in more/extra.yaml: its kernel comes from the defaults (specs/), its user-data from more/
    assert edge.boot is not None and edge.boot.kernel.path == full / "boot/vmlinuz"
    assert edge.cloud_init is not None and edge.cloud_init.user_data == EDGE_USER_DATA


def test_user_data_forms(full: Path) -> None:
    spec = load()
    web, db, cache = spec.guest("ci-web-1"), spec.guest("ci-db"), spec.guest("ci-cache")
    assert web is not None and db is not None and cache is not None
    assert web.cloud_init == CloudInitSpec(
        {"packages": ["nginx"], "password": "hunter2"},
        {"owner": "team-a", "role": "web"},
        {"version": 2, "ethernets": {}},
        ("password",),
    )
    assert db.cloud_init is not None and db.cloud_init.user_data == "#cloud-config\npackages: [postgresql]\n"
    assert cache.cloud_init is not None and cache.cloud_init.user_data == CACHE_USER_DATA
    assert cache.cloud_init.network_config is None


def test_wait(full: Path) -> None:
    spec = load()
    web, cache = spec.guest("ci-web-1"), spec.guest("ci-cache")
    assert web is not None and cache is not None
    assert (web.wait.agent, web.wait.cloud_init, web.wait.timeout, web.wait.enabled) == (True, True, 90.0, True)
    # cache: the defaults' wait section only sets a timeout; cloud-init is waited for as it has a seed
    assert (cache.wait.agent, cache.wait.cloud_init, cache.wait.timeout) == (True, True, 120.0)


def test_without_wait_or_defaults(write: Callable[[str, str], Path], monkeypatch: pytest.MonkeyPatch) -> None:
    path = write("vmctl.yaml", "version: 1\nproject: lab\nguests:\n  web: {}\n")
    monkeypatch.chdir(path.parent)
    (web,) = load_spec(["vmctl.yaml"]).guests
    assert (web.wait.agent, web.wait.cloud_init, web.wait.timeout, web.wait.enabled) == (True, False, 300.0, False)
    assert web.disks == () and web.boot is None and web.cloud_init is None
    assert (web.memory, web.max_memory, web.pool) == (1024**3, 1024**3, "default")


# -- smaller valid forms ----------------------------------------------------------------------------


def spec_from(write: Callable[[str, str], Path], monkeypatch: pytest.MonkeyPatch, text: str) -> Spec:
    path = write("vmctl.yaml", text)
    monkeypatch.chdir(path.parent)
    return load_spec(["vmctl.yaml"])


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512MiB", 512 * 1024**2),
        ("2GiB", 2 * 1024**3),
        ("1TiB", 1024**4),
        ("1PiB", 1024**5),
        ("64KiB", 65536),
        ("1.5GiB", 1610612736),
        ("0.5KiB", 512),
        ("4096B", 4096),
        ("500MB", 500_000_000),
        ("20GB", 20_000_000_000),
        ("2TB", 2_000_000_000_000),
        ("1PB", 10**15),
        ("3kB", 3000),
        ("3KB", 3000),
        ("2.5GB", 2_500_000_000),
        (" 2 GiB ", 2 * 1024**3),
    ],
)
def test_sizes_are_exact(text: str, size: int) -> None:
    assert Draft202012Validator(schema()["$defs"]["size"]).is_valid(text)
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1m30s", 90.0),
        ("500ms", 0.5),
        ("1.5h", 5400.0),
        ("1h1m1s", 3661.0),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert Draft202012Validator(schema()["$defs"]["duration"]).is_valid(text)
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("field", "low", "high"),
    [
        ("memory", "16MiB", "16TiB"),
        ("max_memory", "16MiB", "16TiB"),
    ],
)
def test_memory_range_includes_its_ends(
    field: str, low: str, high: str, write: Callable[[str, str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    for value in (low, high):
        extra = "max_memory: 16TiB" if field == "memory" else "memory: 16MiB"
        text = f"version: 1\nproject: lab\nguests:\n  web: {{{field}: {value}, {extra}}}\n"
        (web,) = spec_from(write, monkeypatch, text).guests
        assert getattr(web, field) == parse_size(value)


def test_disk_and_wait_ranges_include_their_ends(
    write: Callable[[str, str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = """
        version: 1
        project: lab
        guests:
          small: {disks: {d: {size: 1MiB}}, wait: {timeout: 1s}}
          large: {disks: {d: {size: 2PiB}}, wait: {timeout: 24h}, cpus: 255, max_cpus: 255}
        """
    small, large = spec_from(write, monkeypatch, text).guests
    assert (small.disks[0].size, small.wait.timeout) == (1024**2, 1.0)
    assert (large.disks[0].size, large.wait.timeout, large.max_cpus) == (2 * 1024**5, 86400.0, 255)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("9" * 100_000 + "GiB", "99999…GiB is above the maximum, 9223372036854775807B"),
        ("1." + "0" * 100_000 + "1GiB", "'1.000…GiB' is not a whole number of bytes"),
        ("0." + "0" * 15 + "88817841970012523233890533447265625PiB", None),  # exactly 1B: 50 decimals
        ("1" + "0" * 100_000 + "ms", "10000…ms is above the maximum, 8760h"),
    ],
)
def test_long_numbers_are_judged_without_converting_them(text: str, message: str | None) -> None:
    """However many digits, the answer is quick and exact (Python refuses int() past 4,300 digits)."""
    parse = parse_duration if text.endswith("ms") else parse_size
    if message is None:
        assert parse(text) == 1
        return
    with pytest.raises(UnitError) as raised:
        parse(text)
    assert str(raised.value) == message


def test_schema_examples_parse() -> None:
    defs = schema()["$defs"]
    for example in defs["size"]["examples"]:
        assert parse_size(example) > 0
    for example in defs["duration"]["examples"]:
        assert parse_duration(example) > 0


def test_sizes_in_a_spec(write: Callable[[str, str], Path], monkeypatch: pytest.MonkeyPatch) -> None:
    spec = spec_from(
        write,
        monkeypatch,
        """
        version: 1
        project: lab
        guests:
          web:
            memory: 1048576kB
            max_memory: 4GB
            disks:
              a: {size: 1TB}
              b: {size: 1TiB}
              c: {size: 1048576B}
        """,
    )
    (web,) = spec.guests
    assert web.memory == 1_048_576_000  # exactly 1000MiB
    assert web.max_memory == 4_000_000_000 + (-4_000_000_000) % 1024**2  # rounded up to whole MiB
    assert {d.name: d.size for d in web.disks} == {"a": 10**12, "b": 1024**4, "c": 1024**2}


def test_count_one_and_many(write: Callable[[str, str], Path], monkeypatch: pytest.MonkeyPatch) -> None:
    spec = spec_from(
        write,
        monkeypatch,
        """
        version: 1
        project: lab
        guests:
          solo: {count: 1}
          node: {count: 3}
        """,
    )
    assert [g.name for g in spec.guests] == ["solo", "node-1", "node-2", "node-3"]


def test_single_pool_is_the_default(write: Callable[[str, str], Path], monkeypatch: pytest.MonkeyPatch) -> None:
    spec = spec_from(
        write,
        monkeypatch,
        """
        version: 1
        project: lab
        pools:
          mine: {path: /srv/vms}
        guests:
          web:
            disks:
              data: {size: 1GiB}
        """,
    )
    (web,) = spec.guests
    assert web.pool == "mine" and web.disks[0].pool == "mine"


def test_yaml_anchors_and_merge_keys(write: Callable[[str, str], Path], monkeypatch: pytest.MonkeyPatch) -> None:
    spec = spec_from(
        write,
        monkeypatch,
        """
        version: 1
        project: lab
        guests:
          web: &base
            cpus: 2
            memory: 2GiB
          db:
            <<: *base
            memory: 4GiB
        """,
    )
    assert [(g.name, g.cpus, g.memory) for g in spec.guests] == [("web", 2, 2 * 1024**3), ("db", 2, 4 * 1024**3)]


def test_unquoted_mac_with_letters(write: Callable[[str, str], Path], monkeypatch: pytest.MonkeyPatch) -> None:
    spec = spec_from(
        write,
        monkeypatch,
        """
        version: 1
        project: lab
        guests:
          web:
            nics:
              primary: {user: {}, mac: 52:54:00:Ab:cD:eF}
        """,
    )
    assert spec.guests[0].nics[0].mac == "52:54:00:ab:cd:ef"


def test_unquoted_mac_of_decimal_pairs_is_not_a_base_60_number(
    write: Callable[[str, str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # YAML 1.1 reads 52:54:00:12:34:56 as the integer 41135085296; vmctl's reader keeps it a string.
    spec = spec_from(
        write,
        monkeypatch,
        """
        version: 1
        project: lab
        guests:
          web:
            nics:
              primary: {user: {}, mac: 52:54:00:12:34:56}
        """,
    )
    assert spec.guests[0].nics[0].mac == "52:54:00:12:34:56"


def test_bom_and_crlf(tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    text = "version: 1\r\nproject: lab\r\nguests:\r\n  web: {memory: 2GiB}\r\n"
    (tmp_path / "vmctl.yaml").write_bytes(b"\xef\xbb\xbf" + text.encode())
    result = cli("validate", cwd=tmp_path)  # no argument: ./vmctl.yaml
    assert (result.code, result.out) == (0, "ok: 1 file(s), 1 guest in project lab\n"), result.err


def test_project_from_another_file(tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    (tmp_path / "a.yaml").write_text("version: 1\nguests:\n  web: {}\n")
    (tmp_path / "b.yml").write_text("version: 1\nproject: lab\nguests:\n  db: {}\n")
    result = cli("validate", ".", cwd=tmp_path)
    assert (result.code, result.out) == (0, "ok: 2 file(s), 2 guests in project lab\n"), result.err


def test_no_guests(tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    (tmp_path / "vmctl.yaml").write_text("version: 1\nproject: lab\n")
    result = cli("validate", "vmctl.yaml", cwd=tmp_path)
    assert (result.code, result.out) == (0, "ok: 1 file(s), 0 guests in project lab\n"), result.err


# -- `vmctl schema` ---------------------------------------------------------------------------------


def test_schema_command(cli: Callable[..., CliResult]) -> None:
    result = cli("schema")
    assert result.code == 0, result.err
    printed = json.loads(result.out)
    Draft202012Validator.check_schema(printed)
    assert printed["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert printed == json.loads(SCHEMA_FILE.read_text("utf-8"))
    assert result.out == SCHEMA_FILE.read_text("utf-8")


def test_published_schema_accepts_references_everywhere() -> None:
    """An editor checking against the published schema accepts `${...}` in any value: vmctl checks
    the value once substituted (test_bad_specs' variable cases)."""
    published = json.loads(SCHEMA_FILE.read_text("utf-8"))
    validator = Draft202012Validator(published)
    doc = yaml.safe_load(EXTRA)
    doc["guests"]["edge"].update(memory="${var.m}", count="${var.n}", autostart="${var.b}", state="${var.s}")
    doc["guests"]["edge"]["nics"]["primary"]["mac"] = "52:54:00:00:00:0${guest.index}"
    assert [e.message for e in validator.iter_errors(doc)] == []
    doc["guests"]["edge"]["memory"] = "lots"
    assert list(validator.iter_errors(doc)) != []


def test_an_adopted_guest_uses_existing_volumes_files_and_networks(tmp_path: Path) -> None:
    path = tmp_path / "vmctl.yaml"
    path.write_text(ADOPTED)
    spec = load_spec([str(path)], None)
    guest = spec.guests[0]
    assert guest.adopt
    root, old, seed, install = guest.disks
    assert (root.source, root.pool, root.volume, root.owned) == ("volume", "default", "legacy.qcow2", False)
    assert (old.source, old.pool, old.volume, old.format) == ("path", "", "/srv/old.img", "raw")
    assert (seed.cdrom, seed.source, seed.volume, seed.bus, seed.format) == (
        True,
        "volume",
        "legacy-cidata.iso",
        "sata",
        "raw",
    )
    assert not seed.owned  # its media is never deleted
    assert (install.cdrom, install.source, install.volume, install.bus) == (True, "empty", "", "ide")
    assert guest.nics[0].source == "default"  # the existing network, by its own name: no project prefix
    assert spec.networks[0].managed is False


def test_hosts_place_each_guest(tmp_path: Path) -> None:
    """A guest runs on the host it names, else on the defaults' host."""
    from vmctl.spec.load import load_spec

    (tmp_path / "vmctl.yaml").write_text(HOSTS)
    spec = load_spec([str(tmp_path / "vmctl.yaml")])
    assert [(h.name, h.uri) for h in spec.hosts] == [
        ("laptop", "qemu:///system"),
        ("rack1", "qemu+ssh://ops@rack1/system"),
    ]
    assert {g.name: g.host for g in spec.guests} == {"web": "rack1", "db": "laptop"}


def test_the_only_host_needs_no_naming(tmp_path: Path) -> None:
    from vmctl.spec.load import load_spec

    (tmp_path / "vmctl.yaml").write_text(
        "version: 1\nproject: p\nhosts:\n  a: {uri: 'test:///default'}\nguests:\n  g: {}\n"
    )
    assert [g.host for g in load_spec([str(tmp_path / "vmctl.yaml")]).guests] == ["a"]
