"""The approval engine's job: run a held action once its request is approved (idempotent: claimed per request)."""

from __future__ import annotations

from core.jobs import actor


@actor("core.perform_approved", max_retries=5, min_backoff_ms=2_000)
async def perform_approved(request_id: int) -> None:
    from core.approvals import flow

    await flow.perform(int(request_id))
