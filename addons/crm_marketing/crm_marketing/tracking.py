"""Opens, clicks and unsubscribes coming back from the mails.

Mail security scanners fetch every link and image of a message seconds after delivery: such hits are recorded
(``is_scanner``) but never counted. A hit is a scanner's when its user agent is a known scanner's, or when it
comes within :data:`SCANNER_SECONDS` of the message being sent.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from core import db
from core.security import audit
from crm_marketing.manifest import CAMPAIGN
from crm_marketing.models import CampaignEvent, CampaignRecipient, Suppression

SCANNER_SECONDS = 10  # CRM_X_MARKETING_SCANNER_SECONDS overrides it
SCANNER_AGENTS = (
    "barracuda",
    "mimecast",
    "proofpoint",
    "safelinks",
    "microsoft office protection",
    "forcepoint",
    "trendmicro",
    "symantec",
    "messagelabs",
    "googleimageproxy-scan",
    "bot",
    "spider",
    "crawler",
    "python-requests",
    "curl/",
    "wget/",
)


def _scanner_seconds() -> float:
    from core.runtime import current

    try:
        return float(current().settings.extra.get("CRM_X_MARKETING_SCANNER_SECONDS", SCANNER_SECONDS))
    except ValueError:
        return SCANNER_SECONDS


def is_scanner(user_agent: str, sent_at: dt.datetime | None, now: dt.datetime) -> bool:
    agent = user_agent.lower()
    if not agent or any(marker in agent for marker in SCANNER_AGENTS):
        return True
    if sent_at is not None:
        sent = sent_at if sent_at.tzinfo else sent_at.replace(tzinfo=dt.UTC)
        return (now - sent).total_seconds() < _scanner_seconds()
    return False


async def recipient(recipient_id: int) -> dict[str, Any] | None:
    row = await CampaignRecipient.select().where(CampaignRecipient.id == recipient_id).first()
    return dict(row) if row else None


async def hit(recipient_id: int, kind: str, user_agent: str, url: str = "") -> bool:
    """Record an open or a click; whether it counts (False for a scanner or an unknown recipient)."""
    row = await recipient(recipient_id)
    if row is None:
        return False
    now = dt.datetime.now(dt.UTC)
    scanner = is_scanner(user_agent, row["sent_at"], now)
    await CampaignEvent.insert(
        CampaignEvent(
            campaign=row["campaign"],
            recipient=recipient_id,
            kind=kind,
            url=url[:2000],
            user_agent=user_agent[:500],
            is_scanner=scanner,
            at=now,
        )
    )
    return not scanner


async def unsubscribe(recipient_id: int, user_agent: str = "") -> bool:
    """Put the recipient's address on the do-not-contact list; False if it was already there (idempotent)."""
    row = await recipient(recipient_id)
    if row is None:
        return False
    email = row["email"].strip().lower()
    async with db.atomic():
        if await Suppression.exists().where(Suppression.email == email):
            return False
        await Suppression.insert(
            Suppression(email=email, person=row["person"], reason="unsubscribed", campaign=row["campaign"])
        )
        await CampaignEvent.insert(
            CampaignEvent(
                campaign=row["campaign"],
                recipient=recipient_id,
                kind="unsubscribe",
                user_agent=user_agent[:500],
                at=dt.datetime.now(dt.UTC),
            )
        )
        await audit.record(
            "unsubscribe", model=CAMPAIGN, record_id=row["campaign"], detail=f"recipient {recipient_id} unsubscribed"
        )
    return True


async def resubscribe(recipient_id: int, user_agent: str = "") -> bool:
    """Undo the recipient's own unsubscribe (never a do-not-contact entry made by staff, nor a bounce)."""
    row = await recipient(recipient_id)
    if row is None:
        return False
    email = row["email"].strip().lower()
    async with db.atomic():
        gone = (
            await Suppression.delete()
            .where((Suppression.email == email) & (Suppression.reason == "unsubscribed"))
            .returning(Suppression.id)
        )
        if gone:
            await audit.record(
                "resubscribe",
                model=CAMPAIGN,
                record_id=row["campaign"],
                detail=f"recipient {recipient_id} subscribed again",
            )
    return bool(gone)


async def status(recipient_id: int) -> str:
    """``subscribed``, ``unsubscribed`` (by themselves) or ``blocked`` (do-not-contact, bounced)."""
    row = await recipient(recipient_id)
    if row is None:
        return "blocked"
    found = (
        await Suppression.select(Suppression.reason).where(Suppression.email == row["email"].strip().lower()).first()
    )
    if found is None:
        return "subscribed"
    return "unsubscribed" if found["reason"] == "unsubscribed" else "blocked"
