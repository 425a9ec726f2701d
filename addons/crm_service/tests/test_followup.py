"""The follow-up call after a high-priority complaint: without crm_sales a reminder on the ticket that notifies
the assignee once when due; with crm_sales a call activity on the customer through the kernel action."""

from __future__ import annotations

import datetime as dt
from typing import Any

from service_helpers import build_desk

from core.notifications import recent
from core.security.models import AuditLog
from core.testing import login_client

COMPLAINT = {"subject": "服务态度差 {{ 7*7 }}", "ticket_type": "complaint", "priority": "urgent",
             "customer_name": "赵敏", "customer_email": "zhao@example.cn"}


async def test_follow_up_reminder_without_crm_sales(crm_client: Any) -> None:
    from crm_service import followup, tickets
    from crm_service.models import FollowUp

    client = await crm_client("crm_service")
    desk = await build_desk(None)
    agent = await desk.acc("agent1")
    ticket_id = await tickets.create_ticket(agent, {**COMPLAINT, "team": desk.support, "owner": desk.ids["agent2"]})
    plain = await tickets.create_ticket(agent, {**COMPLAINT, "priority": "normal", "team": desk.support})
    rows = await FollowUp.select().where(FollowUp.ticket.is_in([ticket_id, plain]))
    assert len(rows) == 1 and rows[0]["ticket"] == ticket_id and rows[0]["user"] == desk.ids["agent2"]
    assert await AuditLog.exists().where((AuditLog.action == "follow_up") & (AuditLog.record_id == str(ticket_id)))

    def due(title: str) -> bool:
        return "Follow-up" in title or "回访" in title

    assert await followup.remind_due() == 0  # not due yet
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=25)
    assert await followup.remind_due(later) == 1
    assert await followup.remind_due(later) == 0  # once
    assert len([n for n in await recent(desk.ids["agent2"]) if due(n["title"])]) == 1
    assert not [n for n in await recent(desk.ids["agent1"]) if due(n["title"])]

    await login_client(client, "agent2")
    page = await client.get(f"/service/tickets/{ticket_id}")
    assert page.status_code == 200 and ("Follow-up call" in page.text or "回访电话" in page.text)


async def test_follow_up_call_activity_with_crm_sales(crm_boot: Any) -> None:
    from crm_service import tickets
    from crm_service.models import FollowUp, Ticket

    await crm_boot("crm_service", "crm_sales")
    desk = await build_desk(None)
    agent = await desk.acc("agent1")
    ticket_id = await tickets.create_ticket(agent, {**COMPLAINT, "team": desk.support, "owner": desk.ids["agent2"]})
    ticket = await Ticket.select(Ticket.person).where(Ticket.id == ticket_id).first()
    # crm_sales' activities read by table name: crm_service's tests import no other addon
    calls = await Ticket.raw("SELECT kind, owner, subject, note, due_at FROM crm_sales_activity WHERE person = {}",
                             ticket["person"])
    assert len(calls) == 1
    call = calls[0]
    if isinstance(call["due_at"], str):  # SQLite hands timestamps back as text
        call["due_at"] = dt.datetime.fromisoformat(call["due_at"])
    assert call["kind"] == "call" and call["owner"] == desk.ids["agent2"] and f"SR-{ticket_id:06d}" in call["subject"]
    assert "{{" not in call["note"] and "49" not in call["note"]  # the customer's text is not a template
    assert call["due_at"] > dt.datetime.now(dt.UTC) + dt.timedelta(hours=23)
    assert not await FollowUp.exists().where(FollowUp.ticket == ticket_id)
