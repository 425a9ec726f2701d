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


async def _flush(pending: dict[tuple[str, str, Any], dict[str, Any]]) -> None:
    from core import outbox
    from core.jobs import spec
    from core.webhooks.models import WebhookDelivery

    items = list(pending.items())
    pending.clear()
    readers: dict[int, Any] = {}
    for (what, name, ref), event in items:
        for listener in await listeners(event["event"]):
            if what == "record":
                data = await _record_as(readers, listener.owner, name, int(ref), event["kind"])
                if data is None:
                    continue
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


async def _record_as(
    readers: dict[int, Any], owner: int, model: str, record_id: int, kind: str
) -> dict[str, Any] | None:
    """The record as ``owner`` may see it now, JSON-ready; None when they may not see it at all."""
    from core.automation import registry
    from core.automation.events import jsonable
    from core.security import principal
    from core.security.access import Access, policy

    if owner not in readers:
        who = await principal.load(owner, implied=policy().implied)
        readers[owner] = Access(who) if who is not None else None
    access = readers[owner]
    am = await registry.model(model)
    if access is None or am is None or not access.can(model):
        return None
    if kind == "deleted":
        return {"id": record_id}
    query = await access.select(am.table, model, where=am.table._meta.primary_key == record_id, include_archived=True)
    row = await query.first()
    if row is None:
        return None
    return {k: jsonable(v) for k, v in access.present(model, dict(row)).items()}
