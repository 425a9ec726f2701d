"""A ticket's conversation over the JSON API: ``GET /api/service/tickets/{id}/messages`` (newest last, keyset
pages, ``?kind=``) and ``POST`` of a public reply or an internal note (``{"kind": "reply"|"note", "body"}``).

The ticket is reached through the caller's record rule first (404 outside it). Internal notes belong to the back
office: listed and written only for those who may work the ticket (``update`` on tickets: agents of its team,
managers); a read-only caller sees the public conversation. Customers never reach this at all: the API takes
kernel users only, and portal sessions are not kernel users (the portal shows its own view without notes).
Field rules apply to every item (``Access.present``: an agent sees a sender's address masked). A reply goes
through ``tickets.add_message``, so it is mailed, stops the SLA clock and is audited like one from the page.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from core.api import MAX_LIMIT, Collection, json_body
from core.errors import ValidationError
from core.i18n import N_
from core.keyset import Keyset
from core.security.access import Access
from crm_service.manifest import MESSAGE, TICKET
from crm_service.models import Message, Ticket

KINDS = ("inbound", "reply", "note")
WRITABLE_KINDS = ("reply", "note")
ITEM = {"type": "object", "required": ["id", "ticket", "kind", "body", "created_at"], "properties": {
    "id": {"type": "integer"}, "ticket": {"type": "integer"},
    "kind": {"type": "string", "enum": list(KINDS)}, "body": {"type": "string"},
    "author": {"type": ["integer", "null"]}, "author_name": {"type": ["string", "null"]},
    "author_email": {"type": "string"}, "created_at": {"type": "string", "format": "date-time"}}}
CREATE = {"type": "object", "required": ["body"], "additionalProperties": False, "properties": {
    "kind": {"type": "string", "enum": list(WRITABLE_KINDS), "default": "reply"},
    "body": {"type": "string", "minLength": 1, "maxLength": 100000}}}
KIND_PARAM = {"name": "kind", "in": "query", "required": False,
              "schema": {"type": "string", "enum": list(KINDS)}}
_COLUMNS = (Message.id, Message.ticket, Message.kind, Message.body, Message.author,
            Message.author.name.as_alias("author_name"), Message.author_email, Message.created_at)


def sees_notes(acc: Access) -> bool:
    return acc.can(TICKET, "update")


def _limit(raw: str) -> int:
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise ValidationError({"limit": f"must be a whole number between 1 and {MAX_LIMIT}"})
    return int(raw)


async def list_messages(request: Request, acc: Access, ticket_id: int) -> dict[str, Any]:
    await acc.require(MESSAGE, "read")
    await acc.get(Ticket, TICKET, ticket_id)
    params = request.query_params
    limit = _limit(params.get("limit", "50"))
    where: Any = Message.ticket == ticket_id
    kind = params.get("kind")
    if kind is not None:
        if kind not in KINDS:
            raise ValidationError({"kind": N_("must be one of: %(choices)s") % {"choices": ", ".join(KINDS)}})
        where = where & (Message.kind == kind)
    if not sees_notes(acc):
        where = where & (Message.kind != "note")
    keyset = Keyset(Message.id, Message.id)
    if "after" in params:
        where = where & keyset.after(params["after"])
    rows, nxt = keyset.page(await keyset.order(Message.select(*_COLUMNS).where(where)).limit(limit + 1), limit)
    return {"items": [acc.present(MESSAGE, dict(r)) for r in rows], "next": nxt}


async def create_message(request: Request, acc: Access, ticket_id: int) -> dict[str, Any]:
    from crm_service import tickets

    body = await json_body(request)
    unknown = sorted(set(body) - {"kind", "body"})
    if unknown:
        raise ValidationError({unknown[0]: N_("is not a field of a message (kind, body)")})
    kind = body.get("kind", "reply")
    if kind not in WRITABLE_KINDS:
        raise ValidationError({"kind": N_("must be one of: %(choices)s") % {"choices": ", ".join(WRITABLE_KINDS)}})
    if kind == "note" and not sees_notes(acc):
        await acc.require(TICKET, "update")  # 403, audited
    text = body.get("body")
    if not isinstance(text, str):
        raise ValidationError({"body": N_("is required")})
    message_id = await tickets.add_message(acc, ticket_id, kind, text)
    row = await Message.select(*_COLUMNS).where(Message.id == message_id).first()
    return acc.present(MESSAGE, dict(row or {}))


def collection() -> Collection:
    return Collection(read=list_messages, create=create_message, item=ITEM, create_body=CREATE,
                      params=(KIND_PARAM,), summary="The conversation of a ticket (internal notes for agents only)")
