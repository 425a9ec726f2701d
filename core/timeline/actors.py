"""The timeline's job: tell a record's followers of a change (idempotent: one dedup key per follower)."""

from __future__ import annotations

from typing import Any

from core.jobs import actor


@actor("core.timeline_changed", max_retries=5, min_backoff_ms=1_000)
async def timeline_changed(
    model: str, record_id: int, action: str, changes: dict[str, Any], by: int | None, key: str
) -> None:
    from core.timeline import notes

    await notes.tell_followers(model, int(record_id), action, changes, by, key)
