"""Who and where to log in to a guest, and the files other tools read: an ssh config, an Ansible inventory.

Pure: the addresses come from the hypervisor (the agent, then DHCP leases), the user and the key
from the cloud-init content vmctl recorded; the key is the private half of a public key in
~/.ssh that the guest authorizes. Files are made with a YAML library, never by formatting YAML.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vmctl.model import CloudInitSpec, NicSpec

# Guests are recreated with new host keys whenever a spec says so: a known_hosts entry would only
# turn that into a scary warning. Each guest's address is vmctl's to know, not the user's to verify.
SSH_OPTIONS = (
    ("StrictHostKeyChecking", "no"),
    ("UserKnownHostsFile", "/dev/null"),
    ("LogLevel", "ERROR"),
)


@dataclass(frozen=True, slots=True)
class Access:
    """How to reach one guest: its domain, addresses (best first), user and private key."""

    name: str  # the domain name: the host alias in an ssh config and the inventory's host name
    guest: str  # the spec's guest key: the inventory group
    state: str
    addresses: tuple[str, ...]
    user: str | None
    key: str | None

    @property
    def host(self) -> str | None:
        """The address to use: the first one."""
        return self.addresses[0] if self.addresses else None


def login_user(cloud_init: CloudInitSpec | None) -> str | None:
    """The first `users:` entry, or cloud-init's default user when the spec names it; else None (ssh decides)."""
    data = cloud_init.user_data if cloud_init else None
    if not isinstance(data, Mapping):
        return None
    for entry in data.get("users") or ["default"]:
        if isinstance(entry, Mapping) and entry.get("name"):
            return str(entry["name"])
        if isinstance(entry, str) and entry != "default":
            return entry.split(",")[0].strip()
        if entry == "default":
            return _default_user(data)
    return None


def _default_user(data: Mapping[str, Any]) -> str | None:
    system_info = data.get("system_info")
    default = system_info.get("default_user") if isinstance(system_info, Mapping) else None
    name = default.get("name") if isinstance(default, Mapping) else None
    return str(name) if name else None


def authorized_keys(cloud_init: CloudInitSpec | None) -> list[str]:
    """The public keys the guest authorizes: the login user's, then the top-level ones."""
    data = cloud_init.user_data if cloud_init else None
    if not isinstance(data, Mapping):
        return []
    found: list[str] = []
    users = [u for u in data.get("users") or [] if isinstance(u, Mapping)]
    for holder in [*users[:1], data]:
        keys = holder.get("ssh_authorized_keys") or []
        found.extend(str(k) for k in keys if isinstance(k, str))
    return found


def _key_body(line: str) -> tuple[str, str] | None:
    parts = line.split()
    for index, part in enumerate(parts[:-1]):
        if part.startswith(("ssh-", "ecdsa-", "sk-")):
            return part, parts[index + 1]
    return None


def private_key(authorized: Sequence[str], public_keys: Mapping[Path, str]) -> str | None:
    """The private key whose public half (a `*.pub` file's text) the guest authorizes."""
    wanted = {body for line in authorized if (body := _key_body(line))}
    for path, text in sorted(public_keys.items()):
        private = path.with_suffix("")
        if _key_body(text) in wanted and private != path:
            return str(private)
    return None


def best_addresses(addresses: Mapping[str, Sequence[str]], nics: Iterable[NicSpec] | None) -> tuple[str, ...]:
    """IPv4 before IPv6, never loopback or link-local, and none of a user-mode NIC (the host cannot reach it)."""
    unreachable = {n.mac for n in nics or () if n.kind == "user"}
    found = []
    for mac, ips in addresses.items():
        if mac in unreachable:
            continue
        for text in ips:
            ip = ipaddress.ip_address(text.split("%")[0])
            if not (ip.is_loopback or ip.is_link_local):
                found.append(ip)
    found.sort(key=lambda ip: (ip.version, ip))
    return tuple(dict.fromkeys(str(ip) for ip in found))


def ssh_command(access: Access, command: Sequence[str] = ()) -> list[str]:
    """The system ssh, so the user's ~/.ssh/config applies too; `command` runs instead of a shell."""
    argv = ["ssh"]
    for option, value in SSH_OPTIONS:
        argv += ["-o", f"{option}={value}"]
    if access.key:
        argv += ["-i", access.key, "-o", "IdentitiesOnly=yes"]
    target = f"{access.user}@{access.host}" if access.user else str(access.host)
    return [*argv, target, *(["--", *command] if command else [])]


def ssh_config(guests: Sequence[Access]) -> str:
    """An `ssh -F` file: one Host per guest that has an address."""
    blocks = []
    for guest in guests:
        if guest.host is None:
            blocks.append(f"# {guest.name}: no address yet ({guest.state})\n")
            continue
        lines = [f"Host {guest.name}", f"  HostName {guest.host}"]
        if guest.user:
            lines.append(f"  User {guest.user}")
        if guest.key:
            lines += [f'  IdentityFile "{guest.key}"', "  IdentitiesOnly yes"]
        lines += [f"  {option} {value}" for option, value in SSH_OPTIONS]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def ansible_inventory(project: str, guests: Sequence[Access]) -> dict[str, Any]:
    """An Ansible YAML inventory: every guest with an address, grouped by its spec guest (count instances)."""
    common = " ".join(f"-o {option}={value}" for option, value in SSH_OPTIONS)
    hosts: dict[str, Any] = {}
    groups: dict[str, Any] = {}
    for guest in guests:
        if guest.host is None:
            continue
        variables: dict[str, Any] = {"ansible_host": guest.host, "ansible_ssh_common_args": common}
        if guest.user:
            variables["ansible_user"] = guest.user
        if guest.key:
            variables["ansible_ssh_private_key_file"] = guest.key
        hosts[guest.name] = variables
        groups.setdefault(_group_name(guest.guest), {"hosts": {}})["hosts"][guest.name] = None
    # A guest with `count` makes a group of its instances; a group named like a host confuses Ansible.
    groups = {name: group for name, group in groups.items() if name not in hosts}
    project_group: dict[str, Any] = {"hosts": hosts}
    if groups:
        project_group["children"] = groups
    return {"all": {"children": {_group_name(project): project_group}}}


def _group_name(name: str) -> str:
    """Ansible warns about group names that are not identifiers."""
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name)


def as_json(access: Access) -> dict[str, Any]:
    return {
        "name": access.name,
        "guest": access.guest,
        "state": access.state,
        "host": access.host,
        "addresses": list(access.addresses),
        "user": access.user,
        "key": access.key,
    }
