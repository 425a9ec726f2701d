"""Notifications: every one lands in the user's in-app list (the bell), goes by e-mail to a user who chose it
(:mod:`core.notification_email`), and is handed to every installed channel (``crm_notification_channels``:
chat…).

A channel that fails does not stop the others; its failure is logged and audited so an admin can see that a
user was not reached, and the caller learns which channels failed. A ``dedup_key`` makes a notification
idempotent: a job that runs twice tells nobody twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from core import hooks
from core.hooks import Notification, NotificationChannel
from core.models import Notification as Row
from core.security import audit

log = logging.getLogger("crm.notifications")


async def channels() -> list[NotificationChannel]:
    found: list[NotificationChannel] = await hooks.call("crm_notification_channels")
    return found


async def notify(notification: Notification, dedup_key: str | None = None, *, email: bool = True) -> list[str]:
    """Store ``notification`` in its user's list, e-mail it to a user who chose e-mail (unless ``email`` is
    False: what tells of an e-mail failure) and deliver it through every channel; returns the keys of the channels
    that failed. With ``dedup_key``, a second call with the same key does nothing."""
    from core import notification_email

    if dedup_key is not None and await Row.exists().where(Row.dedup_key == dedup_key[:200]):
        return []
    await Row.insert(Row(user_id=notification.user_id, title=notification.title[:300], body=notification.body,
                         url=(notification.url or "")[:500], kind=notification.kind[:40],
                         source=notification.source[:100], dedup_key=dedup_key[:200] if dedup_key else None))
    if email:
        await notification_email.queue([(notification, dedup_key)])
    failed: list[str] = []
    for channel in await channels():
        try:
            await channel.deliver(notification)
        except Exception as exc:
            log.warning("notification channel %s failed for user %s: %s", channel.key, notification.user_id, exc)
            await audit.record("notify_failed", model="core.user", record_id=notification.user_id,
                               detail=f"{channel.key}: {type(exc).__name__}: {exc}"[:500])
            failed.append(channel.key)
    return failed


async def notify_many(items: list[tuple[Notification, str]]) -> int:
    """:func:`notify` for many notifications at once (a background job telling thousands of users): one query
    for the keys already used, one multi-row insert, then each new one through every channel. Each item carries
    its ``dedup_key``; returns how many were new."""
    from core import notification_email
    from core.bulk import any_of, insert_rows

    keys = [key[:200] for _, key in items]
    seen = {r["dedup_key"] for r in await Row.select(Row.dedup_key).where(any_of(Row.dedup_key, keys))} \
        if keys else set()
    fresh: list[tuple[Notification, str]] = []
    for notification, key in items:
        if key[:200] not in seen:
            seen.add(key[:200])
            fresh.append((notification, key[:200]))
    now = dt.datetime.now(dt.UTC)
    await insert_rows(Row, [{"user_id": n.user_id, "title": n.title[:300], "body": n.body, "url": (n.url or "")[:500],
                             "kind": n.kind[:40], "source": n.source[:100], "dedup_key": key, "created_at": now}
                            for n, key in fresh])
    await notification_email.queue([(n, key) for n, key in fresh])
    found = await channels()
    for notification, _ in fresh if found else []:
        for channel in found:
            try:
                await channel.deliver(notification)
            except Exception as exc:
                log.warning("notification channel %s failed for user %s: %s", channel.key, notification.user_id, exc)
                await audit.record("notify_failed", model="core.user", record_id=notification.user_id,
                                   detail=f"{channel.key}: {type(exc).__name__}: {exc}"[:500])
    return len(fresh)


async def notify_admins(title: str, body: str = "", url: str = "", *, kind: str = "error", source: str = "",
                        dedup_key: str | None = None, besides: int | None = None, email: bool = True) -> int:
    """Tell every active administrator (but ``besides``, already told); returns how many were told."""
    from core.security.models import User, UserRole

    admins = {int(r["user"]) for r in await UserRole.select(UserRole.user).where(UserRole.role == "admin")}
    active = [int(r["id"]) for r in await User.select(User.id).where(
        User.id.is_in(sorted(admins or {-1})) & (User.is_active == True))]  # noqa: E712
    told = 0
    for user_id in active:
        if user_id == besides:
            continue
        await notify(Notification(user_id=user_id, title=title, body=body, url=url, kind=kind, source=source),
                     dedup_key=f"{dedup_key}:{user_id}" if dedup_key else None, email=email)
        told += 1
    return told


async def unread_count(user_id: int) -> int:
    return int(await Row.count().where((Row.user_id == user_id) & Row.read_at.is_null()))


async def recent(user_id: int, limit: int = 50, unread_only: bool = False) -> list[dict[str, Any]]:
    query = Row.select().where(Row.user_id == user_id)
    if unread_only:
        query = query.where(Row.read_at.is_null())
    return list(await query.order_by(Row.id, ascending=False).limit(limit))


async def mark_read(user_id: int, ids: list[int] | None = None) -> int:
    """Mark the user's own notifications read (all of them when ``ids`` is None); returns how many."""
    where = (Row.user_id == user_id) & Row.read_at.is_null()
    if ids is not None:
        where = where & Row.id.is_in(ids or [-1])
    rows = await Row.update({Row.read_at: dt.datetime.now(dt.UTC)}).where(where).returning(Row.id)
    return len(rows)
