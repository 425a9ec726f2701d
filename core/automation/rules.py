"""Rules as an administrator edits them: checked (a 422 naming the path of what does not fit), stored, enabled and
disabled, their run log, and a dry run showing the records a rule would act on now. Administrators only; every
change is audited."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from core import conditions, db
from core.automation import registry, scans
from core.automation.models import AutomationRule, AutomationRun
from core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from core.i18n import N_
from core.security import audit
from core.security.principal import Principal

MODEL = "core.automation_rule"
MAX_ACTIONS = 20
MAX_HOURS = 24 * 366
_TIME = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
_KEYS = ("name", "model", "trigger", "condition", "actions", "is_active")


async def require_admin(who: Principal | None, what: str) -> Principal:
    if who is None or not who.is_admin:
        await audit.record("denied", model=MODEL, detail=f"automation: {what}", principal=who)
        raise PermissionDenied(N_("administrators only"))
    return who


async def known_roles() -> set[str]:
    from core.security.admin import known_roles as roles

    return await roles()


def _prefixed(exc: ValidationError, prefix: str) -> ValidationError:
    return ValidationError({f"{prefix}.{k}" if k else prefix: v for k, v in exc.fields.items()})


def _check_trigger(raw: Any, am: Any, schema: conditions.Schema) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ValidationError({"trigger": 'must be an object like {"type": "created"}'})
    kind = raw.get("type")
    if kind not in registry.TRIGGERS:
        raise ValidationError({"trigger.type": f"must be one of {', '.join(registry.TRIGGERS)}"})
    allowed = {"created": (), "updated": (), "deleted": (), "changed": ("field", "to"), "event": ("event",),
               "time_after": ("field", "hours"), "idle": ("hours", "days"), "daily": ("at",)}[kind]
    unknown = sorted(set(raw) - {"type", *allowed})
    if unknown:
        raise ValidationError({f"trigger.{unknown[0]}": f"is not a setting of a {kind} trigger"})
    out: dict[str, Any] = {"type": kind}
    if kind == "changed":
        node = registry.trigger_node(am, schema, raw)
        assert isinstance(node, conditions.Leaf)
        if node.relation:
            raise ValidationError({"trigger.field": N_("must be a field of the record itself")})
        out.update(conditions.as_json(node))
        out.pop("op")
        if "value" in out:
            out["to"] = out.pop("value")
    elif kind == "event":
        if raw.get("event") not in am.events:
            raise ValidationError({"trigger.event": f"must be one of {', '.join(am.events) or '(none declared)'}"})
        out["event"] = raw["event"]
    elif kind == "time_after":
        field = schema.fields.get(str(raw.get("field", "")))
        if field is None or field.custom is not None or field.kind not in ("date", "datetime"):
            dates = [f.name for f in schema.fields.values() if f.custom is None and f.kind in ("date", "datetime")]
            raise ValidationError({"trigger.field": f"must be one of the date fields: {', '.join(dates)}"})
        out["field"] = field.name
        from core.values import integer

        out["hours"] = integer(raw.get("hours", 0), "trigger.hours", (0, MAX_HOURS))
    elif kind == "idle":
        if am.idle is None:
            raise ValidationError({"trigger.type": f"{am.model} does not record activity"})
        from core.values import integer

        if "days" in raw and "hours" in raw:
            raise ValidationError({"trigger.days": N_("give hours or days, not both")})
        hours = integer(raw["days"], "trigger.days", (1, 366)) * 24 if "days" in raw else integer(
            raw.get("hours"), "trigger.hours", (1, MAX_HOURS))
        out["hours"] = hours
    elif kind == "daily":
        at = raw.get("at")
        if not isinstance(at, str) or not _TIME.match(at):
            raise ValidationError({"trigger.at": N_("must be a time of day like 08:30")})
        out["at"] = at
    return out


async def check(data: Mapping[str, Any], existing: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The rule ``data`` describes (merged over ``existing`` for an update), in the form it is stored."""
    unknown = sorted(set(data) - {*_KEYS, "version"})
    if unknown:
        raise ValidationError({unknown[0]: f"is not a setting of a rule ({', '.join(_KEYS)})"})
    merged = {**(existing or {}), **{k: v for k, v in data.items() if k in _KEYS}}
    name = merged.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValidationError({"name": N_("is required")})
    from core.values import text_problem

    problem = text_problem(name)
    if problem or len(name) > 200:
        raise ValidationError({"name": problem or "must be at most 200 characters"})
    model_name = merged.get("model")
    am = await registry.model(model_name) if isinstance(model_name, str) else None
    schema = await registry.schema(model_name) if am is not None and isinstance(model_name, str) else None
    if am is None or schema is None:
        names = ", ".join(sorted(await registry.models()))
        raise ValidationError({"model": f"must be one of the models rules may act on: {names}"})
    trigger = _check_trigger(registry._loaded(merged.get("trigger"), None), am, schema)
    timed = trigger["type"] in registry.TIMED_TRIGGERS
    node = conditions.parse(registry._loaded(merged.get("condition"), {}), schema, changes=not timed)
    actions = registry._loaded(merged.get("actions"), None)
    if not isinstance(actions, list) or not 1 <= len(actions) <= MAX_ACTIONS:
        raise ValidationError({"actions": f"must be a list of 1 to {MAX_ACTIONS} actions"})
    kinds = await registry.actions()
    checked: list[dict[str, Any]] = []
    for i, item in enumerate(actions):
        where = f"actions[{i}]"
        if not isinstance(item, dict) or sorted(set(item) - {"kind", "params"}):
            raise ValidationError({where: 'must be an object like {"kind": "notify", "params": {...}}'})
        action = kinds.get(str(item.get("kind")))
        if action is None:
            raise ValidationError({f"{where}.kind": f"must be one of {', '.join(kinds)}"})
        if action.models and am.model not in action.models:
            raise ValidationError({f"{where}.kind": f"{action.kind} does not apply to {am.model}"})
        params = item.get("params") or {}
        if not isinstance(params, dict):
            raise ValidationError({f"{where}.params": "must be an object"})
        try:
            params = dict(await action.check(am, params)) if action.check else dict(params)
        except ValidationError as exc:
            fields = {(f"{where}.kind" if k == "kind" else f"{where}.params.{k}"): v for k, v in exc.fields.items()}
            raise ValidationError(fields) from None
        checked.append({"kind": action.kind, "params": params})
    is_active = merged.get("is_active", False)
    if not isinstance(is_active, bool):
        raise ValidationError({"is_active": N_("must be true or false")})
    return {"name": name.strip(), "model": am.model, "trigger": trigger, "condition": conditions.as_json(node)
            if node != conditions.ALWAYS else {}, "actions": checked, "is_active": is_active}


