"""What automation may act on and with what: the models addons declare (``crm_automation_models``), the action
kinds (the kernel's and ``crm_automation_actions``), and the rules, compiled, cached per process.

The cache is checked against the rules table at most every :data:`CHECK_SECONDS` (one small query), so a
request that changes a record knows without a query whether any active rule listens to its model; a rule
saved in another process applies from at most that long after. Jobs evaluating rules always reload.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from core import conditions, hooks
from core.automation.models import AutomationRule
from core.conditions import Node, Schema
from core.db import json_column
from core.hooks import AutomationAction, AutomationModel

CHECK_SECONDS = 2.0
_STATE = "automation"
EVENT_TRIGGERS = ("created", "updated", "changed", "deleted", "event")
TIMED_TRIGGERS = ("time_after", "idle", "daily")
TRIGGERS = EVENT_TRIGGERS + TIMED_TRIGGERS


@dataclass(frozen=True)
class Trigger:
    """When a rule looks at a record. ``node`` is what the trigger itself asks of a change (``changed``: the
    field changed, to ``to`` when given), evaluated like the rule's condition."""

    type: str
    field: str = ""
    hours: int = 0
    at: str = ""
    event: str = ""
    node: Node = conditions.ALWAYS

    @property
    def is_timed(self) -> bool:
        return self.type in TIMED_TRIGGERS

    def listens(self, kind: str) -> bool:
        """Does a change of this kind (created, updated, deleted, event:<name>) concern the trigger?"""
        if self.type == "changed":
            return kind in ("created", "updated")
        if self.type == "event":
            return kind == f"event:{self.event}"
        return self.type == kind


@dataclass(frozen=True)
class Step:
    kind: str
    params: dict[str, Any]
    action: AutomationAction | None


@dataclass(frozen=True)
class Rule:
    """A stored rule, compiled (``error`` says why it cannot run, e.g. a field it names was removed)."""

    id: int
    name: str
    model: str
    is_active: bool
    version: int
    trigger: Trigger
    condition: Node
    steps: tuple[Step, ...]
    raw: dict[str, Any]
    error: str = ""

    @property
    def is_external(self) -> bool:
        return any(s.action is not None and s.action.is_external for s in self.steps)


@dataclass
class State:
    models: dict[str, AutomationModel]
    actions: dict[str, AutomationAction]
    rules: dict[int, Rule] = field(default_factory=dict)
    stamp: tuple[int, ...] = ()
    checked: float = 0.0


async def _state() -> State:
    from core import runtime
    from core.automation.actions import builtin_actions

    current = runtime.current()
    found: State | None = current.state.get(_STATE)
    if found is None:
        models: dict[str, AutomationModel] = {}
        for am in await hooks.call("crm_automation_models"):
            models.setdefault(am.model, am)
        actions = {a.kind: a for a in builtin_actions()}
        for action in await hooks.call("crm_automation_actions"):
            actions[action.kind] = action  # an addon's kind replaces the kernel's stub of the same name
        found = current.state[_STATE] = State(models=models, actions=actions)
    return found


async def models() -> dict[str, AutomationModel]:
    return dict((await _state()).models)


async def model(name: str) -> AutomationModel | None:
    return (await _state()).models.get(name)


async def actions() -> dict[str, AutomationAction]:
    return dict((await _state()).actions)


async def schema(name: str) -> Schema | None:
    """The condition schema of an automatable model, its custom fields current, relations one hop deep."""
    from core.customfields import registry as custom_fields

    state = await _state()
    am = state.models.get(name)
    if am is None:
        return None
    await custom_fields.fresh()
    relations: dict[str, Schema] = {}
    for column, target in am.relations.items():
        other = state.models.get(target)
        if other is not None:
            relations[column] = conditions.schema_for(other.model, other.table, other.fields, choices=other.choices)
    return conditions.schema_for(am.model, am.table, am.fields, choices=am.choices, relations=relations)


_loaded = json_column  # a JSON column as read (core.db.json_column)


