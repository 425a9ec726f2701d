"""Tickets end to end: customer matching, routing and assignment, team scope, states, conversation, timeline,
the pages, the JSON API."""

from __future__ import annotations

from typing import Any

import pytest
from service_helpers import build_desk

from core.errors import NotFound, ValidationError
from core.security.models import AuditLog
from core.testing import csrf_of, login_client


async def test_ticket_lifecycle_rules_and_pages(crm_client: Any) -> None:
    from crm_service import tickets
    from crm_service.models import Message, RoutingRule, ServiceTeam, StateChange, Ticket

    client = await crm_client("crm_service")
    desk = await build_desk(None)
    await RoutingRule.insert(
        RoutingRule(sequence=5, name="Refunds", keywords="退款,refund", team=desk.billing),
        RoutingRule(sequence=10, name="Everything else", team=desk.support))
    await ServiceTeam.insert(ServiceTeam(team=desk.support, assignment="round_robin"))
    agent1 = await desk.acc("agent1")

    # routed by keyword to Billing, the only Billing agent gets it; the customer is created through contacts
    refund = await tickets.create_ticket(agent1, {"subject": "申请退款", "description": "订单重复扣款",
                                                  "customer_name": "王小明", "customer_email": "xm@example.cn"})
    row = await Ticket.select().where(Ticket.id == refund).first()
    assert row["team"] == desk.billing and row["owner"] == desk.ids["agent3"]
    assert row["person"] and row["customer_email"] == "xm@example.cn"
    # the same customer again is matched by the duplicate check, not created twice
    again = await tickets.create_ticket(agent1, {"subject": "Printer jam", "customer_email": "xm@example.cn",
                                                 "customer_name": "王小明"})
    second = await Ticket.select().where(Ticket.id == again).first()
    assert second["person"] == row["person"] and second["team"] == desk.support
    # round-robin within Support: agent1, then agent2, then agent1
    third = await tickets.create_ticket(agent1, {"subject": "Login fails"})
    fourth = await tickets.create_ticket(agent1, {"subject": "Password reset"})
    owners = [r["owner"] for r in await Ticket.select(Ticket.owner).where(
        Ticket.id.is_in([again, third, fourth])).order_by(Ticket.id)]
    assert owners == [desk.ids["agent1"], desk.ids["agent2"], desk.ids["agent1"]]
    assert await AuditLog.exists().where((AuditLog.action == "assign") & (AuditLog.record_id == str(third)))

    # team scope: Billing's agent cannot reach a Support ticket, Support's cannot reach Billing's
    with pytest.raises(NotFound):
        await tickets.change_state(await desk.acc("agent3"), again, "open")
    with pytest.raises(NotFound):
        await tickets.add_message(agent1, refund, "note", "peek")

    # bad input names the field and writes nothing
    with pytest.raises(ValidationError) as bad:
        await tickets.create_ticket(agent1, {"subject": " ", "priority": "normal"})
    assert "subject" in bad.value.fields
    with pytest.raises(ValidationError) as bad:
        await tickets.change_state(agent1, again, "sleeping")
    assert "state" in bad.value.fields

    # conversation: a public reply opens the ticket and stops the first-response clock; a note stays internal
    await tickets.add_message(agent1, again, "reply", "请重启打印机")
    await tickets.add_message(agent1, again, "note", "客户是 VIP")
    await tickets.change_state(agent1, again, "pending_customer")
    after = await Ticket.select().where(Ticket.id == again).first()
    assert after["state"] == "pending_customer" and after["first_response_at"] is not None
    history = [r["to_state"] for r in await StateChange.select(StateChange.to_state).where(
        StateChange.ticket == again).order_by(StateChange.id)]
    assert history == ["new", "open", "pending_customer"]
    assert [m["kind"] for m in await Message.select(Message.kind).where(Message.ticket == again)] == ["reply", "note"]

    # pages: list (team scope, filter, search), detail with conversation and timeline
    await login_client(client, "agent1")
    listing = await client.get("/service/", params={"state": "pending_customer"})
    assert listing.status_code == 200
    assert "Printer jam" in listing.text and "申请退款" not in listing.text and "Login fails" not in listing.text
    searched = await client.get("/service/", params={"q": "password"})
    assert "Password reset" in searched.text and "Login fails" not in searched.text
    page = await client.get(f"/service/tickets/{again}")
    assert page.status_code == 200
    assert "请重启打印机" in page.text and "客户是 VIP" in page.text and f"SR-{again:06d}" in page.text
    assert "pending_customer" in page.text or "Pending customer" in page.text  # the timeline's state change
    assert (await client.get(f"/service/tickets/{refund}")).status_code == 404
    # a form post with CSRF resolves the ticket
    token = csrf_of(page.text)
    moved = await client.post(f"/service/tickets/{again}/state", data={"state": "resolved", "csrf_token": token})
    assert moved.status_code == 303
    assert (await Ticket.select(Ticket.state).where(Ticket.id == again).first())["state"] == "resolved"

    # JSON API: create (routed like the form), read back, the state action, a bad value names the field
    made = await client.post("/api/service/tickets", json={"subject": "API ticket", "priority": "high"},
                             headers={"X-CSRF-Token": token})
    assert made.status_code == 201, made.text
    api_id = made.json()["id"]
    assert made.json()["team"] == desk.support and made.json()["state"] == "new"
    acted = await client.post(f"/api/service/tickets/{api_id}/state", json={"state": "open"},
                              headers={"X-CSRF-Token": token})
    assert acted.status_code == 200, acted.text
    refused = await client.post("/api/service/tickets", json={"subject": "x", "priority": "whenever"},
                                headers={"X-CSRF-Token": token})
    assert refused.status_code == 422 and "priority" in refused.json()["error"]["fields"]
    listed = await client.get("/api/service/tickets", params={"limit": 2})
    assert listed.status_code == 200 and refund not in [r["id"] for r in listed.json()["items"]]

    # merge: the conversation moves to the survivor, the other is closed and points at it; refusals name the field
    await tickets.add_message(agent1, third, "reply", "Try clearing cookies")
    with pytest.raises(ValidationError) as bad:
        await tickets.merge(agent1, third, refund)  # out of agent1's reach: no such ticket for them
    assert "survivor" in bad.value.fields
    with pytest.raises(ValidationError) as bad:
        await tickets.merge(agent1, third, again)  # another customer
    assert "survivor" in bad.value.fields
    await tickets.merge(agent1, third, fourth)
    loser = await Ticket.select().where(Ticket.id == third).first()
    assert loser["state"] == "closed" and loser["merged_into"] == fourth
    bodies = [m["body"] for m in await Message.select(Message.body).where(Message.ticket == fourth)]
    assert "Try clearing cookies" in bodies and any("Login fails" in b for b in bodies)
    assert not await Message.exists().where(Message.ticket == third)