def as_dict(row: Mapping[str, Any], rule: registry.Rule | None = None) -> dict[str, Any]:
    def stamp(value: Any) -> str | None:
        return scans._aware(value).isoformat() if value is not None else None  # type: ignore[union-attr]

    return {"id": int(row["id"]), "name": row["name"], "model": row["model"],
            "trigger": registry._loaded(row["trigger"], {}), "condition": registry._loaded(row["condition"], {}),
            "actions": registry._loaded(row["actions"], []), "is_active": bool(row["is_active"]),
            "version": int(row["version"]), "created_at": stamp(row.get("created_at")),
            "updated_at": stamp(row.get("updated_at")), "scanned_until": stamp(row.get("scanned_until")),
            "error": rule.error if rule is not None else ""}


async def get_row(rule_id: int) -> dict[str, Any]:
    row = await AutomationRule.select().where(AutomationRule.id == rule_id).first()
    if row is None:
        raise NotFound(f"automation rule {rule_id} not found")
    return dict(row)


async def listing(who: Principal | None) -> list[dict[str, Any]]:
    await require_admin(who, "list")
    compiled = await registry.rules(force=True)
    rows = await AutomationRule.select().order_by(AutomationRule.id)
    counts: dict[tuple[int, str], int] = {}
    for r in await AutomationRun.raw(
            "SELECT rule_id, state, COUNT(*) AS n FROM core_automation_run GROUP BY rule_id, state"):
        counts[(int(r["rule_id"]), str(r["state"]))] = int(r["n"])
    out = []
    for row in rows:
        item = as_dict(row, compiled.get(int(row["id"])))
        item["runs"] = {s: counts.get((item["id"], s), 0) for s in ("done", "failed", "skipped", "pending", "running")}
        out.append(item)
    return out


async def read(who: Principal | None, rule_id: int) -> dict[str, Any]:
    await require_admin(who, "read")
    return as_dict(await get_row(rule_id), (await registry.rules(force=True)).get(rule_id))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def create(who: Principal | None, data: Mapping[str, Any]) -> dict[str, Any]:
    who = await require_admin(who, "create")
    values = await check(data)
    now = _now()
    async with db.atomic():
        rows = await AutomationRule.insert(AutomationRule(
            **values, created_by=who.user_id, created_at=now, updated_at=now,
            activated_at=now if values["is_active"] else None,
            scanned_until=now if values["is_active"] else None)).returning(AutomationRule.id)
        rule_id = int(rows[0]["id"])
        await audit.record("create", model=MODEL, record_id=rule_id, changes=audit.diff(None, values))
    registry.invalidate()
    return await read(who, rule_id)


async def update(who: Principal | None, rule_id: int, data: Mapping[str, Any], version: Any) -> dict[str, Any]:
    who = await require_admin(who, "update")
    from core.values import integer

    if version is None:
        raise ValidationError({"version": N_("is required so concurrent edits are not lost")})
    version = integer(version, "version")
    async with db.atomic():
        row = await get_row(rule_id)
        current = as_dict(row)
        values = await check(data, {k: current[k] for k in _KEYS})
        changes: dict[Any, Any] = {getattr(AutomationRule, k): v for k, v in values.items()}
        changes[AutomationRule.updated_at] = _now()
        changes[AutomationRule.version] = AutomationRule.version + 1
        if values["is_active"] and not current["is_active"]:
            changes[AutomationRule.activated_at] = changes[AutomationRule.scanned_until] = _now()
        done = await AutomationRule.update(changes).where(
            (AutomationRule.id == rule_id) & (AutomationRule.version == version)).returning(AutomationRule.id)
        if not done:
            raise Conflict(f"automation rule {rule_id} was changed by someone else (version {row['version']})",
                           field="version")
        await audit.record("update", model=MODEL, record_id=rule_id, changes=audit.diff(
            {k: current[k] for k in values}, values))
    registry.invalidate()
    return await read(who, rule_id)


