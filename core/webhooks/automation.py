"""The automation action "send to a webhook": a rule hands the record it acts on to a webhook subscription, which
delivers it like any event — signed, retried with backoff, logged, as the subscription's owner sees the record.
Idempotent per (rule, event, action): a retried run finds the delivery it already made."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from typing import Any

from core.errors import PermanentJobError, ValidationError
from core.hooks import AutomationAction, AutomationContext, AutomationModel
from core.i18n import N_
from core.webhooks.models import WebhookDelivery, WebhookSubscription


async def _check(am: AutomationModel, params: Mapping[str, Any]) -> Mapping[str, Any]:
    from core import values

    unknown = sorted(set(params) - {"subscription_id"})
    if unknown:
        raise ValidationError({unknown[0]: N_("is not a parameter of this action")})
    subscription_id = values.integer(params.get("subscription_id"), "subscription_id")
    if not await WebhookSubscription.exists().where(WebhookSubscription.id == subscription_id):
        raise ValidationError({"subscription_id": N_("is not a webhook")})
    return {"subscription_id": subscription_id}


async def _run(ctx: AutomationContext) -> str:
    from core import outbox
    from core.jobs import spec
    from core.webhooks.events import _record_as

    Sub = WebhookSubscription
    sub = (
        await Sub.select(Sub.id, Sub.name, Sub.owner, Sub.is_active)
        .where(Sub.id == int(ctx.params["subscription_id"]))
        .first()
    )
    if sub is None:
        raise PermanentJobError(f"webhook {ctx.params['subscription_id']} no longer exists")
    if not sub["is_active"]:
        return f"webhook {sub['name']!r} is disabled: nothing sent"
    event_id = hashlib.sha256(f"automation:{ctx.key}".encode()).hexdigest()[:32]
    found = (
        await WebhookDelivery.select(WebhookDelivery.id)
        .where((WebhookDelivery.subscription_id == sub["id"]) & (WebhookDelivery.event_id == event_id))
        .first()
    )
    if found is not None:
        return f"delivery {found['id']} to webhook {sub['name']!r} (made before)"
    data = await _record_as({}, int(sub["owner"]), ctx.model, ctx.record_id, "updated")
    if data is None:
        return f"the owner of webhook {sub['name']!r} may not see record {ctx.record_id}: nothing sent"
    event = f"automation.rule_{ctx.rule_id}"
    payload = {
        "id": event_id,
        "event": event,
        "occurred_at": dt.datetime.now(dt.UTC).isoformat(),
        "model": ctx.model,
        "record_id": ctx.record_id,
        "data": data,
        "rule": {"id": ctx.rule_id, "name": ctx.rule_name},
    }
    rows = await WebhookDelivery.insert(
        WebhookDelivery(subscription_id=sub["id"], event=event, event_id=event_id, payload=payload)
    ).returning(WebhookDelivery.id)
    delivery_id = int(rows[0]["id"])
    await outbox.write(spec("core.webhook_deliver"), {"delivery_id": delivery_id})
    return f"delivery {delivery_id} to webhook {sub['name']!r} queued"


def actions() -> list[AutomationAction]:
    return [
        AutomationAction(
            "send_to_webhook",
            N_("Send to a webhook"),
            _run,
            check=_check,
            is_external=True,
            help=N_(
                "The record goes to a webhook of /admin/webhooks: signed, retried and logged "
                "there, as the webhook's owner sees it."
            ),
        )
    ]
