"""The JSON API of crm_service (``core.api.Resource``): tickets (actions ``state``, ``reply``, ``note``; their
conversation at ``/api/service/tickets/{id}/messages``, ``messages_api.py``),
articles; and the setup tables, which also get settings pages under ``/settings``.

Creating a ticket goes through ``tickets.create_ticket`` (customer matching, routing, assignment, SLA), as the
web form does; a state change or a reply is a named action so the SLA clock and the mail go with it.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from core.api import Resource, json_body
from core.errors import ValidationError
from core.i18n import N_
from core.security.access import Access
from crm_service.manifest import ARTICLE, CALENDAR, CALENDAR_DAY, CANNED, RULE, SLA, TEAM, TICKET

OWNED = ("owner", "team", "is_archived", "version")
SECTION = N_("Service")
STATE_BODY = {"type": "object", "required": ["state"], "properties": {"state": {
    "type": "string", "enum": ["new", "open", "pending_customer", "pending_third_party", "resolved", "closed"]}}}
BODY = {"type": "object", "required": ["body"], "properties": {"body": {"type": "string", "minLength": 1,
                                                                        "maxLength": 100000}}}
LABELS = {
    "name": N_("Name"), "sequence": N_("Order"), "ticket_type": N_("Type"), "priority": N_("Priority"),
    "channel": N_("Channel"), "keywords": N_("Keywords"), "team": N_("Team"), "is_active": N_("Active"),
    "calendar": N_("Calendar"), "first_response_minutes": N_("First response (business minutes)"),
    "resolution_minutes": N_("Resolution (business minutes)"),
    "next_response_minutes": N_("Next response (business minutes, 0: none)"),
    "warn_minutes": N_("Warn this many minutes before"), "timezone": N_("Time zone"),
    "country": N_("Public holidays of (country code)"), "hours": N_("Working hours"), "key": N_("Key"),
    "day": N_("Day"), "is_working": N_("Working day"), "note": N_("Note"), "assignment": N_("How to assign"),
    "capacity": N_("Capacity"), "body": N_("Text"), "language": N_("Language"),
    "last_assignee": N_("Last assigned"), "version": N_("Version"), "id": "#",
    "customer_tag": N_("Customer tag"), "min_priority": N_("Raise priority to at least"), "is_vip": N_("VIP queue"),
}
PRIORITY_FLOOR = {"type": "string", "enum": ["", "low", "normal", "high", "urgent"]}


async def _create_ticket(acc: Access, values: dict[str, Any]) -> int:
    from crm_service import tickets

    values.setdefault("channel", "api")
    return await tickets.create_ticket(acc, values)


async def _state(request: Request, acc: Access, ticket_id: int) -> Any:
    from crm_service import tickets

    body = await json_body(request)
    await tickets.change_state(acc, ticket_id, str(body.get("state", "")))
    return {"id": ticket_id, "state": body["state"]}


def _message(kind: str) -> Any:
    async def run(request: Request, acc: Access, ticket_id: int) -> Any:
        from crm_service import tickets

        body = await json_body(request)
        text = body.get("body")
        if not isinstance(text, str):
            raise ValidationError({"body": N_("is required")})
        return {"id": await tickets.add_message(acc, ticket_id, kind, text)}

    return run


async def _validate_calendar(values: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from crm_service.calendars import clean_hours

    if "timezone" in values:
        try:
            ZoneInfo(str(values["timezone"]))
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationError({"timezone": N_("is not a known time zone (e.g. Asia/Shanghai)")}) from None
    if "hours" in values:
        values["hours"] = clean_hours(values["hours"])
    return values


async def _validate_tagged(values: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    """Routing rules and SLA policies: the customer tag trimmed as crm_contacts trims tags; a priority floor
    that is a priority."""
    from crm_service import tickets

    if "customer_tag" in values:
        values["customer_tag"] = " ".join(str(values["customer_tag"] or "").split())
    if values.get("min_priority") and values["min_priority"] not in tickets.PRIORITIES:
        raise ValidationError({"min_priority": N_("must be one of: %(choices)s") % {
            "choices": ", ".join(tickets.PRIORITIES)}})
    return values


async def _validate_ticket(values: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    from crm_service import ticket_search, tickets

    out = tickets.clean(values, creating=before is None)
    # a creation goes through tickets.create_ticket, which segments the words itself
    return ticket_search.refresh(out, before) if before is not None else out


async def _validate_article(values: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    from crm_service import kb

    out = kb.clean_article(values)
    merged = {**(before or {}), **out}
    out["search_text"] = kb.search_text(str(merged.get("title") or ""), str(merged.get("body") or ""))
    return out


def resources() -> list[Resource]:
    from crm_service import canned, messages_api, ticket_search
    from crm_service.models import (
        Article,
        Calendar,
        CalendarDay,
        CannedReply,
        RoutingRule,
        ServiceTeam,
        SlaPolicy,
        Ticket,
    )

    return [
        Resource(path="/service/tickets", model=TICKET, table=Ticket,
                 summary="Tickets (actions: state, reply, note)",
                 fields=("subject", "description", "person", "organization", "channel", "ticket_type", "priority",
                         "state", "tags", "customer_email", "sla_policy", "first_response_at",
                         "first_response_due_at", "next_response_due_at", "resolution_due_at",
                         "first_response_breached", "next_response_breached", "resolution_breached", "csat",
                         "escalation_of", "escalation_reason", "resolved_at", "created_at", "updated_at", *OWNED),
                 writable=("subject", "description", "person", "organization", "channel", "ticket_type", "priority",
                           "tags", "team", "owner"),
                 required=("subject",), filters=("state", "priority", "team", "owner", "person", "channel"),
                 sortable=("id", "created_at", "updated_at"), create=_create_ticket, validate=_validate_ticket,
                 archive_on_delete=True, search=ticket_search.where, search_window=ticket_search.WINDOW,
                 collections={"messages": messages_api.collection()},
                 actions={"state": _state, "reply": _message("reply"), "note": _message("note")},
                 action_bodies={"state": STATE_BODY, "reply": BODY, "note": BODY}),
        Resource(path="/service/articles", model=ARTICLE, table=Article, summary=N_("Knowledge base"),
                 fields=("title", "body", "category", "language", "is_public", "created_at", "updated_at", "version"),
                 writable=("title", "body", "category", "language", "is_public"), required=("title",),
                 filters=("category", "language", "is_public"), sortable=("id", "updated_at"),
                 validate=_validate_article,
                 field_schemas={"language": {"type": "string", "enum": ["zh_CN", "en"]}}),
        Resource(path="/service/routing-rules", settings=SECTION, model=RULE, table=RoutingRule,
                 summary=N_("Routing rules"), labels=LABELS,
                 fields=("sequence", "name", "ticket_type", "priority", "channel", "keywords", "customer_tag", "team",
                         "min_priority", "is_active", "version"),
                 writable=("sequence", "name", "ticket_type", "priority", "channel", "keywords", "customer_tag", "team",
                           "min_priority", "is_active"),
                 required=("name", "team"), filters=("team", "is_active"), sortable=("id", "sequence"),
                 validate=_validate_tagged, field_schemas={"min_priority": PRIORITY_FLOOR}),
        Resource(path="/service/teams", settings=SECTION, model=TEAM, table=ServiceTeam,
                 summary=N_("Service teams"), labels=LABELS,
                 fields=("team", "assignment", "capacity", "is_vip", "last_assignee", "version"),
                 writable=("team", "assignment", "capacity", "is_vip"), required=("team",),
                 field_schemas={"assignment": {"type": "string", "enum": ["round_robin", "least_loaded", "manual"]},
                                "capacity": {"type": "integer", "minimum": 1, "maximum": 10000}}),
        Resource(path="/service/sla-policies", settings=SECTION, model=SLA, table=SlaPolicy,
                 summary=N_("SLA policies"), labels=LABELS,
                 fields=("name", "team", "priority", "ticket_type", "customer_tag", "calendar",
                         "first_response_minutes", "next_response_minutes", "resolution_minutes", "warn_minutes",
                         "is_active", "version"),
                 writable=("name", "team", "priority", "ticket_type", "customer_tag", "calendar",
                           "first_response_minutes", "next_response_minutes", "resolution_minutes", "warn_minutes",
                           "is_active"),
                 required=("name", "calendar"), validate=_validate_tagged,
                 field_schemas={"first_response_minutes": {"type": "integer", "minimum": 1, "maximum": 525600},
                                "resolution_minutes": {"type": "integer", "minimum": 1, "maximum": 525600},
                                "next_response_minutes": {"type": "integer", "minimum": 0, "maximum": 525600},
                                "warn_minutes": {"type": "integer", "minimum": 0, "maximum": 1440}}),
        Resource(path="/service/calendars", settings=SECTION, model=CALENDAR, table=Calendar,
                 summary=N_("Business-hours calendars"), labels=LABELS,
                 fields=("key", "name", "timezone", "country", "hours", "version"),
                 writable=("name", "timezone", "country", "hours"), required=("name",),
                 validate=_validate_calendar),
        Resource(path="/service/canned-replies", settings=SECTION, model=CANNED, table=CannedReply,
                 summary=N_("Canned replies"), labels=LABELS, fields=("name", "body", "language", "version"),
                 writable=("name", "body", "language"), required=("name", "body"), validate=canned.validate,
                 field_schemas={"language": {"type": "string", "enum": ["zh_CN", "en"]}}),
        Resource(path="/service/calendar-days", settings=SECTION, model=CALENDAR_DAY, table=CalendarDay,
                 summary=N_("Extra working days and days off"), labels=LABELS,
                 fields=("calendar", "day", "is_working", "note"), writable=("calendar", "day", "is_working", "note"),
                 required=("calendar", "day"), filters=("calendar",)),
    ]
