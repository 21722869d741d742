"""Who and where to ssh to, from the cloud-init content vmctl recorded and the addresses libvirt reports."""

from __future__ import annotations

from pathlib import Path

import yaml

from vmctl.model import CloudInitSpec, NicSpec
from vmctl.reach.access import (
    Access,
    ansible_inventory,
    authorized_keys,
    best_addresses,
    login_user,
    private_key,
    ssh_command,
    ssh_config,
)

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHqvYpZ3mBq5r8l0xVx0oH4p3G9Yk7m2T1cQJ0hG6cWb me@laptop"


def test_the_login_user_is_the_first_users_entry_or_the_named_default() -> None:
    assert login_user(CloudInitSpec({"users": [{"name": "ops"}, {"name": "db"}]})) == "ops"
    assert login_user(CloudInitSpec({"users": ["default", {"name": "ops"}]})) is None  # the image decides
    named = {"users": ["default"], "system_info": {"default_user": {"name": "admin"}}}
    assert login_user(CloudInitSpec(named)) == "admin"
    assert login_user(CloudInitSpec("#!/bin/sh\n")) is None and login_user(None) is None


def test_the_key_is_the_private_half_of_an_authorized_public_key(tmp_path: Path) -> None:
    spec = CloudInitSpec({"users": [{"name": "ops", "ssh_authorized_keys": [KEY]}]})
    assert authorized_keys(spec) == [KEY]
    other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherOtherOtherOtherOtherOtherOtherOth x"
    public = {tmp_path / "id_rsa.pub": other, tmp_path / "id_ed25519.pub": KEY.replace("me@laptop", "renamed")}
    assert private_key(authorized_keys(spec), public) == str(tmp_path / "id_ed25519")
    assert private_key(authorized_keys(spec), {tmp_path / "id_rsa.pub": other}) is None


def test_addresses_the_host_can_reach_come_first() -> None:
    nics = [NicSpec("lan", "network", "lan", "52:54:00:00:00:01"), NicSpec("out", "user", "", "52:54:00:00:00:02")]
    addresses = {
        "52:54:00:00:00:01": ["fe80::1", "2001:db8::5", "198.51.100.10"],
        "52:54:00:00:00:02": ["10.0.2.15"],  # user-mode networking: the host cannot reach it
    }
    assert best_addresses(addresses, nics) == ("198.51.100.10", "2001:db8::5")


def test_ssh_config_and_inventory_name_every_guest_with_an_address() -> None:
    up = Access("web", "web", "running", ("198.51.100.10",), "ops", "/home/me/.ssh/id_ed25519")
    down = Access("db", "db", "stopped", (), None, None)
    config = ssh_config([up, down])
    assert "Host web\n  HostName 198.51.100.10\n  User ops\n" in config
    assert "# db: no address yet (stopped)" in config
    inventory = yaml.safe_load(yaml.safe_dump(ansible_inventory("lab", [up, down])))
    assert inventory["all"]["children"]["lab"]["hosts"] == {
        "web": {
            "ansible_host": "198.51.100.10",
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
            "ansible_user": "ops",
            "ansible_ssh_private_key_file": "/home/me/.ssh/id_ed25519",
        }
    }
    assert ssh_command(up, ["uptime"])[-3:] == ["ops@198.51.100.10", "--", "uptime"]
