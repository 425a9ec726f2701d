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