def trigger_node(am: AutomationModel, schema: Schema, raw: dict[str, Any]) -> Node:
    """The condition a ``changed`` trigger adds (``field`` changed, to ``to`` when given)."""
    if raw.get("type") != "changed":
        return conditions.ALWAYS
    leaf: dict[str, Any] = {"field": raw.get("field"), "op": "changed_to" if "to" in raw else "changed"}
    if "to" in raw:
        leaf["value"] = raw["to"]
    return conditions.parse(leaf, schema, path="trigger", changes=True)


async def compile_rule(row: dict[str, Any]) -> Rule:
    """A stored rule as a :class:`Rule`; what no longer fits (a removed field or action kind) goes to ``error``
    instead of raising, so one broken rule never stops the others."""
    from core.errors import ValidationError

    state = await _state()
    raw_trigger = _loaded(row.get("trigger"), {})
    raw_condition = _loaded(row.get("condition"), {})
    raw_actions = _loaded(row.get("actions"), [])
    raw = {"trigger": raw_trigger, "condition": raw_condition, "actions": raw_actions}
    base: dict[str, Any] = {"id": int(row["id"]), "name": str(row["name"]), "model": str(row["model"]),
                            "is_active": bool(row["is_active"]), "version": int(row.get("version") or 1), "raw": raw}
    steps = tuple(Step(str(a.get("kind", "")), dict(a.get("params") or {}), state.actions.get(str(a.get("kind"))))
                  for a in raw_actions if isinstance(a, dict))
    am = state.models.get(base["model"])
    found = await schema(base["model"]) if am is not None else None
    if am is None or found is None:
        return Rule(**base, trigger=Trigger("none"), condition=conditions.ALWAYS, steps=steps,
                    error=f"{base['model']} cannot be automated here (its addon is not installed)")
    try:
        kind = str(raw_trigger.get("type", ""))
        trigger = Trigger(kind, field=str(raw_trigger.get("field", "")), hours=int(raw_trigger.get("hours") or 0),
                          at=str(raw_trigger.get("at", "")), event=str(raw_trigger.get("event", "")),
                          node=trigger_node(am, found, raw_trigger))
        condition = conditions.parse(raw_condition, found, changes=not trigger.is_timed)
    except (ValidationError, ValueError, TypeError) as exc:
        message = "; ".join(f"{k}: {v}" for k, v in exc.fields.items()) if isinstance(exc, ValidationError) \
            else str(exc)
        return Rule(**base, trigger=Trigger("none"), condition=conditions.ALWAYS, steps=steps, error=message)
    missing = [s.kind for s in steps if s.action is None]
    error = f"unknown action kind {missing[0]!r}" if missing else ""
    return Rule(**base, trigger=trigger, condition=condition, steps=steps, error=error)


async def _stamp() -> tuple[int, ...]:
    rows = await AutomationRule.raw(
        "SELECT COUNT(*) AS n, COALESCE(SUM(version), 0) AS v, COALESCE(MAX(id), 0) AS m FROM core_automation_rule")
    row = rows[0] if rows else {}
    return tuple(int(row.get(k) or 0) for k in ("n", "v", "m"))


async def rules(force: bool = False) -> dict[int, Rule]:
    """Every rule, compiled, reloaded when the table changed (checked at most every ``CHECK_SECONDS``)."""
    state = await _state()
    now = time.monotonic()
    if force or not state.checked or now - state.checked >= CHECK_SECONDS:
        stamp = await _stamp()
        state.checked = now
        if stamp != state.stamp or force:
            loaded = {}
            for row in await AutomationRule.select().order_by(AutomationRule.id):
                rule = await compile_rule(dict(row))
                loaded[rule.id] = rule
            state.rules, state.stamp = loaded, stamp
    return state.rules


async def active(model: str | None = None, force: bool = False) -> list[Rule]:
    """The active rules that can run (of ``model``)."""
    return [r for r in (await rules(force)).values()
            if r.is_active and not r.error and (model is None or r.model == model)]


def invalidate() -> None:
    """Reload at the next look (after a change this process made)."""
    from core import runtime

    current = runtime._current
    state: State | None = current.state.get(_STATE) if current is not None else None
    if state is not None:
        state.checked, state.stamp = 0.0, ()
