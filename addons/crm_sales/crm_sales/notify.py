"""In-app notifications (the kernel has none): one row per message, ``dedup_key`` unique.

The key makes a notification idempotent: a job that runs twice (Dramatiq retry, a worker killed after
commit) inserts nothing the second time, so nobody is told twice.
"""

from __future__ import annotations

import datetime as dt

from crm_sales.models import Notification


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def notify(user_id: int | None, kind: str, title: str, *, url: str = "", dedup_key: str) -> bool:
    """Tell ``user_id`` once per ``dedup_key``; returns False when it was already told (or nobody to tell)."""
    if not user_id:
        return False
    if await Notification.exists().where(Notification.dedup_key == dedup_key):
        return False
    await Notification.insert(Notification(owner=user_id, kind=kind, title=title[:300], url=url,
                                           dedup_key=dedup_key[:200]))
    return True


async def unread(user_id: int, limit: int = 20) -> list[dict[str, object]]:
    return list(await Notification.select().where(
        (Notification.owner == user_id) & Notification.read_at.is_null()).order_by(
        Notification.id, ascending=False).limit(limit))
