"""Which events a subscription may name, and how an event becomes deliveries.

- Record events: ``<model>.created`` / ``.updated`` / ``.deleted`` and a model's named events
  (``<model>.<event>``) for every model addons declare to automation (``crm_automation_models``), reported by
  the write paths through :func:`core.automation.record_changed` / ``record_event``.
- Addon events: every event hook an addon declares and publishes with :func:`core.hooks.publish`
  (``crm_sales_order_confirmed``…); their payload is the ids the event carries.

A report costs a request nothing when no active subscription names the event (the subscriptions are cached per
process, looked at again every :data:`CHECK_SECONDS`). Otherwise the events of the transaction are collected and,
just before it commits, each becomes a delivery per listening subscription — the record read as the
subscription's owner may see it (out of their scope: no delivery; masked fields masked, hidden ones left out) —
and one outbox row per delivery, sent after the commit.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from core import db

CHECK_SECONDS = 2.0
RECORD_KINDS = ("created", "updated", "deleted")
_STATE = "webhooks"


@dataclass(frozen=True)
class Listener:
    id: int
    owner: int
    events: frozenset[str]


@dataclass
class _Cache:
    listeners: tuple[Listener, ...] = ()
    checked: float = 0.0


def _cache() -> _Cache:
    from core import runtime

    state = runtime.current().state
    found: _Cache | None = state.get(_STATE)
    if found is None:
        found = state[_STATE] = _Cache()
    return found


def invalidate() -> None:
    from core import runtime

    current = runtime._current
    if current is not None:
        current.state.pop(_STATE, None)


async def listeners(event: str) -> list[Listener]:
    """The active subscriptions naming ``event`` (cached, at most :data:`CHECK_SECONDS` old)."""
    from core.webhooks.models import WebhookSubscription as Sub

    cache = _cache()
    now = time.monotonic()
    if not cache.checked or now - cache.checked >= CHECK_SECONDS:
        rows = await Sub.select(Sub.id, Sub.owner, Sub.events).where(Sub.is_active == True)  # noqa: E712
        cache.listeners = tuple(Listener(int(r["id"]), int(r["owner"]), frozenset(_names(r["events"]))) for r in rows)
        cache.checked = now
    return [s for s in cache.listeners if event in s.events]


def _names(raw: Any) -> list[str]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw or "[]")
        except ValueError:
            return []
    return [str(n) for n in raw or [] if isinstance(n, str)]


async def known() -> dict[str, str]:
    """Every event a subscription may name here, with what it is (English; pages translate the kinds)."""
    from core import hooks, runtime
    from core.automation import registry

    out: dict[str, str] = {}
    for model, am in sorted((await registry.models()).items()):
        for kind in RECORD_KINDS:
            out[f"{model}.{kind}"] = f"{am.label}: {kind}"
        for name, label in sorted(am.events.items()):
            out[f"{model}.{name}"] = f"{am.label}: {label}"
    kernel = {n for n in dir(hooks) if n.startswith("crm_")}
    pm = runtime.current().plugins
    for name in sorted(vars(pm.hook)):
        caller = getattr(pm.hook, name)
        if name.startswith("_") or name in kernel or getattr(caller, "spec", None) is None:
            continue
        out[name] = name
    return out


# --- reports (inside the caller's transaction) -------------------------------------------------------------


async def record_changed(model: str, record_id: int, kind: str) -> None:
    """A record was created, updated or deleted (or had a named event: ``kind`` is then the event's name, and
    the delivery carries the record's id only)."""
    if kind in RECORD_KINDS:
        await _note(f"{model}.{kind}", ("record", model, int(record_id)), kind)
    else:
        await _note(
            f"{model}.{kind}",
            ("event", f"{model}.{kind}", uuid.uuid4().hex),
            {"model": model, "record_id": int(record_id)},
        )


async def published(event: str, payload: dict[str, Any]) -> None:
    """An addon published ``event`` (:func:`core.hooks.publish`) with ``payload`` (ids)."""
    from core.automation.events import jsonable

    await _note(event, ("event", event, uuid.uuid4().hex), {k: jsonable(v) for k, v in payload.items()})


async def _note(event: str, slot: tuple[str, str, Any], detail: Any) -> None:
    if not await listeners(event):
        return
    state = db.transaction_state()
    if state is None:  # no transaction: this event alone, now
        async with db.atomic():
            await _note(event, slot, detail)
        return
    pending: dict[tuple[str, str, Any], dict[str, Any]] | None = state.get(_STATE)
    if pending is None:
        pending = state[_STATE] = {}
        db.before_commit(lambda: _flush(pending or {}))
    earlier = pending.get(slot)
    if slot[0] == "record" and earlier is not None and detail in RECORD_KINDS:
        # one record reported twice in a transaction is one event: created wins over updated, deleted over both
        if detail == "deleted":
            if earlier["kind"] == "created":
                pending.pop(slot)  # created and gone in the same transaction: nothing happened outside
                return
            earlier.update(kind="deleted", event=event)
        return
    pending[slot] = {
        "event": event,
        "kind": detail if slot[0] == "record" else "",
        "data": detail,
        "at": dt.datetime.now(dt.UTC).isoformat(),
    }


#: the most records one query reads for one subscription owner
READ_CHUNK = 500


async def _flush(pending: dict[tuple[str, str, Any], dict[str, Any]]) -> None:
    from core import outbox
    from core.jobs import spec
    from core.webhooks.models import WebhookDelivery

    items = list(pending.items())
    pending.clear()
    readers: dict[int, Any] = {}
    wanted: dict[tuple[int, str], set[int]] = {}  # (owner, model) → records to read, once, in chunks
    listening = {key: await listeners(event["event"]) for key, event in items}
    for (what, name, ref), event in items:
        if what == "record" and event["kind"] != "deleted":
            for listener in listening[(what, name, ref)]:
                wanted.setdefault((listener.owner, name), set()).add(int(ref))
    seen: dict[tuple[int, str], dict[int, dict[str, Any]]] = {}
    for (owner, model), ids in wanted.items():
        seen[(owner, model)] = await _records_as(readers, owner, model, sorted(ids))
    for (what, name, ref), event in items:
        for listener in listening[(what, name, ref)]:
            if what == "record":
                if event["kind"] == "deleted":
                    data = {"id": int(ref)} if await _reader(readers, listener.owner, name) is not None else None
                else:
                    data = seen.get((listener.owner, name), {}).get(int(ref))
                if data is None:
                    continue  # the owner may not see it
                body = {"model": name, "record_id": int(ref), "data": data}
            else:
                body = {"data": event["data"]}
            event_id = uuid.uuid4().hex
            payload = {"id": event_id, "event": event["event"], "occurred_at": event["at"], **body}
            rows = await WebhookDelivery.insert(
                WebhookDelivery(
                    subscription_id=listener.id,
                    event=event["event"][:200],
                    event_id=event_id,
                    payload=payload,
                )
            ).returning(WebhookDelivery.id)
            await outbox.write(spec("core.webhook_deliver"), {"delivery_id": int(rows[0]["id"])}, light=True)


async def _reader(readers: dict[int, Any], owner: int, model: str) -> Any:
    """The owner's access when they may read ``model`` at all (None otherwise)."""
    from core.security import principal
    from core.security.access import Access, policy

    if owner not in readers:
        who = await principal.load(owner, implied=policy().implied)
        readers[owner] = Access(who) if who is not None else None
    access = readers[owner]
    return access if access is not None and access.can(model) else None


async def _records_as(readers: dict[int, Any], owner: int, model: str, ids: list[int]) -> dict[int, dict[str, Any]]:
    """The records ``owner`` may see among ``ids``, as they see them, JSON-ready (one query per chunk)."""
    from core.automation import registry
    from core.automation.events import jsonable
    from core.bulk import any_of

    access = await _reader(readers, owner, model)
    am = await registry.model(model)
    out: dict[int, dict[str, Any]] = {}
    if access is None or am is None:
        return out
    pk = am.table._meta.primary_key
    for start in range(0, len(ids), READ_CHUNK):
        query = await access.select(
            am.table, model, where=any_of(pk, ids[start : start + READ_CHUNK]), include_archived=True
        )
        for row in await query:
            out[int(row[pk._meta.name])] = {k: jsonable(v) for k, v in access.present(model, dict(row)).items()}
    return out


async def _record_as(
    readers: dict[int, Any], owner: int, model: str, record_id: int, kind: str
) -> dict[str, Any] | None:
    """One record as ``owner`` may see it now, JSON-ready; None when they may not see it at all."""
    if kind == "deleted":
        return {"id": record_id} if await _reader(readers, owner, model) is not None else None
    return (await _records_as(readers, owner, model, [record_id])).get(record_id)
