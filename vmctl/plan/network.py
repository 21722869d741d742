"""Networks in the plan: created, started, recreated when their range or mode changes, and their
fixed addresses (DHCP reservations with DNS names) added, changed or removed on the running network."""

from __future__ import annotations

from vmctl.model import DesiredState, HostEntry, LiveNetwork, LiveState, NetworkSpec, Owner
from vmctl.plan.changes import (
    Action,
    Change,
    Effect,
    FieldChange,
    HostStep,
    HostWork,
    Kind,
    NetworkSteps,
    NicRef,
)
from vmctl.plan.expiry import EXPIRY_REASON, expiry_change


def _ours(owner: Owner | None, desired: DesiredState) -> bool:
    return desired.owner.same_scope(owner)


def _network_summary(net: NetworkSpec, expires: str) -> tuple[FieldChange, ...]:
    fields = [
        FieldChange("mode", None, net.mode, Effect.CREATE),
        FieldChange("ipv4", None, net.ipv4, Effect.CREATE),
        FieldChange("dhcp", None, net.dhcp, Effect.CREATE),
        *(FieldChange(f"hosts.{h.names[0]}", None, h.ip, Effect.CREATE, _names(h)) for h in net.hosts),
    ]
    if expires:
        fields.append(FieldChange("expires", None, expires, Effect.CREATE, EXPIRY_REASON))
    return tuple(fields)


def network_changes(desired: DesiredState, live: LiveState) -> list[Change]:
    changes = []
    for net in desired.networks:
        existing = live.network(net.libvirt_name)
        if existing is None:
            changes.append(
                Change(Kind.NETWORK, net.libvirt_name, Action.CREATE, _network_summary(net, desired.expires))
            )
        elif _ours(existing.owner, desired):  # else reported as a conflict
            changes.extend(_network_update(net, existing, desired, live))
    return changes


_RESTART_REASON = "the network is recreated (--allow-restart); running guests' NICs on it are plugged back"
_HOST_REASON = "network update: no restart, no guest loses its link"


def _network_update(net: NetworkSpec, existing: LiveNetwork, desired: DesiredState, live: LiveState) -> list[Change]:
    """A range or mode change recreates the network; reservations and expiry change on it as it runs."""
    expiry = expiry_change(existing.owner, desired)
    restart = [
        FieldChange(name, getattr(existing.spec, name), getattr(net, name), Effect.RESTART, _RESTART_REASON)
        for name in ("mode", "ipv4", "dhcp")
        if getattr(existing.spec, name) != getattr(net, name)
    ]
    if restart:
        reattach = _nics_on(net.libvirt_name, live)
        steps = NetworkSteps(restart=True, reattach=reattach)
        notes = tuple(f"guest {r.guest}: NIC {r.nic.name} is plugged back once it is recreated" for r in reattach)
        restarted = (*restart, *([expiry] if expiry else []))
        return [Change(Kind.NETWORK, net.libvirt_name, Action.UPDATE_RESTART, restarted, notes, network=steps)]
    hosts = _host_steps(existing.spec, net)
    start = not existing.active or not existing.autostart
    fields = [
        *(
            [FieldChange("active", existing.active, True, Effect.LIVE, "start the network and autostart it")]
            if start
            else []
        ),
        *(_host_field(step) for step in hosts),
        *([expiry] if expiry else []),
    ]
    if not fields:
        return []
    steps = NetworkSteps(start=start, write_owner=expiry is not None, hosts=hosts)
    return [Change(Kind.NETWORK, net.libvirt_name, Action.UPDATE, tuple(fields), network=steps)]


def _nics_on(network: str, live: LiveState) -> tuple[NicRef, ...]:
    """The running guests' NICs on a network, which recreating it would leave cut off."""
    return tuple(
        NicRef(g.name, nic)
        for g in live.guests
        if g.running is not None
        for nic in g.running.nics
        if nic.kind == "network" and nic.source == network
    )


def _host_steps(have: NetworkSpec, want: NetworkSpec) -> tuple[HostStep, ...]:
    steps = []
    for mac in sorted({h.mac for h in have.hosts} | {h.mac for h in want.hosts}):
        before, after = have.host(mac), want.host(mac)
        if before == after:
            continue
        work = HostWork.ADD if before is None else HostWork.REMOVE if after is None else HostWork.CHANGE
        steps.append(HostStep(work, before, after))
    return tuple(steps)


def _host_field(step: HostStep) -> FieldChange:
    entry = step.after or step.before
    assert entry is not None
    before, after = step.before.ip if step.before else None, step.after.ip if step.after else None
    reason = _HOST_REASON + ("; the guest gets it at its next DHCP renewal" if step.work is HostWork.CHANGE else "")
    return FieldChange(f"hosts.{entry.names[0] if entry.names else entry.mac}", before, after, Effect.LIVE, reason)


def _names(host: HostEntry) -> str:
    return "DHCP reservation for " + host.mac + "; DNS: " + ", ".join(host.names)
