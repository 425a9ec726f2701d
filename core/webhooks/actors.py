"""The webhook job: one attempt at one delivery (retries are :class:`~core.errors.RetryLater` with the
delivery's own backoff, so the delivery log, not the job's retry count, says how often it was tried)."""

from __future__ import annotations

from core.jobs import actor


@actor("core.webhook_deliver", max_retries=3, time_limit_ms=120_000)
async def webhook_deliver(delivery_id: int) -> None:
    from core.webhooks import delivery

    await delivery.deliver(int(delivery_id))
