"""erp_bridge jobs. Each is idempotent: a duplicate message or a retry after a crash changes nothing twice."""

from __future__ import annotations

import logging
from typing import TypedDict

from core.jobs import actor

log = logging.getLogger("erp_bridge.jobs")



class _Retry(TypedDict):
    """The retry options of ``core.jobs.actor`` shared by the push and cancel jobs."""

    max_retries: int
    min_backoff_ms: int
    max_backoff_ms: int
    time_limit_ms: int


# ERP outages last minutes: back off up to 5 minutes, 10 tries (~25 min) before the job lands in the failed list.
# time_limit also sets the outbox lease (limit + 30 s): a killed worker's push is picked up again ~90 s later.
_RETRY: _Retry = {"max_retries": 10, "min_backoff_ms": 1_000, "max_backoff_ms": 300_000, "time_limit_ms": 60_000}


@actor("erp_bridge.push_order", **_RETRY)
async def push_order(order_id: int) -> None:
    from erp_bridge import sync

    await sync.push_order(order_id)


@actor("erp_bridge.cancel_order", **_RETRY)
async def cancel_order(order_id: int) -> None:
    from erp_bridge import sync

    await sync.cancel_order(order_id)


@actor("erp_bridge.pull_invoices", max_retries=2)
async def pull_invoices() -> None:
    """Scheduled: invoices and payments back from the ERP, then cancellations the CRM still owes the ERP."""
    from erp_bridge import connection, sync

    if not await connection.is_configured():  # installed, not yet pointed at an ERP: nothing to pull, no error
        log.info("erp_bridge.pull_invoices: no ERP backend configured yet, skipped")
        return
    await sync.pull_invoices()
    await sync.queue_pending_cancellations()


@actor("erp_bridge.reconcile", max_retries=2, time_limit_ms=3_600_000)
async def reconcile(trigger: str = "schedule") -> None:
    from erp_bridge import connection
    from erp_bridge import reconcile as rec

    if trigger == "schedule" and not await connection.is_configured():
        log.info("erp_bridge.reconcile: no ERP backend configured yet, skipped")
        return
    await rec.run(trigger=trigger)
