"""Notifications: the kernel hands each one to every installed channel (``crm_notification_channels``).

A channel that fails does not stop the others; its failure is logged and audited so an admin can see that
a user was not reached, and the caller learns which channels failed.
"""

from __future__ import annotations

import logging

from core import hooks
from core.hooks import Notification, NotificationChannel
from core.security import audit

log = logging.getLogger("crm.notifications")


async def channels() -> list[NotificationChannel]:
    found: list[NotificationChannel] = await hooks.call("crm_notification_channels")
    return found


async def notify(notification: Notification) -> list[str]:
    """Deliver ``notification`` through every channel; returns the keys of channels that failed."""
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
