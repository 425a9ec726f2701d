"""Tickets: open, change, move through states, converse. Every write is checked by the caller's ``Access``
(``None``: the system, e.g. the mail fetcher), audited, and followed by an SLA recomputation."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from crm_contacts import api as contacts

from core import db, hooks
from core.automation import record_changed
from core.errors import NotFound, PermissionDenied, ValidationError
from core.i18n import N_
from core.security import audit
from core.security.access import Access
from crm_service import dispatch, escalation, sla, ticket_search
from crm_service.manifest import MESSAGE, TICKET
from crm_service.models import Message, StateChange, Ticket

STATES = {"new": N_("New"), "open": N_("Open"), "pending_customer": N_("Pending customer"),
          "pending_third_party": N_("Pending third party"), "resolved": N_("Resolved"), "closed": N_("Closed")}
CHANNELS = {"email": N_("E-mail"), "portal": N_("Portal"), "web": N_("Web form"), "phone": N_("Phone"),
            "api": N_("API")}
PRIORITIES = {"low": N_("Low"), "normal": N_("Normal"), "high": N_("High"), "urgent": N_("Urgent")}
TYPES = {"question": N_("Question"), "incident": N_("Incident"), "complaint": N_("Complaint"),
         "request": N_("Request"), "return": N_("Return or exchange")}
KINDS = {"inbound": N_("Customer message"), "reply": N_("Public reply"), "note": N_("Internal note")}
#: states in which no SLA clock runs (waiting on someone else, or done)
PAUSED = frozenset({"pending_customer", "pending_third_party"})
DONE = frozenset({"resolved", "closed"})
EDITABLE = ("subject", "description", "ticket_type", "priority", "team", "owner", "tags")
MAX_BODY = 100_000


def tag_list(stored: Any) -> list[str]:
    """A ticket's tags as stored (the JSON column reads back as text on some backends)."""
    value = json.loads(stored) if isinstance(stored, str) else stored
    return [str(t) for t in value] if isinstance(value, list) else []


def reference(ticket_id: int) -> str:
    """The ticket's reference, as customers see it in subjects: ``[SR-000042]``."""
    return f"SR-{ticket_id:06d}"


def _choice(values: dict[str, Any], name: str, allowed: dict[str, str]) -> None:
    if name in values and values[name] not in allowed:
        raise ValidationError({name: N_("must be one of: %(choices)s") % {"choices": ", ".join(allowed)}})


def _tags(raw: Any) -> list[str]:
    if raw in (None, ""):
        return []
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list) or not all(isinstance(t, str) for t in items):
        raise ValidationError({"tags": N_("must be a list of words")})
    tags = sorted({" ".join(t.split())[:40] for t in items if t.strip()})
    if len(tags) > 20:
        raise ValidationError({"tags": N_("at most %(n)s tags") % {"n": 20}})
    return tags


