"""Subscriptions as an administrator manages them: checked (a 422 naming the field), stored, enabled and
disabled, deleted, their delivery log and re-drive. Administrators only; every change is audited (the secret
never goes into the audit log)."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Mapping
from typing import Any

from core import db
from core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from core.i18n import N_
from core.security import audit
from core.security.principal import Principal
from core.webhooks import events, targets
from core.webhooks.models import WebhookDelivery, WebhookSubscription

MODEL = "core.webhook_subscription"
MAX_EVENTS = 100
STATES = ("pending", "delivered", "failed", "skipped")
Sub = WebhookSubscription


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def require_admin(who: Principal | None, what: str) -> Principal:
    if who is None or not who.is_admin:
        await audit.record("denied", model=MODEL, detail=f"webhooks: {what}", principal=who)
        raise PermissionDenied(N_("administrators only"))
    return who


async def check(data: Mapping[str, Any], current: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The values to store, or a ValidationError naming every field that does not fit."""
    from core.runtime import current as runtime
    from core.security.models import User

    unknown = sorted(set(data) - {"name", "url", "events", "owner", "is_active", "version"})
    if unknown:
        raise ValidationError({unknown[0]: N_("is not a field of a webhook subscription")})
    merged = {**(current or {}), **data}
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    name = merged.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        errors["name"] = N_("is required (at most 200 characters)")
    else:
        out["name"] = name.strip()
    url = merged.get("url")
    if not isinstance(url, str) or not url.strip() or len(url) > 2000:
        errors["url"] = N_("is required (at most 2000 characters)")
    else:
        try:
            out["url"] = await targets.check(url, runtime().settings.webhook_allow_networks, must_resolve=False)
        except ValidationError as exc:
            errors.update(exc.fields)
    names = merged.get("events")
    known = await events.known()
    if (
        not isinstance(names, list)
        or not names
        or len(names) > MAX_EVENTS
        or not all(isinstance(n, str) for n in names)
    ):
        errors["events"] = N_("must be a list of one or more event names")
    else:
        wrong = [n for n in names if n not in known]
        if wrong:
            errors["events"] = N_("unknown event %(name)s") % {"name": repr(wrong[0][:100])}
        else:
            out["events"] = sorted(set(names))
    owner = merged.get("owner")
    if (
        isinstance(owner, bool)
        or not isinstance(owner, int)
        or not await User.exists().where((User.id == owner) & (User.is_active == True))  # noqa: E712
    ):
        errors["owner"] = N_("is not an active user")
    else:
        out["owner"] = owner
    active = merged.get("is_active", True)
    if not isinstance(active, bool):
        errors["is_active"] = N_("must be true or false")
    else:
        out["is_active"] = active
    if errors:
        raise ValidationError(errors)
    return out


def as_dict(row: Mapping[str, Any], secret: bool = False) -> dict[str, Any]:
    out = {
        k: row[k]
        for k in (
            "id",
            "name",
            "url",
            "owner",
            "is_active",
            "consecutive_failures",
            "disabled_reason",
            "version",
            "created_at",
            "updated_at",
        )
    }
    raw = row["events"]
    out["events"] = json.loads(raw) if isinstance(raw, str) else list(raw or [])
    for key in ("created_at", "updated_at"):
        out[key] = out[key].isoformat() if out[key] else None
    if secret:
        out["secret"] = row["secret"]
    return out


async def _row(subscription_id: int) -> dict[str, Any]:
    row = await Sub.select().where(Sub.id == subscription_id).first()
    if row is None:
        raise NotFound(f"webhook subscription {subscription_id} not found")
    return dict(row)


async def listing(who: Principal | None) -> list[dict[str, Any]]:
    await require_admin(who, "list")
    rows = await Sub.select().order_by(Sub.id)
    counts: dict[tuple[int, str], int] = {}
    for r in await WebhookDelivery.raw(
        "SELECT subscription_id, state, COUNT(*) AS n FROM core_webhook_delivery GROUP BY subscription_id, state"
    ):
        counts[(int(r["subscription_id"]), str(r["state"]))] = int(r["n"])
    out = []
    for row in rows:
        item = as_dict(row)
        item["deliveries"] = {s: counts.get((int(row["id"]), s), 0) for s in STATES}
        out.append(item)
    return out


async def read(who: Principal | None, subscription_id: int) -> dict[str, Any]:
    """One subscription, its signing secret included (an administrator hands it to the receiver)."""
    who = await require_admin(who, "read")
    found = as_dict(await _row(subscription_id), secret=True)
    await audit.record("read", model=MODEL, record_id=subscription_id, detail="signing secret shown", principal=who)
    return found


async def create(who: Principal | None, data: Mapping[str, Any]) -> dict[str, Any]:
    who = await require_admin(who, "create")
    values = await check({"owner": who.user_id, **data})
    values.pop("version", None)
    now = _now()
    async with db.atomic():
        rows = await Sub.insert(
            Sub(
                **values,
                secret=f"whsec_{secrets.token_hex(24)}",
                created_by=who.user_id,
                created_at=now,
                updated_at=now,
            )
        ).returning(Sub.id)
        subscription_id = int(rows[0]["id"])
        await audit.record("create", model=MODEL, record_id=subscription_id, changes=audit.diff(None, values))
    events.invalidate()
    return await read(who, subscription_id)


