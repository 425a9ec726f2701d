"""A ticket keeps copies of the customer's address (the ticket's customer_email, an inbound message's sender):
they obey the field rules crm_contacts gives the contact's own address — masked for an agent (who may reveal it,
audited) on the ticket page, its timeline and the JSON API; a service manager sees them."""

from __future__ import annotations

from typing import Any

from service_helpers import build_desk

from core.security.models import AuditLog
from core.security.sessions import create_token
from core.testing import login_client

ADDRESS = "wang.xiaoming@example.cn"


async def test_ticket_address_copies_are_masked_for_agents(crm_client: Any) -> None:
    from crm_service import tickets
    from crm_service.models import ServiceTeam

    client = await crm_client("crm_service")
    desk = await build_desk(None)
    await ServiceTeam.insert(ServiceTeam(team=desk.support, assignment="round_robin"))
    agent1 = await desk.acc("agent1")
    ticket = await tickets.create_ticket(agent1, {"subject": "Printer jam", "team": desk.support,
                                                  "customer_name": "王小明", "customer_email": ADDRESS})
    await tickets.add_message(None, ticket, "inbound", "still jammed", author_email=ADDRESS)

    await login_client(client, "agent1")
    page = await client.get(f"/service/tickets/{ticket}")
    assert page.status_code == 200 and "still jammed" in page.text
    assert ADDRESS not in page.text and "@example.cn" in page.text  # masked, not blank
    token = {"Authorization": f"Bearer {await create_token(desk.ids['agent1'], 't', roles=['service_agent'])}"}
    api = await client.get(f"/api/service/tickets/{ticket}", headers=token)
    assert api.status_code == 200 and api.json()["customer_email"] not in ("", ADDRESS), api.json()
    # the agent may still reveal it (audited), as on the contact
    acc = await desk.acc("agent1")
    from crm_service.manifest import TICKET
    from crm_service.models import Ticket

    assert await acc.reveal(Ticket, TICKET, ticket, "customer_email") == ADDRESS
    assert await AuditLog.exists().where((AuditLog.action == "reveal") & (AuditLog.record_id == str(ticket)))

    boss = {"Authorization": f"Bearer {await create_token(desk.ids['boss'], 't', roles=['service_manager'])}"}
    assert (await client.get(f"/api/service/tickets/{ticket}", headers=boss)).json()["customer_email"] == ADDRESS
