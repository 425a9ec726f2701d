"""The SLA clock on a real ticket: business hours, pause in pending states, breach notifications (assignee and
team leader, once), a policy or calendar change recomputed from the state history; least-loaded dispatch."""

from __future__ import annotations

import datetime as dt

from service_helpers import Desk

from core.notifications import recent

CST = dt.timezone(dt.timedelta(hours=8))


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, minute, tzinfo=CST)  # 2 March 2026 is a Monday, no holiday near


async def test_sla_clock_pause_breach_and_recompute(desk: Desk) -> None:
    from crm_service import sla, tickets
    from crm_service.models import Calendar, CalendarDay, SlaPolicy, Ticket

    cal = await Calendar.select(Calendar.id).where(Calendar.key == "standard").first()
    assert cal is not None  # seeded by the addon's data
    policy = SlaPolicy(name="Support normal", team=desk.support, calendar=cal["id"], first_response_minutes=60,
                       resolution_minutes=240)
    await policy.save()
    agent1 = await desk.acc("agent1")
    ticket_id = await tickets.create_ticket(agent1, {"subject": "VPN down", "team": desk.support,
                                                     "owner": desk.ids["agent1"]}, at=at(2, 10))
    row = await Ticket.select().where(Ticket.id == ticket_id).first()
    assert row["first_response_due_at"] == at(2, 11) and row["resolution_due_at"] == at(2, 14)

    # no reply by 11:00: waiting on the customer from 11:30, the first response is breached once
    await tickets.change_state(agent1, ticket_id, "pending_customer", at=at(2, 11, 30))
    row = await Ticket.select().where(Ticket.id == ticket_id).first()
    assert row["first_response_breached"] and not row["resolution_breached"]
    assert row["resolution_due_at"] is None  # paused
    for login in ("agent1", "lead"):
        titles = [n["title"] for n in await recent(desk.ids[login])]
        assert sum("SLA" in t for t in titles) == 1, (login, titles)
    assert not [n for n in await recent(desk.ids["agent2"]) if "SLA" in n["title"]]

    # the customer answers the next morning: 1.5 h used, 2.5 h left from Tuesday 09:00
    await tickets.add_message(None, ticket_id, "inbound", "still down", author_email="c@example.com",
                              at=at(3, 9))
    row = await Ticket.select().where(Ticket.id == ticket_id).first()
    assert row["state"] == "open" and row["resolution_due_at"] == at(3, 11, 30)

    # Tuesday becomes a day off (editable table) and the target 8 h: recomputed from the history
    await CalendarDay.insert(CalendarDay(calendar=cal["id"], day=dt.date(2026, 3, 3), is_working=False))
    await SlaPolicy.update({SlaPolicy.resolution_minutes: 480}).where(SlaPolicy.id == policy.id)
    clocks = await sla.recompute(ticket_id, now=at(3, 10))
    assert clocks["resolution"].elapsed == 90 * 60
    row = await Ticket.select().where(Ticket.id == ticket_id).first()
    assert row["resolution_due_at"] == at(4, 15, 30)
    assert row["first_response_breached"]  # a breach stays a breach
    # recomputing again notifies nobody twice
    await sla.recompute(ticket_id, now=at(4, 16))
    assert sum("SLA" in n["title"] for n in await recent(desk.ids["agent1"])) == 2  # + the resolution breach


async def test_least_loaded_respects_capacity(desk: Desk) -> None:
    from crm_service import tickets
    from crm_service.models import ServiceTeam, Ticket

    await ServiceTeam.insert(ServiceTeam(team=desk.support, assignment="least_loaded", capacity=1))
    acc = await desk.acc("boss")
    first = await tickets.create_ticket(acc, {"subject": "a", "team": desk.support})
    second = await tickets.create_ticket(acc, {"subject": "b", "team": desk.support})
    third = await tickets.create_ticket(acc, {"subject": "c", "team": desk.support})
    owners = {r["id"]: r["owner"] for r in await Ticket.select(Ticket.id, Ticket.owner)}
    assert {owners[first], owners[second]} == {desk.ids["agent1"], desk.ids["agent2"]}
    assert owners[third] is None  # everyone at capacity: the ticket waits in the team's queue
    await tickets.change_state(acc, first, "resolved")
    fourth = await tickets.create_ticket(acc, {"subject": "d", "team": desk.support})
    assert (await Ticket.select(Ticket.owner).where(Ticket.id == fourth).first())["owner"] == owners[first]


async def test_next_response_warning_then_breach(desk: Desk) -> None:
    from crm_service import sla, tickets
    from crm_service.models import Calendar, SlaPolicy, Ticket

    cal = await Calendar.select(Calendar.id).where(Calendar.key == "standard").first()
    await SlaPolicy.insert(SlaPolicy(name="Chat-like", team=desk.support, calendar=cal["id"],
                                     first_response_minutes=60, next_response_minutes=30, resolution_minutes=2400,
                                     warn_minutes=20))
    agent = await desk.acc("agent1")
    ticket_id = await tickets.create_ticket(agent, {"subject": "Order status", "team": desk.support,
                                                    "owner": desk.ids["agent1"]}, at=at(2, 10))
    await tickets.add_message(agent, ticket_id, "reply", "Checking", at=at(2, 10, 20))
    await tickets.add_message(None, ticket_id, "inbound", "Any news?", author_email="c@example.com", at=at(2, 17, 50))
    row = await Ticket.select().where(Ticket.id == ticket_id).first()
    assert row["next_response_due_at"] == at(3, 9, 20)  # 10 min on Monday, 20 on Tuesday morning
    await sla.check_open_tickets(now=at(3, 9, 5))
    await sla.check_open_tickets(now=at(3, 9, 6))
    warnings = [n for n in await recent(desk.ids["agent1"]) if "SLA" in n["title"]]
    assert len(warnings) == 1  # once per deadline
    await sla.check_open_tickets(now=at(3, 9, 25))
    row = await Ticket.select().where(Ticket.id == ticket_id).first()
    assert row["next_response_breached"] and not row["first_response_breached"]
    # the reply stops that clock; a breach stays
    await tickets.add_message(agent, ticket_id, "reply", "Shipped", at=at(3, 9, 30))
    row = await Ticket.select().where(Ticket.id == ticket_id).first()
    assert row["next_response_due_at"] is None and row["next_response_breached"]
