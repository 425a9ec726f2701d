"""Background jobs of crm_loyalty: actors are named ``crm_loyalty.<imperative verb>`` and must be idempotent."""

from __future__ import annotations

from core.jobs import actor
from crm_loyalty import services


@actor("crm_loyalty.award_points")
async def award_points(account_id: int, points: int, reason: str = "") -> None:
    """Award points in the background (e.g. after an order); enqueue with a ``dedup_key`` per order, so a
    replayed event awards once."""
    await services.award(account_id, points)


@actor("crm_loyalty.expire_points")
async def expire_points() -> None:
    """Nightly (``Every(hours=24)`` in the manifest): nothing expires in this example; a real addon would age
    balances here."""