async def update(who: Principal | None, subscription_id: int, data: Mapping[str, Any], version: Any) -> dict[str, Any]:
    from core.values import integer

    who = await require_admin(who, "update")
    if version is None:
        raise ValidationError({"version": N_("is required so concurrent edits are not lost")})
    version = integer(version, "version")
    async with db.atomic():
        row = await _row(subscription_id)
        current = {k: v for k, v in as_dict(row).items() if k in ("name", "url", "events", "owner", "is_active")}
        values = await check({k: v for k, v in data.items() if k != "version"}, current)
        changes: dict[Any, Any] = {getattr(Sub, k): v for k, v in values.items()}
        changes.update({Sub.updated_at: _now(), Sub.version: Sub.version + 1})
        if values["is_active"] and not row["is_active"]:
            changes.update({Sub.consecutive_failures: 0, Sub.disabled_reason: ""})
        done = await Sub.update(changes).where((Sub.id == subscription_id) & (Sub.version == version)).returning(Sub.id)
        if not done:
            raise Conflict(
                f"webhook subscription {subscription_id} was changed by someone else (version {row['version']})",
                field="version",
            )
        await audit.record(
            "update",
            model=MODEL,
            record_id=subscription_id,
            changes=audit.diff({k: current[k] for k in values}, values),
        )
    events.invalidate()
    return await read(who, subscription_id)


async def set_active(who: Principal | None, subscription_id: int, active: bool) -> dict[str, Any]:
    """Enable (failures forgotten) or disable a subscription."""
    who = await require_admin(who, "enable" if active else "disable")
    row = await _row(subscription_id)
    changes: dict[Any, Any] = {Sub.is_active: active, Sub.version: Sub.version + 1, Sub.updated_at: _now()}
    if active:
        changes.update({Sub.consecutive_failures: 0, Sub.disabled_reason: ""})
    async with db.atomic():
        await Sub.update(changes).where(Sub.id == subscription_id)
        await audit.record(
            "update", model=MODEL, record_id=subscription_id, changes={"is_active": [bool(row["is_active"]), active]}
        )
    events.invalidate()
    return await read(who, subscription_id)


async def delete(who: Principal | None, subscription_id: int) -> None:
    """Delete a subscription and its delivery log (pending deliveries are skipped by the job)."""
    await require_admin(who, "delete")
    row = await _row(subscription_id)
    async with db.atomic():
        await WebhookDelivery.delete().where(WebhookDelivery.subscription_id == subscription_id)
        await Sub.delete().where(Sub.id == subscription_id)
        await audit.record(
            "delete",
            model=MODEL,
            record_id=subscription_id,
            changes=audit.diff({"name": row["name"], "url": row["url"]}, None),
        )
    events.invalidate()


def _delivery(row: Mapping[str, Any], payload: bool = True) -> dict[str, Any]:
    out = {
        k: row[k]
        for k in (
            "id",
            "subscription_id",
            "event",
            "event_id",
            "state",
            "attempts",
            "status_code",
            "response_ms",
            "error",
        )
    }
    for key in ("created_at", "last_attempt_at", "delivered_at"):
        out[key] = row[key].isoformat() if row[key] else None
    if payload:
        raw = row["payload"]
        out["payload"] = json.loads(raw) if isinstance(raw, str) else raw
    return out


async def deliveries(
    who: Principal | None, subscription_id: int, limit: int = 50, before: int | None = None, state: str | None = None
) -> list[dict[str, Any]]:
    """The delivery log, newest first (keyset on ``before``), optionally of one ``state``."""
    await require_admin(who, "deliveries")
    await _row(subscription_id)
    if state is not None and state not in STATES:
        raise ValidationError({"state": N_("must be pending, delivered, failed or skipped")})
    query = WebhookDelivery.select().where(WebhookDelivery.subscription_id == subscription_id)
    if before is not None:
        query = query.where(WebhookDelivery.id < before)
    if state is not None:
        query = query.where(WebhookDelivery.state == state)
    return [_delivery(r) for r in await query.order_by(WebhookDelivery.id, ascending=False).limit(limit)]


async def redrive(who: Principal | None, delivery_id: int) -> dict[str, Any]:
    """Send a delivery again (failed, skipped or even delivered): the same event id and body, signed anew."""
    from core import outbox
    from core.jobs import spec

    await require_admin(who, "redrive")
    row = await WebhookDelivery.select().where(WebhookDelivery.id == delivery_id).first()
    if row is None:
        raise NotFound(f"webhook delivery {delivery_id} not found")
    sub = await _row(int(row["subscription_id"]))
    if not sub["is_active"]:
        raise Conflict(N_("the subscription is disabled: enable it first"), field="is_active")
    if row["state"] == "pending":
        raise Conflict(N_("this delivery is still being tried"), field="state")
    async with db.atomic():
        await WebhookDelivery.update(
            {WebhookDelivery.state: "pending", WebhookDelivery.attempts: 0, WebhookDelivery.error: ""}
        ).where(WebhookDelivery.id == delivery_id)
        await outbox.write(spec("core.webhook_deliver"), {"delivery_id": delivery_id})
        await audit.record(
            "redrive",
            model=MODEL,
            record_id=int(row["subscription_id"]),
            detail=f"delivery {delivery_id} ({row['event']})",
        )
    return _delivery({**row, "state": "pending", "attempts": 0, "error": ""})
