"""Hook implementations of crm_service: the API, timelines, the contact's 360° page, merges, search, datasets,
the customer portal."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from core.hooks import (
    Dataset,
    Dimension,
    Measure,
    Panel,
    PortalCustomer,
    PortalSection,
    SearchHit,
    SearchProvider,
    TimelineEntry,
    hookimpl,
)
from core.i18n import gettext
from core.security.access import Access
from crm_service.manifest import MESSAGE, TICKET

PERSON = "crm_contacts.person"
ORGANIZATION = "crm_contacts.organization"


def _aware(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


@hookimpl
def crm_api_resources() -> Any:
    from crm_service.resources import resources

    return resources()


async def _ticket_timeline(access: Access, ticket_id: int) -> list[TimelineEntry]:
    """Every change of the ticket (its audit entries) and every message, for a user who may read it."""
    from core.security.models import AuditLog
    from crm_service.models import Message
    from crm_service.tickets import KINDS, STATES

    out: list[TimelineEntry] = []
    for a in await AuditLog.select(AuditLog.at, AuditLog.action, AuditLog.user_login, AuditLog.changes,
                                   AuditLog.detail).where(
            (AuditLog.model == TICKET) & (AuditLog.record_id == str(ticket_id))).order_by(AuditLog.id).limit(500):
        if a["action"] == "message":
            continue  # the message itself is listed below
        raw = a["changes"]
        changes = access.present_diff(TICKET, (json.loads(raw) if isinstance(raw, str) else raw) or {})
        parts = []
        for field, pair in sorted(changes.items()):
            if field == "search_text":
                continue  # derived from subject and description (an API update audits it with them)
            if isinstance(pair, list) and len(pair) == 2:
                old, new = pair
                if field == "state":
                    old, new = gettext(STATES.get(str(old), str(old))), gettext(STATES.get(str(new), str(new)))
                parts.append(f"{field}: {old if old not in (None, '') else '—'} → {new}")
        out.append(TimelineEntry(at=_aware(a["at"]), kind=a["action"], title=f"{a['action']} · {a['user_login']}",
                                 body="; ".join(parts) or a["detail"], source="crm_service"))
    for m in await Message.select(Message.created_at, Message.kind, Message.body, Message.author.name,
                                  Message.author_email).where(Message.ticket == ticket_id).limit(500):
        m = access.present(MESSAGE, m)  # a sender's address masked for whom the field rules mask it
        who = m["author.name"] or m["author_email"]
        out.append(TimelineEntry(at=_aware(m["created_at"]), kind=m["kind"],
                                 title=f"{gettext(KINDS[m['kind']])} · {who}", body=m["body"][:300],
                                 source="crm_service"))
    return out


@hookimpl
async def crm_timeline_entries(access: Access, model: str, record_id: int) -> Sequence[TimelineEntry]:
    from crm_service.models import Ticket

    if model == TICKET:
        return await _ticket_timeline(access, record_id)  # the ticket page checked the read first
    if model not in (PERSON, ORGANIZATION) or not access.can(TICKET):
        return []
    column = Ticket.person if model == PERSON else Ticket.organization
    rows = await (await access.select(Ticket, TICKET, Ticket.id, Ticket.subject, Ticket.created_at,
                                      where=column == record_id)).order_by(Ticket.id, ascending=False).limit(50)
    return [TimelineEntry(at=_aware(r["created_at"]), kind="ticket", title=gettext("Ticket: %(s)s") % {
        "s": r["subject"]}, url=f"/service/tickets/{r['id']}", source="crm_service") for r in rows]


@hookimpl
async def crm_record_panels(access: Access, model: str, record_id: int) -> Sequence[Panel]:
    from crm_service.models import Ticket

    if model not in (PERSON, ORGANIZATION) or not access.can(TICKET):
        return []
    column = Ticket.person if model == PERSON else Ticket.organization
    rows = await (await access.select(
        Ticket, TICKET, Ticket.id, Ticket.subject, Ticket.state, Ticket.priority, Ticket.first_response_breached,
        Ticket.resolution_breached, Ticket.next_response_breached, Ticket.csat,
        where=column == record_id)).order_by(Ticket.id, ascending=False).limit(20)
    from crm_service.tickets import STATES

    for r in rows:
        r["state_label"] = gettext(STATES.get(r["state"], r["state"]))
    breached = sum(1 for r in rows if r["first_response_breached"] or r["resolution_breached"]
                   or r["next_response_breached"])
    rated = [int(r["csat"]) for r in rows if r["csat"]]
    average = round(sum(rated) / len(rated), 1) if rated else None
    return [Panel(key="crm_service_tickets", title=gettext("Tickets"), template="crm_service/panel_tickets.html",
                  context={"rows": rows, "breached": breached, "csat": average}, count=len(rows), order=40)]


@hookimpl
async def crm_merge_records(model: str, survivor_id: int, loser_ids: list[int]) -> None:
    from crm_service.models import Ticket

    if model == PERSON:
        await Ticket.update({Ticket.person: survivor_id}).where(Ticket.person.is_in(loser_ids))
    elif model == ORGANIZATION:
        await Ticket.update({Ticket.organization: survivor_id}).where(Ticket.organization.is_in(loser_ids))


async def _search_tickets(access: Access, query: str, limit: int) -> list[SearchHit]:
    from crm_service import ticket_search
    from crm_service.models import Ticket
    from crm_service.tickets import reference

    match = ticket_search.where(query)
    if not access.can(TICKET) or match is None:
        return []
    rows = await (await access.select(Ticket, TICKET, Ticket.id, Ticket.subject, where=match)).order_by(
        Ticket.id, ascending=False).limit(limit)
    return [SearchHit(title=f"{reference(r['id'])} {r['subject']}", url=f"/service/tickets/{r['id']}",
                      kind="tickets") for r in rows]


async def _search_articles(access: Access, query: str, limit: int) -> list[SearchHit]:
    from crm_service import kb
    from crm_service.manifest import ARTICLE

    if not access.can(ARTICLE):
        return []
    return [SearchHit(title=a["title"], url=f"/service/articles/{a['id']}", kind="articles")
            for a in await kb.search(access, query, limit=limit)]


@hookimpl
def crm_cli_commands() -> Any:
    from crm_service.cli import service

    return [service]


@hookimpl
def crm_search_providers() -> Sequence[SearchProvider]:
    return [SearchProvider(kind="tickets", label=gettext("Tickets"), search=_search_tickets),
            SearchProvider(kind="articles", label=gettext("Knowledge base"), search=_search_articles)]


@hookimpl
def crm_datasets() -> Sequence[Dataset]:
    from crm_service.models import Ticket

    dims = (Dimension("state", gettext("State"), "state"), Dimension("priority", gettext("Priority"), "priority"),
            Dimension("channel", gettext("Channel"), "channel"), Dimension("team", gettext("Team"), "team"),
            Dimension("first_response_breached", gettext("First response breached"), "first_response_breached"),
            Dimension("resolution_breached", gettext("Resolution breached"), "resolution_breached"))
    return [Dataset(key="crm_service.tickets", label=gettext("Tickets: backlog, SLA compliance and CSAT"), model=TICKET,
                    table=Ticket, dimensions=dims,
                    measures=(Measure("count", gettext("Tickets"), "count"),
                              Measure("csat", gettext("Average customer rating"), "avg", "csat")))]


@hookimpl
async def crm_portal_sections(customer: PortalCustomer) -> Sequence[PortalSection]:
    from crm_service.models import Ticket
    from crm_service.tickets import reference

    rows = await Ticket.select(Ticket.id, Ticket.subject, Ticket.state, Ticket.updated_at).where(
        (Ticket.person == customer.person_id) & (Ticket.is_archived == False)).order_by(  # noqa: E712
        Ticket.id, ascending=False).limit(50)
    from crm_service.tickets import STATES

    for r in rows:
        r["reference"] = reference(int(r["id"]))
        r["state_label"] = gettext(STATES.get(r["state"], r["state"]))
    return [PortalSection(key="crm_service", title=gettext("Your tickets"), template="crm_service/portal.html",
                          context={"rows": rows})]
