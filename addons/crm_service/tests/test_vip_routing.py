"""Routing and SLA by a customer tag (crm_contacts' tags), the VIP queue: a VIP customer's ticket goes to the
VIP team at least high, gets the VIP policy, is audited; others are untouched; the list filters the queue."""

from __future__ import annotations

from typing import Any

from service_helpers import build_desk

from core.security.models import AuditLog
from core.testing import csrf_of, login_client


async def _tag(person_id: int, name: str) -> None:
    from crm_contacts.models import PersonTag, Tag

    tag = Tag(name=name)
    await tag.save()
    await PersonTag.insert(PersonTag(person=person_id, tag=tag.id))


async def test_vip_customer_routed_raised_and_timed(crm_client: Any) -> None:
    from crm_contacts import api as contacts
    from crm_service import tickets
    from crm_service.models import Calendar, RoutingRule, ServiceTeam, SlaPolicy, Ticket

    client = await crm_client("crm_service")
    desk = await build_desk(None)
    vip_person, _ = await contacts.find_or_create_person(name="李总", email="li@example.cn")
    await _tag(vip_person.id, "VIP")
    await ServiceTeam.insert(ServiceTeam(team=desk.billing, is_vip=True))
    await RoutingRule.insert(
        RoutingRule(sequence=1, name="VIP customers", customer_tag="vip", team=desk.billing, min_priority="normal"),
        RoutingRule(sequence=10, name="Everything else", team=desk.support))
    cal = await Calendar.select(Calendar.id).where(Calendar.key == "standard").first()
    await SlaPolicy.insert(
        SlaPolicy(name="Everyone", calendar=cal["id"], first_response_minutes=240),
        SlaPolicy(name="VIP", customer_tag="VIP", calendar=cal["id"], first_response_minutes=30))
    agent = await desk.acc("agent1")

    vip = await tickets.create_ticket(agent, {"subject": "发票抬头错误", "priority": "low",
                                              "customer_email": "li@example.cn", "customer_name": "李总"})
    plain = await tickets.create_ticket(agent, {"subject": "发票抬头错误", "priority": "low",
                                                "customer_email": "wang@example.cn", "customer_name": "王"})
    rows = {r["id"]: r for r in await Ticket.select(Ticket.id, Ticket.team, Ticket.priority, Ticket.owner,
                                                    Ticket.sla_policy.name).where(Ticket.id.is_in([vip, plain]))}
    # the VIP rule matched on the tag (case-folded); the VIP queue's floor beats the rule's "normal"
    assert rows[vip]["team"] == desk.billing and rows[vip]["priority"] == "high"
    assert rows[vip]["owner"] == desk.ids["agent3"] and rows[vip]["sla_policy.name"] == "VIP"
    assert rows[plain]["team"] == desk.support and rows[plain]["priority"] == "low"
    assert rows[plain]["sla_policy.name"] != "VIP"  # the seeded default policy, the oldest of equals
    routed = await AuditLog.select(AuditLog.detail).where(AuditLog.action == "route").order_by(AuditLog.id)
    assert any("VIP customers" in r["detail"] and "low -> high" in r["detail"] for r in routed)

    # moving a ticket into the VIP queue by hand raises it too
    boss = await desk.acc("boss")
    await tickets.update_ticket(boss, plain, {"team": desk.billing})
    assert (await Ticket.select(Ticket.priority).where(Ticket.id == plain).first())["priority"] == "high"

    # the list's VIP queue filter (the manager sees every team)
    await login_client(client, "boss")
    page = await client.get("/service/", params={"queue": "vip"})
    assert page.status_code == 200 and f"SR-{vip:06d}" in page.text
    other = await tickets.create_ticket(boss, {"subject": "Printer", "team": desk.support})
    page = await client.get("/service/", params={"queue": "vip"})
    assert f"SR-{other:06d}" not in page.text

    # a rule's floor that is no priority is refused naming the field
    token = csrf_of((await client.get("/service/")).text)
    bad = await client.post("/api/service/routing-rules", json={"name": "x", "team": desk.support,
                                                               "min_priority": "asap"},
                            headers={"X-CSRF-Token": token})
    assert bad.status_code == 422 and "min_priority" in bad.json()["error"]["fields"]
