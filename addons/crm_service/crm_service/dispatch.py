"""Dispatch: ordered routing rules pick a ticket's team; the team's mode picks the agent. Both audited.

A rule may ask for a tag of the customer (crm_contacts' tags, e.g. "VIP") and raise the priority of what it
matches to at least a level; a team flagged VIP is the VIP queue: whatever lands in it is at least high.
"""

from __future__ import annotations

from typing import Any

from crm_contacts import api as contacts
from piccolo.query.functions.aggregate import Count

from core.security import audit
from core.security.models import TeamMember, User
from crm_service.manifest import TICKET
from crm_service.models import RoutingRule, ServiceTeam, Ticket

OPEN_STATES = ("new", "open", "pending_customer", "pending_third_party")
LEVELS = ("low", "normal", "high", "urgent")
VIP_FLOOR = "high"


async def customer_tags(ticket: dict[str, Any]) -> frozenset[str]:
    """The tags of the ticket's customer (person), case-folded; read through crm_contacts' API."""
    if not ticket.get("person"):
        return frozenset()
    return frozenset(t.casefold() for t in await contacts.person_tags(int(ticket["person"])))


def at_least(priority: str, floor: str) -> str:
    """``priority`` raised to ``floor`` when below it (an unknown value counts as normal)."""
    if floor not in LEVELS:
        return priority
    mine = LEVELS.index(priority) if priority in LEVELS else 1
    return floor if LEVELS.index(floor) > mine else priority


def matches(rule: dict[str, Any], ticket: dict[str, Any], tags: frozenset[str] = frozenset()) -> bool:
    for column, field in (("ticket_type", "ticket_type"), ("priority", "priority"), ("channel", "channel")):
        if rule[column] and rule[column] != ticket.get(field, ""):
            return False
    if rule.get("customer_tag") and rule["customer_tag"].strip().casefold() not in tags:
        return False
    words = [w.strip().lower() for w in (rule["keywords"] or "").split(",") if w.strip()]
    if words:
        text = f"{ticket.get('subject', '')} {ticket.get('description', '')}".lower()
        if not any(w in text for w in words):
            return False
    return True


async def route(ticket: dict[str, Any]) -> int | None:
    """The team of the first active rule (by sequence, then id) the ticket matches; the rule's ``min_priority``
    (and a VIP team's floor) raise ``ticket["priority"]`` in place. Audited with the rule and the raise."""
    rules = await RoutingRule.select().where(RoutingRule.is_active == True).order_by(  # noqa: E712
        RoutingRule.sequence).order_by(RoutingRule.id)
    tags = await customer_tags(ticket) if any(r["customer_tag"] for r in rules) else frozenset()
    for rule in rules:
        if matches(rule, ticket, tags):
            before = ticket.get("priority") or "normal"
            ticket["priority"] = at_least(before, rule["min_priority"])
            if await is_vip(int(rule["team"])):
                ticket["priority"] = at_least(ticket["priority"], VIP_FLOOR)
            raised = f", priority {before} -> {ticket['priority']}" if ticket["priority"] != before else ""
            await audit.record("route", model=TICKET,
                               detail=f"rule {rule['id']} {rule['name']} -> team {rule['team']}{raised}")
            return int(rule["team"])
    return None


async def is_vip(team_id: int) -> bool:
    return bool(await ServiceTeam.exists().where((ServiceTeam.team == team_id) & (ServiceTeam.is_vip == True)))  # noqa: E712


def vip_teams() -> Any:
    """A sub-select of the VIP queues' team ids (for ``Ticket.team.is_in``)."""
    return ServiceTeam.select(ServiceTeam.team).where(ServiceTeam.is_vip == True)  # noqa: E712


async def _members(team_id: int) -> list[int]:
    rows = await TeamMember.select(TeamMember.user).where(
        (TeamMember.team == team_id) & TeamMember.user.is_in(
            User.select(User.id).where(User.is_active == True))).order_by(TeamMember.user)  # noqa: E712
    return [int(r["user"]) for r in rows]


async def assign(ticket_id: int, team_id: int) -> int | None:
    """Give the ticket to an agent of ``team_id``: round-robin (the member after the last one served) or
    least-loaded (fewest open tickets, below the team's capacity). Returns the agent, or None (manual mode,
    empty team, everyone at capacity: the ticket waits in the team's queue)."""
    settings = await ServiceTeam.select().where(ServiceTeam.team == team_id).first()
    mode = settings["assignment"] if settings else "round_robin"
    members = await _members(team_id)
    if mode == "manual" or not members:
        return None
    chosen: int | None = None
    if mode == "least_loaded":
        loads = {m: 0 for m in members}
        rows = await Ticket.select(Ticket.owner, Count(Ticket.id).as_alias("n")).where(
            Ticket.owner.is_in(members) & Ticket.state.is_in(list(OPEN_STATES))).group_by(Ticket.owner)
        for r in rows:
            loads[int(r["owner"])] = int(r["n"])
        capacity = settings["capacity"] if settings else 20
        free = [m for m in members if loads[m] < capacity]
        chosen = min(free, key=lambda m: (loads[m], m)) if free else None
    else:
        last = settings["last_assignee"] if settings else None
        later = [m for m in members if last is not None and m > last]
        chosen = later[0] if later else members[0]
        if settings:
            await ServiceTeam.update({ServiceTeam.last_assignee: chosen}).where(ServiceTeam.id == settings["id"])
        else:
            await ServiceTeam.insert(ServiceTeam(team=team_id, last_assignee=chosen))
    if chosen is not None:
        await Ticket.update({Ticket.owner: chosen}).where(Ticket.id == ticket_id)
        await audit.record("assign", model=TICKET, record_id=ticket_id, changes={"owner": [None, chosen]},
                           detail=f"{mode} in team {team_id}")
    return chosen
