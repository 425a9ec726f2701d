"""Campaigns: saving (templates checked), preview, test send, schedule, and the start of a send.

Sending fixes the recipients in one ``INSERT … SELECT`` from the segment's members (people with an e-mail,
not archived, merged or anonymized, not on the do-not-contact list), then hands them to
``crm_marketing.send_batch`` jobs in id ranges of :data:`BATCH`; ``crm_marketing.sending`` does the rest.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

import aiosmtplib
from crm_contacts.api import PERSON_TABLE

from core import db, jobs
from core.errors import NotFound, PermissionDenied, ValidationError
from core.i18n import N_
from core.runtime import current
from core.security import audit
from core.security.access import Access
from crm_marketing import composer, mime, personalization
from crm_marketing.manifest import CAMPAIGN, SEGMENT
from crm_marketing.models import Campaign, CampaignRecipient, Segment

#: recipients a send job takes (a job's fixed cost — dispatch, claim, reads, its SMTP connection — is spread over
#: them; 4 jobs a worker run side by side)
BATCH = 500
TEXT_FIELDS = ("subject_en", "body_en", "subject_zh", "body_zh")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def save(acc: Access, values: dict[str, Any], campaign_id: int | None = None) -> int:
    """Create or update a draft campaign; templates checked (422 with the line), the segment must be readable."""
    await acc.require(CAMPAIGN, "update" if campaign_id else "create")
    name = str(values.get("name") or "").strip()
    if not name:
        raise ValidationError({"name": N_("is required")})
    clean: dict[str, Any] = {"name": name[:200]}
    for key in TEXT_FIELDS:
        text = str(values.get(key) or "")
        personalization.check(text, key)
        clean[key] = text
    if not (clean["subject_en"] or clean["subject_zh"]):
        raise ValidationError({"subject_en": N_("a subject in English or Chinese is required")})
    segment = values.get("segment")
    try:
        clean["segment"] = int(segment) if segment not in (None, "") else None
    except (TypeError, ValueError):
        raise ValidationError({"segment": N_("is not a segment")}) from None
    if clean["segment"] is not None and (
        not acc.can(SEGMENT) or await acc.count(Segment, SEGMENT, where=Segment.id == clean["segment"]) == 0
    ):
        raise ValidationError({"segment": N_("does not exist or is not yours to use")})
    try:
        cost = Decimal(str(values.get("cost") or "0").strip())
    except InvalidOperation:
        raise ValidationError({"cost": N_("must be a number")}) from None
    if not cost.is_finite() or cost < 0 or cost >= Decimal("1e12"):
        raise ValidationError({"cost": N_("must be a number")})
    clean["cost"] = cost.quantize(Decimal("0.01"))
    from crm_marketing import ab_test

    clean.update(ab_test.check(values))
    async with db.atomic():
        if campaign_id is None:
            rows = await Campaign.insert(Campaign(**clean))
            campaign_id = int(rows[0]["id"])
            await audit.record("create", model=CAMPAIGN, record_id=campaign_id, changes=audit.diff(None, clean))
        else:
            before = await acc.get(Campaign, CAMPAIGN, campaign_id, action="update")
            if before["state"] != "draft":
                # what was sent stays as it was sent; only the cost (for ROI) may still change
                clean = {"cost": clean["cost"]}
            await Campaign.update(
                {
                    **{Campaign._meta.get_column_by_name(k): v for k, v in clean.items()},
                    Campaign.version: Campaign.version + 1,
                }
            ).where(Campaign.id == campaign_id)
            await audit.record(
                "update",
                model=CAMPAIGN,
                record_id=campaign_id,
                changes=audit.diff({k: before[k] for k in clean}, clean),
            )
            if "cost" in clean and clean["cost"] != before["cost"]:
                from crm_marketing import returns

                await returns.set_cost(campaign_id, clean["cost"])  # the ROI dataset's rows carry it
    return campaign_id


async def _person_table() -> Any:
    from crm_marketing.segments import schema

    return (await schema()).table


async def contact_values(person_ids: list[int]) -> dict[int, dict[str, Any]]:
    """What personalization reads of each person (name, first name, company, owner, city)."""
    if not person_ids:
        return {}
    person = await _person_table()
    rows = await person.select(
        person.id,
        person.name,
        person.given_name,
        person.city,
        person.language,
        person.email,
        person.organization.name.as_alias("company"),
        person.owner.name.as_alias("owner"),
    ).where(person.id.is_in(person_ids))
    return {
        int(r["id"]): {
            "name": r["name"],
            "first_name": r["given_name"],
            "company": r["company"],
            "owner": r["owner"],
            "city": r["city"],
            "language": r["language"],
            "email": r["email"],
        }
        for r in rows
    }


async def get(acc: Access, campaign_id: int, action: str = "read") -> dict[str, Any]:
    return dict(await acc.get(Campaign, CAMPAIGN, campaign_id, action=action))


async def preview(acc: Access, campaign_id: int, person_id: int, language: str = "") -> dict[str, str]:
    """The mail as ``person_id`` would get it (links inert), read through ``acc``."""
    from crm_contacts.api import PERSON_MODEL

    campaign = await get(acc, campaign_id)
    person = await _person_table()
    await acc.get(person, PERSON_MODEL, person_id)  # 404 outside the user's reach, audited as a read
    contact = (await contact_values([person_id])).get(person_id, {})
    subject, html, text, _links = composer.compose(campaign, contact, language or contact.get("language") or "", None)
    return {"subject": subject, "html": html, "text": text}


def _smtp() -> tuple[str, int]:
    settings = current().settings
    if not settings.smtp_host:
        raise ValidationError({"smtp": N_("no SMTP server is configured (CRM_SMTP_HOST)")})
    return settings.smtp_host, settings.smtp_port


async def test_send(acc: Access, campaign_id: int, to: str, person_id: int, language: str = "") -> None:
    """One message to ``to`` (the user's own address, say) personalised with ``person_id``; no tracking."""
    from crm_contacts.api import PERSON_MODEL

    await acc.require(CAMPAIGN, "update")
    campaign = await get(acc, campaign_id)
    to = to.strip()
    if "@" not in to or len(to) > 254 or any(c.isspace() for c in to):
        raise ValidationError({"to": N_("is not an e-mail address")})
    person = await _person_table()
    await acc.get(person, PERSON_MODEL, person_id)
    contact = (await contact_values([person_id]))[person_id]
    subject, html, text, _links = composer.compose(campaign, contact, language or contact.get("language") or "", None)
    envelope = mime.Envelope(current().settings.smtp_from)
    host, port = _smtp()
    try:
        raw = envelope.build(to=to, subject=f"[TEST] {subject}", text=text, html=html)
        await aiosmtplib.send(
            raw, sender=envelope.mail_from, recipients=[to], hostname=host, port=port, timeout=30,
            mail_options=["SMTPUTF8"] if mime.needs_smtputf8(to) else None,
        )
    except (aiosmtplib.SMTPException, OSError, mime.BadHeader) as exc:
        raise ValidationError({"to": f"the SMTP server refused: {exc}"}) from None
    await audit.record("send_test", model=CAMPAIGN, record_id=campaign_id, detail=f"test to {to}")


_RECIPIENTS_SQL = (
    'INSERT INTO "crm_marketing_campaign_recipient" ("campaign", "person", "email", "language", "state", '
    '"attempts", "error") '
    'SELECT {}, p."id", p."email", p."language", \'queued\', 0, \'\' '
    'FROM "crm_marketing_segment_member" m JOIN "' + PERSON_TABLE + '" p ON p."id" = m."person" '
    'WHERE m."segment" = {} AND p."email" <> \'\' AND p."is_archived" = {} AND p."merged_into" IS NULL '
    'AND p."is_anonymized" = {} '
    # two anti-joins, not one NOT EXISTS with an OR: each can be hashed; the OR was a subplan run per member
    'AND NOT EXISTS (SELECT 1 FROM "crm_marketing_suppression" s WHERE s."email" = lower(p."email")) '
    'AND NOT EXISTS (SELECT 1 FROM "crm_marketing_suppression" s2 WHERE s2."person" = p."id") '
    'AND NOT EXISTS (SELECT 1 FROM "crm_marketing_campaign_recipient" r '
    '                WHERE r."campaign" = {} AND r."person" = p."id")'
)


async def schedule(acc: Access, campaign_id: int, at: dt.datetime | None) -> None:
    """Send the campaign at ``at`` (as ``acc``'s user, by ``crm_marketing.send_scheduled``); None unschedules."""
    await acc.require(CAMPAIGN, "update")
    _smtp()
    async with db.atomic():
        campaign = await get(acc, campaign_id, action="update")
        if campaign["state"] != "draft":
            raise ValidationError({"state": N_("this campaign was sent already")})
        if campaign["segment"] is None:
            raise ValidationError({"segment": N_("is required")})
        if at is not None and at <= _now():
            raise ValidationError({"scheduled_at": N_("must be in the future")})
        await Campaign.update(
            {
                Campaign.scheduled_at: at,
                Campaign.sent_by: acc.principal.user_id if acc.principal else None,
                Campaign.version: Campaign.version + 1,
            }
        ).where(Campaign.id == campaign_id)
        await audit.record(
            "schedule", model=CAMPAIGN, record_id=campaign_id, changes={"scheduled_at": [campaign["scheduled_at"], at]}
        )


async def send_scheduled() -> int:
    """Send every draft campaign whose time has come, as the user who scheduled it; how many were started.
    Also expires the leases of dead workers' batches (:func:`sending.expire_leases`)."""
    from crm_marketing import sending

    await sending.expire_leases()
    from core.security.access import policy
    from core.security.principal import load

    due = await Campaign.select(Campaign.id, Campaign.sent_by).where(
        (Campaign.state == "draft") & Campaign.scheduled_at.is_not_null() & (Campaign.scheduled_at <= _now())
    )
    started = 0
    for row in due:
        if row["sent_by"] is None:
            continue
        try:
            await send(Access(await load(int(row["sent_by"]), implied=policy().implied)), int(row["id"]))
        except (ValidationError, NotFound, PermissionDenied) as exc:
            # the user lost the right or the campaign its segment: unschedule it and tell them
            await Campaign.update({Campaign.scheduled_at: None}).where(Campaign.id == row["id"])
            await _tell(int(row["sent_by"]), int(row["id"]), str(exc))
            continue
        started += 1
    return started


async def _tell(user_id: int, campaign_id: int, problem: str) -> None:
    from core.hooks import Notification
    from core.i18n import gettext
    from core.notifications import notify

    await notify(
        Notification(
            user_id=user_id,
            title=gettext("A scheduled campaign could not be sent"),
            body=problem,
            url=f"/marketing/campaigns/{campaign_id}",
            kind="error",
            source="crm_marketing",
        ),
        dedup_key=f"crm_marketing.schedule:{campaign_id}:{problem[:100]}",
    )


async def send(acc: Access, campaign_id: int) -> int:
    """Fix the recipients and queue the batches; how many recipients. Sending twice queues nobody twice."""
    await acc.require(CAMPAIGN, "update")
    _smtp()
    async with db.atomic():
        campaign = await get(acc, campaign_id, action="update")
        if campaign["state"] != "draft":
            raise ValidationError({"state": N_("this campaign was sent already")})
        if campaign["segment"] is None:
            raise ValidationError({"segment": N_("is required")})
        await CampaignRecipient.raw(_RECIPIENTS_SQL, campaign_id, campaign["segment"], False, False, campaign_id)
        if campaign["ab_share"]:  # A/B test: a share gets subject A or B, the rest is held for the winner
            from crm_marketing import ab_test

            await ab_test.split(campaign_id, int(campaign["ab_share"]))
        ids = [
            int(r["id"])
            for r in await CampaignRecipient.select(CampaignRecipient.id)
            .where((CampaignRecipient.campaign == campaign_id) & (CampaignRecipient.state == "queued"))
            .order_by(CampaignRecipient.id)
        ]
        await Campaign.update(
            {
                Campaign.state: "sending",
                Campaign.sent_at: _now(),
                Campaign.scheduled_at: None,
                Campaign.sent_by: acc.principal.user_id if acc.principal else None,
                Campaign.version: Campaign.version + 1,
            }
        ).where(Campaign.id == campaign_id)
        for start in range(0, len(ids), BATCH):
            part = ids[start : start + BATCH]
            await jobs.enqueue(
                "crm_marketing.send_batch",
                dedup_key=f"campaign-{campaign_id}-{part[0]}",
                campaign_id=campaign_id,
                first_id=part[0],
                last_id=part[-1],
                index=start // BATCH,
            )
        if not ids:
            await Campaign.update({Campaign.state: "sent"}).where(Campaign.id == campaign_id)
        await audit.record("send", model=CAMPAIGN, record_id=campaign_id, detail=f"{len(ids)} recipients")
    return len(ids)
