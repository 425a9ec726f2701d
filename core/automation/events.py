"""Changes reaching the rule engine: a write path reports a change inside its transaction, the engine evaluates
it later, off the request, from the outbox.

:func:`record_changed` costs a request nothing when no active rule listens to the model (the rules are cached,
see :mod:`core.automation.registry`); otherwise it notes the change, and just before the transaction commits the
changed records are read once and the transaction's changes written to one outbox row, sent after the commit
without another query (a record reported twice in one transaction — a create that also goes through an addon's
own write path — is one event). The job then matches the rules, inserts one run per (rule, event) under a
unique key and runs them (:mod:`core.automation.runs`).

Loop protection: while a rule's actions run, :data:`chain` holds the rules that led there; a change they make
carries it, a rule never acts on a change that came from its own actions, and nothing acts past
:data:`MAX_DEPTH` rules deep. Such skips are logged as ``skipped`` runs.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

from core import conditions, db
from core.automation import registry
from core.automation.models import AutomationRun
from core.hooks import AutomationModel

#: the rules whose actions are running in this task (outermost first)
chain: ContextVar[tuple[int, ...]] = ContextVar("crm_automation_chain", default=())
MAX_DEPTH = 3


def jsonable(value: Any) -> Any:
    """A stored value as JSON (times ISO 8601, decimals as text), for snapshots in the outbox and run log."""
    if isinstance(value, (dt.datetime, dt.date)):
        if isinstance(value, dt.datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)  # a JSON column as SQLite hands it back
        except ValueError:
            return value
    return value


_COLUMNS: dict[tuple[str, str | None], tuple[str, ...]] = {}


def columns_of(am: AutomationModel) -> tuple[str, ...]:
    """The columns a snapshot of ``am`` holds: its fields, custom fields, owner and tags, and the id."""
    from core.customfields import registry as custom_fields

    custom = custom_fields.column_of(am.model)
    found = _COLUMNS.get((am.model, custom))
    if found is not None:
        return found
    names = ["id", *am.fields]
    for extra in (custom, am.owner, am.tags, am.idle.since if am.idle else None, "is_archived", "version"):
        if extra and extra not in names:
            try:
                am.table._meta.get_column_by_name(extra)
            except ValueError:
                continue
            names.append(extra)
    found = _COLUMNS[(am.model, custom)] = tuple(names)
    return found


def snapshot(am: AutomationModel, row: Mapping[str, Any]) -> dict[str, Any]:
    return {name: jsonable(row[name]) for name in columns_of(am) if name in row}


async def read(am: AutomationModel, record_id: int) -> dict[str, Any] | None:
    """The record as a snapshot, or None when it is gone."""
    table = am.table
    columns = [table._meta.get_column_by_name(n) for n in columns_of(am)]
    row = await table.select(*columns).where(table._meta.primary_key == record_id).first()
    return snapshot(am, row) if row is not None else None


async def record_changed(model: str, record_id: int, before: Mapping[str, Any] | None,
                         after: Mapping[str, Any] | None) -> None:
    """Report a change of record ``record_id`` of ``model`` to the rule engine, inside the transaction that made
    it: created (``before`` None), updated, or deleted (``after`` None). ``before`` is the stored row before the
    change (for "changed to" triggers); ``after`` may be partial (the record is read again when a rule
    listens)."""
    from core.webhooks import events as webhooks

    kind = "created" if before is None else "deleted" if after is None else "updated"
    await webhooks.record_changed(model, int(record_id), kind)
    await _report(model, int(record_id), kind, before)


async def record_event(model: str, record_id: int, event: str) -> None:
    """Report a named event of a record (one its model declares in ``AutomationModel.events``)."""
    from core.webhooks import events as webhooks

    await webhooks.record_changed(model, int(record_id), event)
    await _report(model, int(record_id), f"event:{event}", None)


#: the most changes one outbox row carries (a bulk change of more writes several)
EVENTS_PER_ROW = 500


async def _report(model: str, record_id: int, kind: str, before: Mapping[str, Any] | None) -> None:
    listening = [r for r in await registry.active(model) if not r.trigger.is_timed]
    if not listening:
        return
    state = db.transaction_state()
    if state is None:  # no transaction: this change alone, now
        async with db.atomic():
            await _report(model, record_id, kind, before)
        return
    pending: dict[tuple[str, int, str], dict[str, Any]] | None = state.get("automation")
    slot = (model, record_id, kind if kind.startswith("event:") else "change")
    earlier = pending.get(slot) if pending is not None else None
    if earlier is not None:  # the same record again in this transaction: one event, first before, last after
        if kind == "deleted":
            earlier["kind"] = "deleted"
        return
    if not any(r.trigger.listens(kind) for r in listening):
        return
    am = await registry.model(model)
    if am is None:
        return
    if pending is None:
        pending = state["automation"] = {}
        db.before_commit(lambda: _flush(pending or {}))
    pending[slot] = {"event": uuid.uuid4().hex, "model": model, "record_id": record_id, "kind": kind,
                     "before": snapshot(am, before) if before is not None else None, "chain": list(chain.get())}


async def _flush(pending: dict[tuple[str, int, str], dict[str, Any]]) -> None:
    """Just before the transaction commits: each changed record read once (as the transaction leaves it), and
    the changes written to the outbox (one row for up to :data:`EVENTS_PER_ROW`), dispatched off the request."""
    from core import outbox
    from core.bulk import any_of
    from core.jobs import spec

    by_model: dict[str, list[int]] = {}
    for (model, record_id, _), event in pending.items():
        if event["kind"] != "deleted":
            by_model.setdefault(model, []).append(record_id)
    current: dict[tuple[str, int], dict[str, Any]] = {}
    for model, ids in by_model.items():
        am = await registry.model(model)
        if am is None:
            continue
        table = am.table
        columns = [table._meta.get_column_by_name(n) for n in columns_of(am)]
        for row in await table.select(*columns).where(any_of(table._meta.primary_key, sorted(set(ids)))):
            current[(model, int(row["id"]))] = snapshot(am, row)
    out = []
    for (model, record_id, _), event in pending.items():
        after = current.get((model, record_id)) if event["kind"] != "deleted" else None
        if after is None and event["before"] is None:
            continue  # created and gone in the same transaction
        out.append({**event, "after": after})
    pending.clear()
    for start in range(0, len(out), EVENTS_PER_ROW):
        await outbox.write(spec("core.automation_event"), {"events": out[start:start + EVENTS_PER_ROW]},
                           light=True)


async def related_values(rule_nodes: list[conditions.Node], am: AutomationModel,
                         record: Mapping[str, Any]) -> dict[str, Any]:
    """The related fields the conditions read (``person.province``), under their flat names."""
    from core.customfields import registry as custom_fields

    wanted: dict[str, set[str]] = {}
    for node in rule_nodes:
        for relation, names in conditions.related_fields(node).items():
            wanted.setdefault(relation, set()).update(names)
    out: dict[str, Any] = {}
    for relation, names in wanted.items():
        other = await registry.model(am.relations.get(relation, ""))
        ref = record.get(relation)
        if other is None or ref in (None, ""):
            continue
        custom = custom_fields.column_of(other.model)
        columns = sorted({n.partition(".")[0] if custom and n.startswith(f"{custom}.") else n for n in names})
        table = other.table
        row = await table.select(*[table._meta.get_column_by_name(c) for c in columns]).where(
            table._meta.primary_key == int(ref)).first()
        if row is None:
            continue
        for name in names:
            column, dot, key = name.partition(".")
            if dot and column == custom:
                holder = conditions._loaded(row.get(column))
                out[f"{relation}.{name}"] = holder.get(key) if isinstance(holder, dict) else None
            else:
                out[f"{relation}.{name}"] = jsonable(row.get(name))
    return out


async def handle(event: str, model: str, record_id: int, kind: str, before: dict[str, Any] | None,
                 after: dict[str, Any] | None, chain: list[int]) -> list[int]:
    """The job of one reported change: a run for each active rule it triggers; then run them. Idempotent: the
    runs' keys are unique per (rule, event), and runs already done are not run again."""
    from core.automation import runs

    rules = [r for r in await registry.active(model, force=True) if r.trigger.listens(kind)]
    record = after if after is not None else before
    am = await registry.model(model)
    if not rules or record is None or am is None:
        return []
    view = {**record, **await related_values([n for r in rules for n in (r.trigger.node, r.condition)], am, record)}
    previous = before if kind != "created" else None
    keys: list[str] = []
    for rule in rules:
        if not (conditions.matches(rule.trigger.node, view, previous)
                and conditions.matches(rule.condition, view, previous)):
            continue
        state, error = "pending", ""
        if rule.id in chain:
            state, error = "skipped", "not run: the change came from this rule's own actions (loop protection)"
        elif len(chain) >= MAX_DEPTH:
            state, error = "skipped", f"not run: the change came {len(chain)} rules deep (loop protection)"
        key = f"{rule.id}:ev:{event}"
        await AutomationRun.insert(AutomationRun(
            rule_id=rule.id, key=key, model=model, record_id=record_id, trigger=kind[:80], depth=len(chain),
            chain=list(chain), snapshot=record, state=state, error=error,
            finished_at=dt.datetime.now(dt.UTC) if state == "skipped" else None,
        )).on_conflict(target=AutomationRun.key, action="DO NOTHING")
        if state == "pending":
            keys.append(key)
    if not keys:
        return []
    ids = [int(r["id"]) for r in await AutomationRun.select(AutomationRun.id).where(AutomationRun.key.is_in(keys))]
    await runs.execute(ids)
    return ids
