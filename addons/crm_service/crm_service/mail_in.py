"""Inbound mail → tickets: parse (mail-parser), guard against loops, thread, open or continue a ticket.

``process(raw)`` is all-or-nothing per mail: the ``InboundMail`` row (unique Message-ID), the ticket or reply it
produced, and the audit entries commit together, so a mail fetched twice is recognised and never makes a
second ticket. The mailbox code flags a message as processed only after this has committed.

Threading, in order: a Message-ID of ours named in In-Reply-To / References; then a ``[SR-000042]`` reference
in the subject, but only when the sender is that ticket's customer (a guessed or mistyped number never puts a
mail on another customer's ticket); otherwise a new ticket.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
import re
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any

import mailparser
import nh3
from piccolo.query.functions.aggregate import Count

from core import db
from core.errors import ValidationError
from core.security import audit
from crm_service import attachments, tickets
from crm_service.manifest import MAIL
from crm_service.models import InboundMail, Message, Ticket

log = logging.getLogger("crm.service.mail")
#: more mails than this from one sender within an hour are set aside: a loop with a robot that ignores headers
RATE_CAP = 30
_REF = re.compile(r"\[SR-(\d{6,9})\]")
_QUOTE_START = re.compile(r"^(On .{0,200} wrote:|在.{0,100}写道[:：]|-{2,} ?Original Message ?-{2,}"
                          r"|-{2,} ?原始邮件 ?-{2,}"
                          r"|From: .+|发件人[:：].+)\s*$", re.I)


@dataclass(frozen=True)
class Outcome:
    outcome: str  # ticket | reply | ignored | quarantined | duplicate
    ticket_id: int | None = None
    note: str = ""


def strip_quoted(text: str) -> str:
    """The new part of a reply: quoted lines (``>``) dropped, and everything from "On … wrote:" on."""
    kept: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if _QUOTE_START.match(line.strip()):
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line.rstrip())
    return "\n".join(kept).strip()


def _header(parsed: Any, name: str) -> str:
    for key, value in (parsed.headers or {}).items():
        if key.lower() == name.lower():
            return str(value)
    return ""


def is_automatic(parsed: Any, own_address: str) -> str:
    """Why this mail must not be answered (RFC 3834 Auto-Submitted, Precedence, our own address), or ''."""
    auto = _header(parsed, "Auto-Submitted").strip().lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto}"
    precedence = _header(parsed, "Precedence").strip().lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return f"Precedence: {precedence}"
    if _header(parsed, "X-Autoreply") or _header(parsed, "X-Autorespond"):
        return "X-Autoreply"
    sender = _sender(parsed)[1]
    if own_address and sender == own_address.lower():
        return "sent by this service desk (loop)"
    return ""


def _sender(parsed: Any) -> tuple[str, str]:
    pairs = parsed.from_ or []
    if not pairs:
        return "", ""
    name, address = pairs[0]
    address = parseaddr(address)[1] or address
    return (name or "").strip(), (address or "").strip().lower()


def _body(parsed: Any) -> str:
    text = "\n".join(parsed.text_plain or [])
    if not text.strip() and parsed.text_html:
        # an HTML-only mail: keep the words, never the markup (scripts, styles, tracking images)
        html = "\n".join(parsed.text_html)
        html = re.sub(r"(?is)<(script|style)\b.*?</\1\s*>", "", html)
        text = nh3.clean(re.sub(r"(?i)<br\s*/?>|</p>", "\n", html), tags=set())
        text = re.sub(r"[ \t]+", " ", text.replace("&nbsp;", " "))
    return strip_quoted(text)[: tickets.MAX_BODY]


def _files(parsed: Any) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    for att in parsed.attachments or []:
        payload = att.get("payload") or ""
        try:
            data = base64.b64decode(payload) if att.get("binary") else str(payload).encode("utf-8", "replace")
        except (ValueError, TypeError):
            data = b""
        out.append((str(att.get("filename") or "attachment"), data))
    return out


async def _store_files(ticket_id: int, message_id: int | None, files: list[tuple[str, bytes]]) -> list[str]:
    """Keep what the limits accept; a refused file becomes a note the agent sees (the mail itself is kept)."""
    notes: list[str] = []
    for name, data in files:
        try:
            await attachments.add(ticket_id, name, data, message_id=message_id)
            notes.append(f"attachment {name} received ({len(data)} bytes)")
        except ValidationError as exc:
            notes.append(str(exc.fields.get("attachment", f"attachment {name} refused")))
    return notes


def _ids(parsed: Any) -> list[str]:
    raw = f"{_header(parsed, 'In-Reply-To')} {_header(parsed, 'References')}"
    return re.findall(r"<[^<>\s]{1,298}>", raw)


async def _thread(parsed: Any, sender: str) -> int | None:
    found = await _thread_raw(parsed, sender)
    for _ in range(10):  # follow merges to the surviving ticket
        if found is None:
            return None
        row = await Ticket.select(Ticket.merged_into).where(Ticket.id == found).first()
        if row is None or not row["merged_into"]:
            return found
        found = int(row["merged_into"])
    return found


async def _thread_raw(parsed: Any, sender: str) -> int | None:
    ids = _ids(parsed)
    if ids:
        row = await Message.select(Message.ticket).where(Message.message_id.is_in(ids[-50:])).order_by(
            Message.id, ascending=False).first()
        if row is not None:
            return int(row["ticket"])
    match = _REF.search(parsed.subject or "")
    if match:
        ticket = await Ticket.select(Ticket.id, Ticket.customer_email).where(
            Ticket.id == int(match.group(1))).first()
        if ticket is not None and sender and ticket["customer_email"].lower() == sender:
            return int(ticket["id"])
    return None


async def _rate_capped(sender: str) -> bool:
    since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    rows = await InboundMail.select(Count(InboundMail.id).as_alias("n")).where(
        (InboundMail.sender == sender) & (InboundMail.created_at >= since))
    return bool(rows) and int(rows[0]["n"]) >= RATE_CAP


def message_id_of(raw: bytes, parsed: Any | None = None) -> str:
    """The mail's Message-ID, or a stable one made from its bytes (so a mail without one is still seen once)."""
    mid = str(parsed.message_id or "").strip() if parsed is not None else ""
    if mid:
        return mid[:300]
    return f"<{hashlib.sha256(raw).hexdigest()}@no-message-id.invalid>"


