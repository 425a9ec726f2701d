"""Sending a delivery: signed POST, the attempt logged (status, response time, error), retried with exponential
backoff (:func:`backoff`) up to :data:`MAX_ATTEMPTS`, and the subscription disabled after
``CRM_WEBHOOK_MAX_FAILURES`` failed attempts in a row, its owner told.

Runs as the ``core.webhook_deliver`` job, at least once per attempt: the receiver recognises a repeat by
``X-CRM-Event-Id`` (the same on every attempt and re-drive of an event)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from typing import Any

from core.errors import RetryLater, ValidationError
from core.webhooks import signing, targets
from core.webhooks.models import WebhookDelivery, WebhookSubscription

log = logging.getLogger("crm.webhooks")
MAX_ATTEMPTS = 8
FIRST_BACKOFF = 30.0
MAX_BACKOFF = 3600.0


def backoff(attempts: int) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: 30 s, 1, 2, 4 … minutes, at most 1 h
    (8 attempts span about an hour)."""
    return float(min(FIRST_BACKOFF * 2.0 ** max(attempts - 1, 0), MAX_BACKOFF))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def body_of(payload: Any) -> bytes:
    data = json.loads(payload) if isinstance(payload, str) else payload
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


async def deliver(delivery_id: int) -> str:
    """One attempt at ``delivery_id``; raises :class:`RetryLater` when another attempt is due."""
    import httpx

    from core.runtime import current

    row = await WebhookDelivery.select().where(WebhookDelivery.id == delivery_id).first()
    if row is None or row["state"] != "pending":
        return "nothing to do"
    sub = await WebhookSubscription.select().where(WebhookSubscription.id == row["subscription_id"]).first()
    if sub is None or not sub["is_active"]:
        await WebhookDelivery.update(
            {WebhookDelivery.state: "skipped", WebhookDelivery.error: "the subscription is disabled or deleted"}
        ).where(WebhookDelivery.id == delivery_id)
        return "skipped"
    settings = current().settings
    body = body_of(row["payload"])
    status: int | None = None
    started = time.monotonic()
    try:
        url = await targets.check(str(sub["url"]), settings.webhook_allow_networks)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "crm-webhooks",
            signing.HEADER: signing.sign(str(sub["secret"]), body),
            "X-CRM-Event": str(row["event"]),
            "X-CRM-Event-Id": str(row["event_id"]),
            "X-CRM-Delivery": str(delivery_id),
        }
        async with httpx.AsyncClient(timeout=float(settings.webhook_timeout_seconds), follow_redirects=False) as client:
            answer = await client.post(url, content=body, headers=headers)
        status = answer.status_code
        error = "" if 200 <= status < 300 else f"answered {status}: {answer.text[:300]}"
    except ValidationError as exc:
        error = "; ".join(f"{k} {v}" for k, v in exc.fields.items())
    except httpx.TimeoutException:
        error = f"no answer within {settings.webhook_timeout_seconds} s"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    elapsed = int((time.monotonic() - started) * 1000)
    attempts = int(row["attempts"]) + 1
    values: dict[Any, Any] = {
        WebhookDelivery.attempts: attempts,
        WebhookDelivery.status_code: status,
        WebhookDelivery.response_ms: elapsed,
        WebhookDelivery.error: error,
        WebhookDelivery.last_attempt_at: _now(),
    }
    if not error:
        values.update({WebhookDelivery.state: "delivered", WebhookDelivery.delivered_at: _now()})
        await WebhookDelivery.update(values).where(WebhookDelivery.id == delivery_id)
        if sub["consecutive_failures"]:
            await WebhookSubscription.update({WebhookSubscription.consecutive_failures: 0}).where(
                WebhookSubscription.id == sub["id"]
            )
        return f"delivered: {status} in {elapsed} ms"
    final = attempts >= MAX_ATTEMPTS
    if final:
        values[WebhookDelivery.state] = "failed"
    await WebhookDelivery.update(values).where(WebhookDelivery.id == delivery_id)
    still_active = await _count_failure(int(sub["id"]), settings.webhook_max_failures)
    if not final and still_active:
        raise RetryLater(f"webhook delivery {delivery_id}: {error}", delay=backoff(attempts))
    if not still_active:
        await WebhookDelivery.update({WebhookDelivery.state: "skipped"}).where(
            (WebhookDelivery.subscription_id == sub["id"])
            & (WebhookDelivery.state == "pending")
            & (WebhookDelivery.id != delivery_id)
        )
        if not final:
            await WebhookDelivery.update({WebhookDelivery.state: "failed"}).where(WebhookDelivery.id == delivery_id)
    return f"failed: {error}"


async def _count_failure(subscription_id: int, limit: int) -> bool:
    """One more failed attempt in a row; at ``limit``, disable the subscription (once) and tell its owner.
    Returns whether the subscription is still active."""
    from core.hooks import Notification
    from core.i18n import gettext
    from core.notifications import notify

    Sub = WebhookSubscription
    rows = (
        await Sub.update({Sub.consecutive_failures: Sub.consecutive_failures + 1})
        .where(Sub.id == subscription_id)
        .returning(Sub.consecutive_failures, Sub.is_active)
    )
    if not rows or not rows[0]["is_active"]:
        return False
    failures = int(rows[0]["consecutive_failures"])
    if failures < limit:
        return True
    reason = f"disabled after {failures} failed attempts in a row"
    disabled = (
        await Sub.update({Sub.is_active: False, Sub.disabled_reason: reason, Sub.version: Sub.version + 1})
        .where((Sub.id == subscription_id) & (Sub.is_active == True))  # noqa: E712
        .returning(Sub.owner, Sub.name)
    )
    if disabled:
        from core.webhooks import events

        events.invalidate()
        log.warning("webhook subscription %s %s", subscription_id, reason)
        await notify(
            Notification(
                user_id=int(disabled[0]["owner"]),
                title=gettext("Webhook disabled: %(name)s") % {"name": disabled[0]["name"]},
                body=gettext(
                    "%(count)s deliveries in a row failed. Fix the receiver, then enable the subscription "
                    "again and re-drive the failed deliveries."
                )
                % {"count": failures},
                url=f"/admin/webhooks/{subscription_id}",
                kind="error",
                source="core",
            ),
            dedup_key=f"webhook-disabled:{subscription_id}:{failures}:{int(time.time())}",
        )
    return False
