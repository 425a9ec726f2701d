"""Kernel housekeeping jobs."""

from __future__ import annotations

import datetime as dt

from core.jobs import actor
from core.security.models import LoginAttempt, Session


@actor("core.purge_expired", max_retries=3)
async def purge_expired(days: int = 30) -> None:
    """Drop old login attempts and revoked sessions (idempotent: deleting twice deletes nothing)."""
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    await LoginAttempt.delete().where(LoginAttempt.at < cutoff)
    await Session.delete().where(Session.revoked_at < cutoff)


@actor("core.transfer_records", max_retries=5, time_limit_ms=3_600_000)
async def transfer_records(key: str, user_id: int, mode: str, to_user: int | None = None, team: int | None = None,
                           strategy: str = "balanced", admin_id: int | None = None) -> None:
    """Hand a leaving user's records over (:func:`core.security.handover.transfer`; idempotent)."""
    from core.security import handover

    await handover.transfer(handover.Plan(user_id, mode, to_user, team, strategy), key, admin_id)
