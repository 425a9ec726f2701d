"""The ticket conversation over the JSON API: list (pages, kind filter) and create (reply, note) through the
caller's rights; internal notes only for those who work tickets, never for a portal session; masked addresses;
the OpenAPI document describes it."""

from __future__ import annotations

from typing import Any

from service_helpers import build_desk

from core.testing import csrf_of, login_client, make_user


async def test_messages_api(crm_client: Any) -> None:
    from crm_service import portal, tickets
    from crm_service.models import Message, Ticket

    client = await crm_client("crm_service")
    desk = await build_desk(None)
    agent = await desk.acc("agent1")
    ticket_id = await tickets.create_ticket(agent, {"subject": "屏幕碎了", "team": desk.support,
                                                    "customer_name": "周一", "customer_email": "zhou@example.cn"})
    billing = await tickets.create_ticket(agent, {"subject": "发票", "team": desk.billing})
    await tickets.add_message(None, ticket_id, "inbound", "还没修好", author_email="zhou@example.cn")
    await tickets.add_message(agent, ticket_id, "note", "内部备注：去年也换过")
    await make_user("auditor", "readonly")

    await login_client(client, "agent1")
    token = csrf_of((await client.get("/service/")).text)
    headers = {"X-CSRF-Token": token}
    url = f"/api/service/tickets/{ticket_id}/messages"
    listed = await client.get(url)
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert [m["kind"] for m in items] == ["inbound", "note"] and listed.json()["next"] is None
    assert items[0]["author_email"] != "zhou@example.cn"  # masked for agents by the field rules
    assert items[1]["author_name"] == "agent1" or items[1]["author"] == desk.ids["agent1"]

    made = await client.post(url, json={"kind": "reply", "body": "我们已寄出新屏幕"}, headers=headers)
    assert made.status_code == 201, made.text
    assert made.json()["kind"] == "reply" and made.json()["ticket"] == ticket_id
    row = await Ticket.select(Ticket.first_response_at, Ticket.state).where(Ticket.id == ticket_id).first()
    assert row["first_response_at"] is not None and row["state"] == "open"  # like a reply from the page
    note = await client.post(url, json={"kind": "note", "body": "已登记"}, headers=headers)
    assert note.status_code == 201

    page = await client.get(url, params={"limit": 2})
    assert len(page.json()["items"]) == 2 and page.json()["next"]
    rest = await client.get(url, params={"limit": 2, "after": page.json()["next"]})
    assert [m["body"] for m in rest.json()["items"]] == ["我们已寄出新屏幕", "已登记"]
    only_notes = await client.get(url, params={"kind": "note"})
    assert {m["kind"] for m in only_notes.json()["items"]} == {"note"}

    # bad input names the field and writes nothing
    count = await Message.count().where(Message.ticket == ticket_id)
    for bad, field in (({"kind": "inbound", "body": "x"}, "kind"), ({"kind": "reply"}, "body"),
                       ({"body": "x", "author": 1}, "author"), ({"body": "   "}, "body")):
        refused = await client.post(url, json=bad, headers=headers)
        assert refused.status_code == 422 and field in refused.json()["error"]["fields"], (bad, refused.text)
    assert (await client.get(url, params={"kind": "mail"})).status_code == 422
    assert (await client.get(url, params={"limit": "0"})).status_code == 422
    assert await Message.count().where(Message.ticket == ticket_id) == count

    # another team's ticket: 404 for reading and writing
    assert (await client.get(f"/api/service/tickets/{billing}/messages")).status_code == 404
    assert (await client.post(f"/api/service/tickets/{billing}/messages", json={"body": "x"},
                              headers=headers)).status_code == 404

    # a read-only user (reads every record, works none): the public conversation only, and may not write
    await login_client(client, "auditor")
    seen = await client.get(url)
    assert seen.status_code == 200 and [m["kind"] for m in seen.json()["items"]] == ["inbound", "reply"]
    assert (await client.get(url, params={"kind": "note"})).json()["items"] == []
    token = csrf_of((await client.get("/service/")).text)
    for kind in ("note", "reply"):
        assert (await client.post(url, json={"kind": kind, "body": "x"},
                                  headers={"X-CSRF-Token": token})).status_code == 403

    # the manager sees the address in clear; the OpenAPI document lists both operations
    await login_client(client, "boss")
    clear = await client.get(url)
    assert clear.json()["items"][0]["author_email"] == "zhou@example.cn"
    doc = (await client.get("/api/openapi.json")).json()
    path = doc["paths"]["/api/service/tickets/{id}/messages"]
    assert {"get", "post"} <= path.keys()

    # a customer's portal session is no API caller: no conversation, let alone notes
    zhou = (await Ticket.select(Ticket.person).where(Ticket.id == ticket_id).first())["person"]
    link = await portal.invite(zhou, "zhou@example.cn")
    import httpx

    customer = httpx.AsyncClient(transport=client._transport, base_url="http://testserver")
    await customer.get(link)
    await customer.post(link, data={"password": "Harbour-Lantern-93!"})
    assert (await customer.get(url)).status_code == 401
    assert "内部备注" not in (await customer.get(f"/service/public/portal/tickets/{ticket_id}")).text
    await customer.aclose()
