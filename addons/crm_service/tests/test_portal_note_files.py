"""A file an agent attaches to an internal note stays internal: the customer's portal neither lists it on their
ticket nor serves it by id, while the files of replies and the customer's own uploads stay theirs."""

from __future__ import annotations

from typing import Any

import httpx
from service_helpers import build_desk

BASE = "/service/public/portal"
PASSWORD = "Harbour-Lantern-93!"


async def test_files_of_internal_notes_never_reach_the_portal(crm_client: Any) -> None:
    from crm_service import attachments, portal, tickets
    from crm_service.models import Ticket

    staff = await crm_client("crm_service")
    desk = await build_desk(None)
    agent = await desk.acc("agent1")
    ticket = await tickets.create_ticket(agent, {"subject": "屏幕碎了", "team": desk.support,
                                                 "customer_name": "周一", "customer_email": "zhou@example.cn"})
    note = await tickets.add_message(agent, ticket, "note", "内部备注")
    reply = await tickets.add_message(agent, ticket, "reply", "请看说明")
    hidden = await attachments.add(ticket, "internal-costs.txt", b"our margin is 40%", message_id=note)
    shown = await attachments.add(ticket, "instructions.txt", b"send it back", message_id=reply)
    own = await attachments.add(ticket, "photo.txt", b"the customer's own file")  # with the ticket, no message

    person = (await Ticket.select(Ticket.person).where(Ticket.id == ticket).first())["person"]
    link = await portal.invite(person, "zhou@example.cn")
    customer = httpx.AsyncClient(transport=staff._transport, base_url="http://testserver", follow_redirects=False)
    assert (await customer.post(link, data={"password": PASSWORD})).status_code == 303

    page = await customer.get(f"{BASE}/tickets/{ticket}")
    assert page.status_code == 200
    assert "instructions.txt" in page.text and "photo.txt" in page.text and "internal-costs.txt" not in page.text
    assert (await customer.get(f"{BASE}/attachments/{hidden}")).status_code == 404
    for file_id, body in ((shown, b"send it back"), (own, b"the customer's own file")):
        got = await customer.get(f"{BASE}/attachments/{file_id}")
        assert got.status_code == 200 and got.content == body
    # the agent still has every file of the ticket
    from core.testing import login_client

    await login_client(staff, "agent1")
    assert (await staff.get(f"/service/attachments/{hidden}")).status_code == 200
    await customer.aclose()
