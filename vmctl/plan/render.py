"""Plans shown to people (text, Terraform-style) and to programs (a versioned JSON document).

Made from the Plan object and nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from vmctl.plan.changes import Action, Change, Effect, FieldChange, Kind, Plan, Unit
from vmctl.units import format_size

PLAN_FORMAT_VERSION = "1"
_STYLE = {
    Action.CREATE: "green",
    Action.UPDATE: "yellow",
    Action.UPDATE_RESTART: "bold yellow",
    Action.REPLACE: "bold magenta",
    Action.DELETE: "red",
    Action.ADOPT: "cyan",
}
_HEADLINE = {
    Action.CREATE: "will be created",
    Action.UPDATE: "will be updated in place",
    Action.UPDATE_RESTART: "will be updated, needs a restart",
    Action.REPLACE: "will be replaced",
    Action.DELETE: "will be deleted",
    Action.ADOPT: "will be adopted",
}
_FIELD_SYMBOL = {Effect.CREATE: "+", Effect.DELETE: "-", Effect.REPLACE: "-/+", Effect.IGNORED: "="}


def summary_line(plan: Plan) -> str:
    if plan.empty:
        return "No changes. Live state matches the spec."
    restart = sum(1 for c in plan.changes if c.action is Action.UPDATE_RESTART)
    updates = plan.count(Action.UPDATE) + restart
    adopt = plan.count(Action.ADOPT)
    return (
        f"Plan: {plan.count(Action.CREATE)} to create, {updates} to update ({restart} needs restart), "
        f"{plan.count(Action.REPLACE)} to replace, {plan.count(Action.DELETE)} to delete"
        + (f", {adopt} to adopt." if adopt else ".")
    )


def render_text(plan: Plan, markup: bool = False, empty: str | None = None) -> str:
    """The plan for people; with `markup`, rich colour tags (escaped where values are shown)."""
    paint = _Painter(markup)
    lines = _partial_lines(plan, paint) + _ignored_lines(plan, paint)
    if plan.empty:
        return "\n".join([*lines, paint("green", empty or summary_line(plan))]) + "\n"
    where = plan.scope or f"project {plan.project}" + (f", workspace {plan.workspace}" if plan.workspace else "")
    lines += [f"vmctl will make these changes to {where} on {plan.uri}:", ""]
    for change in plan.changes:
        lines.extend(_change_lines(change, paint))
    lines.append(paint("bold", summary_line(plan)))
    if any(c.destructive for c in plan.changes):
        lines.append(paint("bold red", "! Lines marked ! destroy data."))
    return "\n".join(lines) + "\n"


def render_hosts(plans: Sequence[Plan], markup: bool = False, empty: str | None = None) -> str:
    """Several hosts' plans, grouped by host, with one summary; one plan without hosts as `render_text`.

    A partial plan (--target) says so once, above every host; what ignore_changes hides is shown
    under the host it was read on.
    """
    if len(plans) == 1 and plans[0].host is None:
        return render_text(plans[0], markup, empty)
    from vmctl.plan.hosts import total

    paint = _Painter(markup)
    whole = total(plans)
    lines = _partial_lines(whole, paint)
    if whole.empty:
        for plan in plans:
            lines.extend(_ignored_lines(plan, paint, f" on host {plan.host}"))
        return "\n".join([*lines, paint("green", empty or summary_line(whole))]) + "\n"
    where = f"project {whole.project}" + (f", workspace {whole.workspace}" if whole.workspace else "")
    lines += [f"vmctl will make these changes to {where} on {len(plans)} host(s):", ""]
    for plan in plans:
        head = f"host {plan.host} ({plan.uri})"
        lines.extend([paint("bold", f"{head}: no changes" if plan.empty else f"{head}:"), ""])
        lines.extend(_ignored_lines(plan, paint))
        for change in plan.changes:
            lines.extend(_change_lines(change, paint))
    lines.append(paint("bold", summary_line(whole)))
    if any(c.destructive for c in whole.changes):
        lines.append(paint("bold red", "! Lines marked ! destroy data."))
    return "\n".join(lines) + "\n"


def _partial_lines(plan: Plan, paint: _Painter) -> list[str]:
    if not plan.targets:
        return []
    text = f"This plan is partial (--target {', '.join(plan.targets)}): other guests are neither compared nor deleted."
    return [paint("bold yellow", text), ""]


def _ignored_lines(plan: Plan, paint: _Painter, where: str = "") -> list[str]:
    if not plan.ignored:
        return []
    lines = [paint("dim", f"Live differences in fields ignore_changes names{where} (not planned):")]
    for change in plan.ignored:
        lines.append(paint("dim", f"  guest {change.name}"))
        width = max(len(f.path) for f in change.fields)
        lines.extend(paint("dim", _field_line(f, width, _Painter(False))) for f in change.fields)
    return [*lines, ""]


class _Painter:
    def __init__(self, markup: bool) -> None:
        self.markup = markup

    def __call__(self, style: str, text: str) -> str:
        if not self.markup:
            return text
        from rich.markup import escape

        return f"[{style}]{escape(text)}[/]" if style else escape(text)


def _title(change: Change) -> str:
    where = f" in pool {change.pool}" if change.pool and change.kind in (Kind.VOLUME, Kind.IMAGE) else ""
    owner = f" (guest {change.guest})" if change.guest else ""
    return f"{change.kind.value} {change.name}{where}{owner}"


def _change_lines(change: Change, paint: _Painter) -> list[str]:
    style = _STYLE[change.action]
    flag = " !" if change.destructive else ""
    head = f"  {change.action.symbol} {_title(change)} {_HEADLINE[change.action]}{flag}"
    lines = [paint(style, head)]
    width = max((len(f.path) for f in change.fields), default=0)
    for field in change.fields:
        lines.append(_field_line(field, width, paint))
    for note in change.notes:
        lines.append(paint("dim", f"      note: {note}"))
    lines.append("")
    return lines


def _field_line(field: FieldChange, width: int, paint: _Painter) -> str:
    symbol = _FIELD_SYMBOL.get(field.effect) or ("+" if field.before is None else "-" if field.after is None else "~")
    if field.effect is Effect.CREATE:
        value = format_value(field.after, field.unit)
    elif field.effect in (Effect.DELETE, Effect.REPLACE) and field.after is None and field.before is None:
        value = ""
    else:
        value = f"{format_value(field.before, field.unit)} → {format_value(field.after, field.unit)}"
    reason = f"  # {field.effect.value}: {field.reason}" if field.reason else ""
    mark = " !" if field.destructive else ""
    text = f"      {symbol} {field.path.ljust(width)}  {value}".rstrip()
    return paint("red" if field.destructive else "", text + mark) + paint("dim", reason)


def format_value(value: Any, unit: Unit | None = None) -> str:
    """A value as people read it: sizes with units, disks and NICs in one phrase."""
    if value is None:
        return "(none)"
    if unit is Unit.BYTES and isinstance(value, int):
        return format_size(value)
    if unit is Unit.DISK and isinstance(value, dict) and "cdrom" in value:
        return (
            f"CD-ROM drive on {value['bus']} with {value['cdrom']}"
            if value["cdrom"]
            else f"empty CD-ROM drive on {value['bus']}"
        )
    if unit is Unit.DISK and isinstance(value, dict):
        return _disk_phrase(value)
    if unit is Unit.NIC and isinstance(value, dict):
        source = f"{value['kind']} {value['source']}".strip()
        return f"{source}, {value['model']}, mac {value['mac']}"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _disk_phrase(disk: dict[str, Any]) -> str:
    """10GiB virtio on image debian12; virtio on existing volume default/shared.qcow2."""
    bus = disk.get("bus", "virtio")
    size = format_size(disk["size"]) if isinstance(disk.get("size"), int) else None
    if disk.get("volume") or disk.get("file"):  # an existing volume's size is its own unless the spec gives one
        on = f"volume {disk['volume']}" if disk.get("volume") else f"file {disk['file']}"
        return f"{size} {bus} on existing {on}" if size else f"{bus} on existing {on}"
    image = f" on image {disk['image']}" if disk.get("image") else ""
    return f"{size or 'size of image'} {bus}{image}"


def hosts_json(plans: Sequence[Plan]) -> dict[str, Any]:
    """Several hosts' plans as one document: `connection` is the one host's URI (null with hosts),
    `hosts` maps each host to its URI, and every change names its host."""
    if len(plans) == 1 and plans[0].host is None:
        return plan_json(plans[0])
    from vmctl.plan.hosts import total

    document = plan_json(total(plans))
    document["connection"] = None
    document["hosts"] = {p.host: p.uri for p in plans}
    document["changes"] = [_change_json(c, p.host) for p in plans for c in p.changes]
    document["ignored"] = [_change_json(c, p.host) for p in plans for c in p.ignored]
    return document


def plan_json(plan: Plan) -> dict[str, Any]:
    """The documented, versioned JSON form of a plan (schemas/plan.schema.json)."""
    restart = plan.count(Action.UPDATE_RESTART)
    return {
        "format_version": PLAN_FORMAT_VERSION,
        "project": plan.project,
        "workspace": plan.workspace,
        "connection": plan.uri,
        "hosts": {plan.host: plan.uri} if plan.host else {},
        "summary": {
            "create": plan.count(Action.CREATE),
            "update": plan.count(Action.UPDATE) + restart,
            "needs_restart": restart,
            "replace": plan.count(Action.REPLACE),
            "delete": plan.count(Action.DELETE),
            "adopt": plan.count(Action.ADOPT),
            "empty": plan.empty,
        },
        "changes": [_change_json(c, plan.host) for c in plan.changes],
        "targets": list(plan.targets),
        "ignored": [_change_json(c, plan.host) for c in plan.ignored],
    }


def _change_json(change: Change, host: str | None) -> dict[str, Any]:
    return {
        "host": host,
        "kind": change.kind.value,
        "name": change.name,
        "action": change.action.label,
        "pool": change.pool,
        "guest": change.guest,
        "destructive": change.destructive,
        "needs_restart": change.needs_restart,
        "notes": list(change.notes),
        "fields": [
            {
                "path": f.path,
                "before": f.before,
                "after": f.after,
                "effect": f.effect.value,
                "reason": f.reason,
                "destructive": f.destructive,
                "sensitive": f.sensitive,
                "unit": f.unit.value if f.unit else None,
            }
            for f in change.fields
        ],
    }
