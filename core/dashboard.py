"""The kernel's cards on the home page, shown to every role: the changes I made lately (from the audit log) and my
unread notifications. Addons add theirs through ``crm_dashboard_widgets(access)``; the home page shows both,
ordered by ``Widget.order``."""

from __future__ import annotations

from core import labels, notifications
from core.hooks import Widget
from core.i18n import gettext
from core.security.access import Access
from core.security.models import AuditLog

#: audit actions that are not a change someone made to a record
_NOT_CHANGES = ("login", "logout", "login_failed", "login_throttled", "search", "denied", "auth_failed",
                "csrf_failed", "idempotent_replay", "reveal", "export", "gdpr_export", "notify_failed")


async def widgets(access: Access, *, limit: int = 5) -> list[Widget]:
    """The kernel's own widgets for ``access``'s user (none for a token without a user)."""
    who = access.principal
    if who is None:
        return []
    unread = await notifications.recent(who.user_id, limit, unread_only=True)
    changes = await AuditLog.select(AuditLog.at, AuditLog.action, AuditLog.model, AuditLog.record_id).where(
        (AuditLog.user_id == who.user_id) & AuditLog.action.not_in(list(_NOT_CHANGES))).order_by(
        AuditLog.id, ascending=False).limit(limit)
    return [
        Widget(key="core_notifications", title=gettext("Unread notifications"), order=5,
               template="core/widget_notifications.html",
               context={"rows": unread, "total": await notifications.unread_count(who.user_id)}),
        Widget(key="core_changes", title=gettext("My recent changes"), order=900, template="core/widget_changes.html",
               context={"rows": [{**row, "action_label": labels.action(row["action"]),
                                  "model_label": labels.model(row["model"])} for row in changes]}),
    ]