def clean(values: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    out = dict(values)
    for name in ("subject", "description"):
        if name in out:
            out[name] = str(out[name] or "").strip()
    if creating and not out.get("subject"):
        raise ValidationError({"subject": N_("is required")})
    if "subject" in out and len(out["subject"]) > 300:
        raise ValidationError({"subject": N_("is longer than %(limit)s characters") % {"limit": 300}})
    if len(out.get("description", "")) > MAX_BODY:
        raise ValidationError({"description": N_("is longer than %(limit)s characters") % {"limit": MAX_BODY}})
    _choice(out, "channel", CHANNELS)
    _choice(out, "priority", PRIORITIES)
    _choice(out, "ticket_type", TYPES)
    if "tags" in out:
        out["tags"] = _tags(out["tags"])
    return out


async def _customer(acc: Access | None, values: dict[str, Any]) -> dict[str, Any]:
    """``person`` given (checked like a read), or matched / created from ``customer_name`` + ``customer_email``
    through crm_contacts' duplicate check."""
    name = str(values.pop("customer_name", "") or "").strip()
    email = str(values.pop("customer_email", "") or "").strip()
    phone = str(values.pop("customer_phone", "") or "").strip()
    if values.get("person"):
        if acc is not None:
            await acc.check_references(Ticket, {"person": values["person"]})
        ref = await contacts.get_contact(int(values["person"]))
    elif name or email or phone:
        ref, _ = await contacts.find_or_create_person(name=name or email.split("@")[0] or phone, email=email,
                                                      phone=phone, source="service", access=acc)
    else:
        return values
    values["person"] = ref.id
    values["customer_email"] = email or ref.email
    if ref.organization_id and not values.get("organization"):
        values["organization"] = ref.organization_id
    return values


async def create_ticket(acc: Access | None, values: dict[str, Any], *, at: dt.datetime | None = None) -> int:
    """Open a ticket; routed and assigned by the dispatch rules unless a team is given."""
    if acc is not None:
        await acc.require(TICKET, "create")
        await acc.check_write(TICKET, [k for k in values if k not in ("customer_name", "customer_email",
                                                                      "customer_phone")])
        await acc.check_references(Ticket, {k: values.get(k) for k in ("team", "owner", "organization")})
    data = ticket_search.refresh(clean(values, creating=True))
    now = at or dt.datetime.now(dt.UTC)
    async with db.atomic():
        data = await _customer(acc, data)
        if not data.get("team"):
            data["team"] = await dispatch.route(data)
        elif await dispatch.is_vip(int(data["team"])):
            data["priority"] = dispatch.at_least(data.get("priority") or "normal", dispatch.VIP_FLOOR)
        data.setdefault("state", "new")
        data["created_at"] = data["updated_at"] = now
        row = Ticket(_data={Ticket._meta.get_column_by_name(k): v for k, v in data.items()})
        await row.save()
        ticket_id = int(row.id)
        await StateChange.insert(StateChange(ticket=ticket_id, from_state="", to_state="new", at=now,
                                             user=_user(acc)))
        if not data.get("owner") and data.get("team"):
            await dispatch.assign(ticket_id, int(data["team"]))
        await audit.record("create", model=TICKET, record_id=ticket_id,
                           changes=audit.diff(None, {k: v for k, v in data.items() if k not in (
                               "created_at", "updated_at", "search_text")}))
        await escalation.check(ticket_id, now=now)
        await escalation.high_priority_complaint(ticket_id)
        await sla.recompute(ticket_id, now=now)
        await record_changed(TICKET, ticket_id, None, data)
        await hooks.publish("crm_service_ticket_created", ticket_id=ticket_id)
    return ticket_id


def _user(acc: Access | None) -> int | None:
    return acc.principal.user_id if acc is not None and acc.principal else None


async def update_ticket(acc: Access, ticket_id: int, values: dict[str, Any]) -> None:
    await acc.check_write(TICKET, values, allowed=EDITABLE)
    await acc.check_references(Ticket, {k: values.get(k) for k in ("team", "owner")})
    data = clean(values, creating=False)
    async with db.atomic():
        before = await acc.get(Ticket, TICKET, ticket_id, action="update")
        before["tags"] = tag_list(before.get("tags"))
        changes = {k: v for k, v in data.items() if before.get(k) != v}
        if changes.get("team") and await dispatch.is_vip(int(changes["team"])):
            # moved into the VIP queue: at least high, like a ticket routed there
            floor = dispatch.at_least(str(changes.get("priority", before["priority"])), dispatch.VIP_FLOOR)
            if floor != before["priority"]:
                changes["priority"] = floor
        if not changes:
            return
        words = ticket_search.refresh(changes, before).get("search_text")
        await Ticket.update({**{Ticket._meta.get_column_by_name(k): v for k, v in changes.items()},
                             **({Ticket.search_text: words} if words is not None else {}),
                             Ticket.version: Ticket.version + 1,
                             Ticket.updated_at: dt.datetime.now(dt.UTC)}).where(Ticket.id == ticket_id)
        await audit.record("update", model=TICKET, record_id=ticket_id,
                           changes=audit.diff({k: before[k] for k in changes}, changes))
        if {"priority", "ticket_type", "team"} & changes.keys():
            await sla.recompute(ticket_id)
        await record_changed(TICKET, ticket_id, before, changes)


async def change_state(acc: Access | None, ticket_id: int, state: str, *, at: dt.datetime | None = None) -> None:
    if state not in STATES:
        raise ValidationError({"state": N_("must be one of: %(choices)s") % {"choices": ", ".join(STATES)}})
    now = at or dt.datetime.now(dt.UTC)
    async with db.atomic():
        before: dict[str, Any] | None
        if acc is not None:
            before = await acc.get(Ticket, TICKET, ticket_id, action="update")
        else:
            before = await Ticket.select().where(Ticket.id == ticket_id).first()
        if before is None or before["state"] == state:
            return
        if before["state"] == "closed":
            raise ValidationError({"state": N_("a closed ticket cannot change state")})
        await StateChange.insert(StateChange(ticket=ticket_id, from_state=before["state"], to_state=state, at=now,
                                             user=_user(acc)))
        changes: dict[str, Any] = {"state": state}
        if state == "resolved":
            changes["resolved_at"] = now
        await Ticket.update({**{Ticket._meta.get_column_by_name(k): v for k, v in changes.items()},
                             Ticket.version: Ticket.version + 1, Ticket.updated_at: now}).where(
            Ticket.id == ticket_id)
        await audit.record("state", model=TICKET, record_id=ticket_id,
                           changes=audit.diff({"state": before["state"]}, {"state": state}))
        await sla.recompute(ticket_id, now=now)
        await record_changed(TICKET, ticket_id, before, changes)


async def add_message(acc: Access | None, ticket_id: int, kind: str, body: str, *, author_email: str = "",
                      message_id: str = "", at: dt.datetime | None = None) -> int:
    """A reply (mailed to the customer), an internal note (never leaves the back office) or an inbound message.

    An agent's first public reply stops the first-response clock and opens a new ticket; a customer's message
    on a ticket waiting for them, or resolved, reopens it."""
    if kind not in KINDS:
        raise ValidationError({"kind": N_("must be one of: %(choices)s") % {"choices": ", ".join(KINDS)}})
    body = (body or "").strip()
    if not body:
        raise ValidationError({"body": N_("is required")})
    if len(body) > MAX_BODY:
        raise ValidationError({"body": N_("is longer than %(limit)s characters") % {"limit": MAX_BODY}})
    now = at or dt.datetime.now(dt.UTC)
    async with db.atomic():
        ticket: dict[str, Any] | None
        if acc is not None:
            await acc.require(MESSAGE, "create")
            ticket = await acc.get(Ticket, TICKET, ticket_id, action="update")
        else:
            ticket = await Ticket.select().where(Ticket.id == ticket_id).first()
            if ticket is None:
                raise ValidationError({"ticket": N_("no such ticket")})
        row = Message(ticket=ticket_id, kind=kind, body=body, author=_user(acc), author_email=author_email[:254],
                      message_id=message_id[:300], created_at=now)
        await row.save()
        await audit.record("message", model=TICKET, record_id=ticket_id, detail=f"{kind} {row.id}")
        if kind == "reply":
            if ticket["first_response_at"] is None:
                await Ticket.update({Ticket.first_response_at: now}).where(Ticket.id == ticket_id)
            if ticket["state"] == "new":
                await change_state(acc, ticket_id, "open", at=now)
            if ticket["customer_email"]:
                from core.jobs import enqueue

                await enqueue("crm_service.send_reply", dedup_key=f"crm_service.reply.{row.id}",
                              message_id=int(row.id))
        elif kind == "inbound" and ticket["state"] in PAUSED | {"resolved"}:
            await change_state(None, ticket_id, "open", at=now)
        await Ticket.update({Ticket.updated_at: now}).where(Ticket.id == ticket_id)
        await sla.recompute(ticket_id, now=now)
    return int(row.id)


async def merge(acc: Access, loser_id: int, survivor_id: int) -> None:
    """Merge ticket ``loser_id`` into ``survivor_id``: its conversation and files move over (so replies threaded on
    its mails land on the survivor), it is closed with ``merged_into`` set, both audited. Both must be the
    user's to update and belong to the same customer."""
    from crm_service.models import Attachment

    if loser_id == survivor_id:
        raise ValidationError({"survivor": N_("a ticket cannot be merged into itself")})
    async with db.atomic():
        loser = await acc.get(Ticket, TICKET, loser_id, action="update")
        try:
            survivor = await acc.get(Ticket, TICKET, survivor_id, action="update")
        except (NotFound, PermissionDenied):
            raise ValidationError({"survivor": N_("no such ticket")}) from None
        if loser["merged_into"] or survivor["merged_into"] or survivor["state"] == "closed":
            raise ValidationError({"survivor": N_("a merged or closed ticket cannot take part in a merge")})
        if loser["person"] != survivor["person"]:
            raise ValidationError({"survivor": N_("both tickets must be of the same customer")})
        await Message.update({Message.ticket: survivor_id}).where(Message.ticket == loser_id)
        await Attachment.update({Attachment.ticket: survivor_id}).where(Attachment.ticket == loser_id)
        await Message.insert(Message(ticket=survivor_id, kind="note", author=_user(acc),
                                     body=f"{reference(loser_id)} merged here: {loser['subject']}\n\n"
                                          f"{loser['description']}"[:MAX_BODY]))
        await Ticket.update({Ticket.merged_into: survivor_id, Ticket.version: Ticket.version + 1}).where(
            Ticket.id == loser_id)
        await change_state(acc, loser_id, "closed")
        await audit.record("merge", model=TICKET, record_id=survivor_id, detail=f"{loser_id} merged into {survivor_id}",
                           changes={"merged": [None, loser_id]})
        await audit.record("merge", model=TICKET, record_id=loser_id, changes={"merged_into": [None, survivor_id]})
        await sla.recompute(survivor_id)