async def process(raw: bytes, *, own_address: str = "") -> Outcome:
    """Turn one raw mail into its outcome, committed; a mail seen before returns ``duplicate`` and changes nothing."""
    try:
        parsed = mailparser.parse_from_bytes(raw)
    except Exception as exc:  # mail-parser raises assorted errors on broken MIME: quarantine, never crash
        parsed = None
        problem = f"unreadable message: {type(exc).__name__}"
    else:
        problem = ""
    mid = message_id_of(raw, parsed)
    if await InboundMail.exists().where(InboundMail.message_id == mid):
        return Outcome("duplicate")
    name, sender = _sender(parsed) if parsed is not None else ("", "")
    subject = " ".join(str(parsed.subject or "").split())[:300] if parsed is not None else ""
    try:
        async with db.atomic():
            outcome = await _decide(parsed, problem, name, sender, subject, mid, own_address)
            await _log(mid, sender, subject, outcome)
    except Exception as exc:
        # whatever went wrong rolled the ticket back: keep the mail listed for an admin instead
        log.exception("inbound mail %s could not be processed", mid)
        if await InboundMail.exists().where(InboundMail.message_id == mid):
            return Outcome("duplicate")  # a concurrent fetcher committed it first
        outcome = Outcome("quarantined", note=f"could not be processed: {type(exc).__name__}: {exc}")
        async with db.atomic():
            await _log(mid, sender, subject, outcome)
    return outcome


async def _log(mid: str, sender: str, subject: str, outcome: Outcome) -> None:
    await InboundMail.insert(InboundMail(message_id=mid, sender=sender[:254], subject=subject,
                                         outcome=outcome.outcome, note=outcome.note[:500], ticket=outcome.ticket_id))
    await audit.record("mail_in", model=MAIL, record_id=mid[:64], detail=f"{outcome.outcome} {outcome.note}"[:500],
                       login="mailbox")


async def _decide(parsed: Any, problem: str, name: str, sender: str, subject: str, mid: str,
                  own_address: str) -> Outcome:
    if parsed is None:
        return Outcome("quarantined", note=problem)
    if not sender or "@" not in sender:
        return Outcome("quarantined", note="no sender address")
    why = is_automatic(parsed, own_address)
    if why:
        return Outcome("ignored", note=why)
    if await _rate_capped(sender):
        return Outcome("ignored", note=f"more than {RATE_CAP} mails from this sender within an hour")
    body = _body(parsed) or "(empty message)"
    warnings = ["the message is malformed; shown as far as it could be read"] if parsed.defects else []
    ticket_id = await _thread(parsed, sender)
    outcome = "reply"
    if ticket_id is not None:
        message_id = await tickets.add_message(None, ticket_id, "inbound", body, author_email=sender, message_id=mid)
    else:
        outcome = "ticket"
        ticket_id = await tickets.create_ticket(None, {
            "subject": _REF.sub("", subject).strip() or "(no subject)", "description": body, "channel": "email",
            "customer_name": name, "customer_email": sender})
        row = Message(ticket=ticket_id, kind="inbound", body=body, author_email=sender, message_id=mid)
        await row.save()
        message_id = int(row.id)
    notes = warnings + await _store_files(ticket_id, message_id, _files(parsed))
    if notes:
        await Message.update({Message.body: body + "\n\n" + "\n".join(f"[{n}]" for n in notes)}).where(
            Message.id == message_id)
    return Outcome(outcome, ticket_id, "; ".join(notes))
