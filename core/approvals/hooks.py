"""The kernel's own implementations of its hooks for approval flows (registered at boot before any addon's):
the "Approvals" menu entry and the panel a record page shows while an action on it awaits approval."""

from __future__ import annotations

from collections.abc import Sequence

from core.addon import Menu
from core.hooks import Panel, hookimpl
from core.i18n import gettext
from core.security.access import Access


@hookimpl
async def crm_menu_items(access: Access) -> Sequence[Menu]:
    """"Approvals" with the number waiting for this user; shown once approval rules exist (two small queries)."""
    from core.approvals.inbox import inbox_count
    from core.approvals.models import ApprovalRule

    if access.principal is None:
        return []
    waiting = await inbox_count(access.principal.user_id)
    if waiting:
        return [Menu(f"{gettext('Approvals')} ({waiting})", "/approvals", order=850)]
    if await ApprovalRule.exists():
        return [Menu(gettext("Approvals"), "/approvals", order=850)]
    return []


@hookimpl
async def crm_record_panels(access: Access, model: str, record_id: int) -> Sequence[Panel]:
    """The latest approval request of each action on the record: who it waits for, or who decided and why."""
    from core.approvals.inbox import for_record

    if access.principal is None:
        return []
    found = await for_record(access, model, record_id)
    if not found:
        return []
    waiting = sum(1 for r in found if r["state"] == "pending")
    return [Panel(key="core_approvals", title=gettext("Approvals"), template="core/approval_panel.html",
                  context={"requests": found}, order=5, count=waiting or None)]