async def set_active(who: Principal | None, rule_id: int, active: bool) -> dict[str, Any]:
    """Enable (time-based triggers look at what happens from now on) or disable a rule; pending runs of a
    disabled rule are not run."""
    who = await require_admin(who, "enable" if active else "disable")
    async with db.atomic():
        row = await get_row(rule_id)
        if bool(row["is_active"]) != active:
            if active:
                compiled = await registry.compile_rule({**row, "is_active": True})
                if compiled.error:
                    raise ValidationError({"is_active": f"the rule cannot run: {compiled.error}"})
            changes: dict[Any, Any] = {AutomationRule.is_active: active, AutomationRule.updated_at: _now(),
                                       AutomationRule.version: AutomationRule.version + 1}
            if active:
                changes[AutomationRule.activated_at] = changes[AutomationRule.scanned_until] = _now()
            await AutomationRule.update(changes).where(AutomationRule.id == rule_id)
            await audit.record("enable" if active else "disable", model=MODEL, record_id=rule_id)
    registry.invalidate()
    return await read(who, rule_id)


async def delete(who: Principal | None, rule_id: int) -> None:
    await require_admin(who, "delete")
    async with db.atomic():
        await get_row(rule_id)
        await AutomationRun.delete().where(AutomationRun.rule_id == rule_id)
        await AutomationRule.delete().where(AutomationRule.id == rule_id)
        await audit.record("delete", model=MODEL, record_id=rule_id)
    registry.invalidate()


async def runs(who: Principal | None, rule_id: int, limit: int = 50, before: int | None = None,
               state: str | None = None) -> list[dict[str, Any]]:
    """The rule's run log, newest first (``before``: a run id, for the next page)."""
    await require_admin(who, "runs")
    await get_row(rule_id)
    query = AutomationRun.select(
        AutomationRun.id, AutomationRun.key, AutomationRun.model, AutomationRun.record_id, AutomationRun.trigger,
        AutomationRun.depth, AutomationRun.state, AutomationRun.step, AutomationRun.attempts, AutomationRun.result,
        AutomationRun.error, AutomationRun.created_at, AutomationRun.finished_at).where(
        AutomationRun.rule_id == rule_id)
    if before is not None:
        query = query.where(AutomationRun.id < before)
    if state:
        query = query.where(AutomationRun.state == state)
    out = []
    for row in await query.order_by(AutomationRun.id, ascending=False).limit(limit):
        item = dict(row)
        item["result"] = registry._loaded(item["result"], [])
        for key in ("created_at", "finished_at"):
            item[key] = scans._aware(item[key]).isoformat() if item[key] is not None else None  # type: ignore[union-attr]
        out.append(item)
    return out


def _label_field(am: Any, schema: conditions.Schema) -> str | None:
    for name in am.fields:
        found = schema.fields.get(name)
        if found is not None and found.kind == "text":
            return str(name)
    return None


async def dry_run(who: Principal | None, rule_id: int, limit: int = 50) -> dict[str, Any]:
    """The records the rule would act on now, read through the admin's access, nothing written: for a
    time-based rule those its next scan would select (a disabled one: as if it had been enabled a day ago);
    for a change-triggered rule, those its condition selects now."""
    from core.security.access import Access

    who = await require_admin(who, "dry run")
    row = await get_row(rule_id)
    rule = await registry.compile_rule(row)
    if rule.error:
        raise ValidationError({"rule": rule.error})
    am = await registry.model(rule.model)
    schema = await registry.schema(rule.model)
    assert am is not None and schema is not None
    acc = Access(who)
    now = _now()
    start = scans._aware(row.get("scanned_until")) if row["is_active"] else None
    start = start or now - dt.timedelta(days=1)
    if rule.trigger.is_timed:
        where = scans.candidates(rule, am, start, now, schema=schema, access=acc)
    else:
        where = conditions.to_where(rule.condition, schema, acc)
    table = am.table
    pk = table._meta.primary_key
    label = _label_field(am, schema)
    columns = [pk] + ([table._meta.get_column_by_name(label)] if label else [])
    total = await acc.count(table, am.model, where=where)
    query = await acc.select(table, am.model, *columns, where=where)
    records = [{"id": int(r["id"]), "label": str(r.get(label) or "") if label else "",
                "url": am.url.replace("{id}", str(r["id"])) if am.url else ""}
               for r in await query.order_by(pk).limit(limit)]
    return {"rule": rule.id, "trigger": rule.trigger.type, "count": int(total), "records": records,
            "since": start.isoformat() if rule.trigger.type == "time_after" else None, "at": now.isoformat()}
