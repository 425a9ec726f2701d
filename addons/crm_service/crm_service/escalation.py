"""Escalation across channels: the same customer asking about the same thing on several channels (or many times)
within a window is one problem, not several. The tickets are linked (``escalation_of``: the first of them), the
newest gets one priority level more, the team leader is told, and the reason is logged on each ticket.

"The same thing": the subjects share a word (jieba-segmented, two characters or more, not a stop word).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from core.hooks import Notification
from core.i18n import gettext
from core.notifications import notify
from core.security import audit
from core.security.models import Team
from crm_service import kb
from crm_service.manifest import TICKET
from crm_service.models import Ticket

WINDOW = dt.timedelta(days=7)
MIN_CHANNELS = 3
MIN_TICKETS = 5
LEVELS = ("low", "normal", "high", "urgent")
STOP = frozenset({"the", "and", "for", "with", "please", "help", "问题", "一下", "请问", "你好", "您好", "我们"})


def topic(subject: str) -> frozenset[str]:
    return frozenset(w for w in kb.words(subject) if len(w) > 1 and w not in STOP)


def raised(priority: str) -> str:
    i = LEVELS.index(priority) if priority in LEVELS else 1
    return LEVELS[min(i + 1, len(LEVELS) - 1)]


async def check(ticket_id: int, *, now: dt.datetime | None = None) -> str:
    """Escalate ``ticket_id`` if it repeats its customer's recent tickets; returns the reason ('' when not)."""
    ticket = await Ticket.select().where(Ticket.id == ticket_id).first()
    if ticket is None or not ticket["person"] or ticket["escalation_of"]:
        return ""
    now = now or dt.datetime.now(dt.UTC)
    words = topic(ticket["subject"])
    if not words:
        return ""
    recent = await Ticket.select(Ticket.id, Ticket.subject, Ticket.channel, Ticket.escalation_of).where(
        (Ticket.person == ticket["person"]) & (Ticket.created_at >= now - WINDOW) & (Ticket.id != ticket_id)
    ).order_by(Ticket.id)
    same = [r for r in recent if topic(r["subject"]) & words]
    group = [*same, {"id": ticket_id, "channel": ticket["channel"], "escalation_of": None}]
    channels = sorted({r["channel"] for r in group})
    if len(channels) < MIN_CHANNELS and len(group) < MIN_TICKETS:
        return ""
    first = min(int(r["escalation_of"] or r["id"]) for r in group)
    reason = (f"{len(group)} tickets on {len(channels)} channels ({', '.join(channels)}) within "
              f"{WINDOW.days} days about: {', '.join(sorted(words))}")[:300]
    new_priority = raised(ticket["priority"])
    await Ticket.update({Ticket.escalation_of: first, Ticket.escalation_reason: reason,
                         Ticket.priority: new_priority, Ticket.version: Ticket.version + 1}).where(
        Ticket.id == ticket_id)
    linked = [int(r["id"]) for r in same if not r["escalation_of"] and int(r["id"]) != first]
    if linked:
        await Ticket.update({Ticket.escalation_of: first, Ticket.escalation_reason: reason}).where(
            Ticket.id.is_in(linked))
    for rid in [ticket_id, *linked]:
        await audit.record("escalate", model=TICKET, record_id=rid, detail=reason,
                           changes={"priority": [ticket["priority"], new_priority]} if rid == ticket_id else {})
    await _tell_leader(ticket, reason)
    return reason


async def _tell_leader(ticket: dict[str, Any], reason: str) -> None:
    from crm_service.tickets import reference

    if not ticket["team"]:
        return
    team = await Team.select(Team.leader).where(Team.id == ticket["team"]).first()
    if not team or not team["leader"]:
        return
    await notify(Notification(user_id=int(team["leader"]), title=gettext("Escalated: %(ref)s %(subject)s") % {
        "ref": reference(int(ticket["id"])), "subject": ticket["subject"]}, body=reason,
        url=f"/service/tickets/{ticket['id']}", kind="warning", source="crm_service"),
        dedup_key=f"crm_service.escalated.{ticket['id']}")


async def high_priority_complaint(ticket_id: int) -> bool:
    """A complaint of high or urgent priority: the team leader (the supervisor) is copied at once and a
    follow-up call is scheduled (``followup.py``)."""
    from crm_service import followup

    ticket = await Ticket.select().where(Ticket.id == ticket_id).first()
    if ticket is None or ticket["ticket_type"] != "complaint" or ticket["priority"] not in ("high", "urgent"):
        return False
    await _tell_leader(ticket, gettext("High-priority complaint: the service report is on the ticket."))
    await followup.schedule_call(ticket)
    return True
