"""Bounces: the delivery status notifications (DSN, RFC 3464, and the odd formats of real MTAs) that come back to
a bounce mailbox, read over IMAP and parsed with ``flufl.bounce``. A permanent failure marks the address
``bounced``: its recipient rows (the campaign's, when the report quotes our Message-ID; else the latest sent one)
and a do-not-contact entry with reason ``bounced`` (the person's too), so no later campaign or journey mails it.
Temporary failures (4.x.x, "delayed") change nothing: the MTA is still trying.

The mailbox is configured as crm_service's: ``CRM_X_MARKETING_BOUNCE_IMAP_HOST`` / ``_PORT`` / ``_USER`` /
``_PASSWORD`` / ``_FOLDER`` / ``_SSL`` (1); without a host nothing is fetched. A message is flagged \\Seen only
after its outcome committed: a crash in between reads it again, and marking is idempotent.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import re
from collections import Counter
from dataclasses import dataclass
from email.message import Message
from typing import Any

from flufl.bounce import all_failures
from piccolo.columns.combination import WhereRaw

from core import db, imap
from core.security import audit
from crm_marketing.models import CampaignRecipient, Suppression

log = logging.getLogger("crm.marketing.bounces")

#: our deterministic Message-ID (campaigns.message): the campaign and recipient a report is about
_OURS = re.compile(r"<crm-marketing-(\d+)-(\d+)@[^>]*>")


#: the bounce address's mailbox (settings ``CRM_X_MARKETING_BOUNCE_IMAP_*``)
BounceMailbox = imap.Mailbox
_login = imap.login


def configured() -> BounceMailbox | None:
    return imap.configured("CRM_X_MARKETING_BOUNCE_IMAP")


@dataclass(frozen=True)
class Report:
    permanent: frozenset[str]  # lower-cased addresses that failed for good
    temporary: frozenset[str]
    recipient_ids: frozenset[int]  # our recipients the report quotes (Message-ID of the original)


def parse(raw: bytes) -> Report:
    """What a bounce says; an ordinary mail (no failure found) gives empty sets."""
    msg: Message = email.message_from_bytes(raw, policy=email.policy.compat32)
    temporary, permanent = all_failures(msg)

    def plain(found: Any) -> frozenset[str]:
        out = set()
        for a in found:
            text = a.decode("utf-8", "replace") if isinstance(a, bytes) else str(a)
            if "@" in text:
                out.add(text.strip().strip("<>").lower())
        return frozenset(out)

    ids = frozenset(int(m.group(2)) for m in _OURS.finditer(raw.decode("utf-8", "replace")))
    return Report(plain(permanent), plain(temporary), ids)


async def record(report: Report, note: str = "bounce report") -> int:
    """Mark the permanently failed addresses bounced; how many addresses became bounced now (0 when they were
    already: a report read twice changes nothing)."""
    if not report.permanent:
        return 0
    fresh = 0
    async with db.atomic():
        for address in sorted(report.permanent):
            quoted = await CampaignRecipient.select(CampaignRecipient.id).where(
                CampaignRecipient.id.is_in(sorted(report.recipient_ids) or [0])
                & _to(address)
            )
            if not quoted:  # no quoted original: the latest message that went to that address
                quoted = (
                    await CampaignRecipient.select(CampaignRecipient.id)
                    .where((CampaignRecipient.state == "sent") & _to(address))
                    .order_by(CampaignRecipient.sent_at, ascending=False)
                    .limit(1)
                )
            ids = [int(r["id"]) for r in quoted]
            if ids:
                await CampaignRecipient.update(
                    {CampaignRecipient.state: "bounced", CampaignRecipient.error: note[:500]}
                ).where(CampaignRecipient.id.is_in(ids) & CampaignRecipient.state.is_in(["sent", "unknown"]))
            if await Suppression.exists().where(Suppression.email == address):
                continue
            person = await _person_of(address, ids)
            await Suppression.insert(Suppression(email=address, person=person, reason="bounced", note=note[:300]))
            await audit.record(
                "bounce", model="crm_marketing.suppression", detail=f"{address}: {note}"[:300],
                changes={"email": [None, address]},
            )
            fresh += 1
    return fresh


def _to(address: str) -> Any:
    # an exact comparison, not LIKE: "_" and "%" are ordinary characters of an address
    return WhereRaw('lower("crm_marketing_campaign_recipient"."email") = {}', address)


async def _person_of(address: str, recipient_ids: list[int]) -> int | None:
    where = (
        CampaignRecipient.id.is_in(recipient_ids)
        if recipient_ids
        else _to(address) & CampaignRecipient.person.is_not_null()
    )
    row = await CampaignRecipient.select(CampaignRecipient.person).where(where).first()
    return int(row["person"]) if row and row["person"] else None


def _diagnostic(raw: bytes) -> str:
    """The report's status and diagnostic code, for the recipient's error column."""
    text = raw.decode("utf-8", "replace")
    found = [m.group(0).strip() for m in re.finditer(r"(?im)^(Status|Diagnostic-Code):.*$", text)]
    return "bounced: " + "; ".join(found[:2]) if found else "bounced"


async def handle(raw: bytes) -> int:
    """One message of the bounce mailbox: parsed and recorded; how many addresses became bounced."""
    report = parse(raw)
    return await record(report, _diagnostic(raw))


def _raw(box: Any, uid: str) -> bytes:
    status, data = box.client.uid("FETCH", uid, "(BODY.PEEK[])")  # PEEK: reading it does not set \Seen
    for item in data or []:
        if isinstance(item, tuple) and len(item) == 2:
            return bytes(item[1])
    raise ValueError(f"IMAP returned no body for uid {uid} ({status})")


async def fetch_once(cfg: BounceMailbox, limit: int = 500) -> Counter[str]:
    """Read up to ``limit`` unseen messages: ``bounced`` (addresses marked), ``ignored`` (no permanent failure),
    ``retry`` (left unseen for the next fetch)."""
    from imap_tools import AND, MailMessageFlags

    counts: Counter[str] = Counter()
    box = await asyncio.to_thread(_login, cfg)
    try:
        uids = await asyncio.to_thread(box.uids, AND(seen=False))
        for uid in list(uids)[:limit]:
            try:
                marked = await handle(await asyncio.to_thread(_raw, box, uid))
            except Exception:
                log.exception("bounce uid %s left for the next fetch", uid)
                counts["retry"] += 1
                continue
            await asyncio.to_thread(box.flag, uid, MailMessageFlags.SEEN, True)
            counts["bounced" if marked else "ignored"] += max(marked, 1)
    finally:
        await asyncio.to_thread(box.logout)
    return counts


async def fetch_configured() -> Counter[str]:
    cfg = configured()
    return Counter() if cfg is None else await fetch_once(cfg)
