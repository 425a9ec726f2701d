"""The tables of outgoing webhooks: subscriptions and their delivery log.

A delivery is one event sent to one subscription: its payload is frozen when the event happens (as the
subscription's owner may see the record), so a retry or a re-drive sends the same body, signed afresh.
"""

from __future__ import annotations

from piccolo.columns import JSON, BigInt, Boolean, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class WebhookSubscription(Table, tablename="core_webhook_subscription"):
    """Send ``events`` (names, see :func:`core.webhooks.events.known`) to ``url``, signed with ``secret``, as
    ``owner`` may see the records. ``consecutive_failures`` counts failed attempts since the last success; at
    the limit the subscription is disabled (``disabled_reason`` says why) and its owner told."""

    id: Serial
    name = Varchar(length=200)
    url = Varchar(length=2000)
    events = JSON(default="[]")
    secret = Varchar(length=100)
    owner = BigInt(index=True)
    is_active = Boolean(default=True, index=True)
    consecutive_failures = Integer(default=0)
    disabled_reason = Text(default="")
    version = Integer(default=1)
    created_by = BigInt(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class WebhookDelivery(Table, tablename="core_webhook_delivery"):
    """One event for one subscription. ``state``: pending | delivered | failed | skipped (the subscription was
    disabled or deleted first). ``status_code`` and ``response_ms`` are the latest attempt's; ``event_id`` is the
    receiver's idempotency key (the same on every attempt and re-drive)."""

    id: Serial
    subscription_id = BigInt(index=True)
    event = Varchar(length=200)
    event_id = Varchar(length=64, index=True)
    payload = JSON(default="{}")
    state = Varchar(length=20, default="pending", index=True)
    attempts = Integer(default=0)
    status_code = Integer(null=True, default=None)
    response_ms = Integer(null=True, default=None)
    error = Text(default="")
    created_at = Timestamptz(default=TimestamptzNow())
    last_attempt_at = Timestamptz(null=True, default=None)
    delivered_at = Timestamptz(null=True, default=None)
