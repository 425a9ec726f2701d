"""Campaigns: saving (templates checked), preview, test send, and the send itself.

Sending fixes the recipients in one ``INSERT … SELECT`` from the segment's members (people with an e-mail,
not archived, merged or anonymized, not on the do-not-contact list), then hands them to
``crm_marketing.send_batch`` jobs in id ranges of :data:`BATCH`. A batch claims its due rows with a lease (they
stay ``queued``, not due for anyone else until it runs out); each row is then moved to ``sending`` just before its
message goes out (only by the lease's holder) and to ``sent`` once the SMTP server accepted it, in the same commit
as the next row's ``sending``. A worker killed mid-batch therefore leaves its untried rows ``queued`` (the job's
next run, after the lease, sends them: none lost) and at most the one message in flight ``sending``, which becomes
``unknown`` (the server may have accepted it before the kill: never sent again, no duplicate). An SMTP refusal
puts that recipient back in the queue with a backoff (:data:`RETRY_DELAYS`) and, after the last try, marks it
``failed``; the others of the batch go on.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import css_inline
import lxml.html
from crm_contacts.api import PERSON_TABLE

from core import db, jobs
from core.errors import NotFound, PermissionDenied, RetryLater, ValidationError
from core.i18n import N_
from core.runtime import current
from core.security import audit
from core.security.access import Access
from crm_marketing import personalization, tokens
from crm_marketing.manifest import CAMPAIGN, SEGMENT
from crm_marketing.models import Campaign, CampaignRecipient, Segment

BATCH = 200
#: a batch's claim on its recipients; past it, untried rows are due again (for the job's next run; a slow run
#: still going then finds them taken and skips them) and a row still ``sending`` is marked ``unknown``
LEASE_SECONDS = 60
#: the send job's own lease (the outbox heartbeat): a killed worker's batch is run again about this long after
JOB_LEASE_SECONDS = 20
#: seconds before the 2nd, 3rd… try of a recipient the SMTP server refused; after the last, it is failed
RETRY_DELAYS: tuple[float, ...] = (30.0, 120.0, 600.0)
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


def _pick(campaign: dict[str, Any], language: str) -> tuple[str, str]:
    zh = language.startswith("zh")
    first, second = ("zh", "en") if zh else ("en", "zh")
    for lang in (first, second):
        if campaign[f"subject_{lang}"]:
            return campaign[f"subject_{lang}"], campaign[f"body_{lang}"]
    return "", ""


def compose(
    campaign: dict[str, Any], contact: dict[str, Any], language: str, recipient_id: int | None
) -> tuple[str, str, str, dict[str, str]]:
    """(subject, html, text, links) for one contact; tracking links only for a real recipient."""
    links = (
        tokens.links(recipient_id)
        if recipient_id is not None
        else {"unsubscribe_url": "#", "preferences_url": "#", "open_url": ""}
    )
    values = personalization.context(contact, campaign, language, links)
    subject_src, body_src = _pick(campaign, language)
    subject = " ".join(personalization.render(subject_src, values, html=False).split())
    body = personalization.render(body_src, values, html=True) or "<p></p>"
    doc = lxml.html.fragment_fromstring(body, create_parent="div")
    text = doc.text_content().strip()
    if recipient_id is not None:
        for anchor in doc.iter("a"):
            href = anchor.get("href") or ""
            if href.startswith(("http://", "https://")) and href not in (
                links["unsubscribe_url"],
                links["preferences_url"],
            ):
                anchor.set("href", tokens.click_url(recipient_id, href))
    footer = lxml.html.fragment_fromstring('<p class="unsubscribe"><a href="">unsubscribe</a></p>')
    link = footer.find("a")
    assert link is not None
    link.set("href", links["unsubscribe_url"])
    link.text = "退订" if language.startswith("zh") else "Unsubscribe"
    prefs = lxml.html.fragment_fromstring("<a></a>")
    prefs.set("href", links["preferences_url"])
    prefs.text = "邮件偏好" if language.startswith("zh") else "E-mail preferences"
    link.tail = " · "
    footer.append(prefs)
    doc.append(footer)
    if links["open_url"]:
        pixel = lxml.html.fragment_fromstring('<img alt="" width="1" height="1">')
        pixel.set("src", links["open_url"])
        doc.append(pixel)
    html = lxml.html.tostring(doc, encoding="unicode")
    page = (
        "<html><head><style>body{font-family:sans-serif;color:#222}"
        "p.unsubscribe{font-size:12px;color:#888}</style></head><body>" + html + "</body></html>"
    )
    text += f"\n\n{link.text}: {links['unsubscribe_url']}\n{prefs.text}: {links['preferences_url']}"
    return subject, css_inline.inline(page), text, links


def message(
    campaign: dict[str, Any], contact: dict[str, Any], to: str, language: str, recipient_id: int | None
) -> EmailMessage:
    settings = current().settings
    subject, html, text, links = compose(campaign, contact, language, recipient_id)
    msg = EmailMessage()
    msg["From"] = settings.smtp_from
    msg["To"] = to
    msg["Subject"] = subject
    domain = settings.smtp_from.rpartition("@")[2] or "crm"
    if recipient_id is not None:
        # the same id on every try: a receiver (or the bench's sink) sees a replay as the same message
        msg["Message-ID"] = f"<crm-marketing-{campaign['id']}-{recipient_id}@{domain}>"
        msg["List-Unsubscribe"] = f"<{links['unsubscribe_url']}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"  # RFC 8058 one-click
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    return msg


async def get(acc: Access, campaign_id: int, action: str = "read") -> dict[str, Any]:
    return dict(await acc.get(Campaign, CAMPAIGN, campaign_id, action=action))


async def preview(acc: Access, campaign_id: int, person_id: int, language: str = "") -> dict[str, str]:
    """The mail as ``person_id`` would get it (links inert), read through ``acc``."""
    from crm_contacts.api import PERSON_MODEL

    campaign = await get(acc, campaign_id)
    person = await _person_table()
    await acc.get(person, PERSON_MODEL, person_id)  # 404 outside the user's reach, audited as a read
    contact = (await contact_values([person_id])).get(person_id, {})
    subject, html, text, _links = compose(campaign, contact, language or contact.get("language") or "", None)
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
    msg = message(campaign, contact, to, language or contact.get("language") or "", None)
    msg.replace_header("Subject", f"[TEST] {msg['Subject']}")
    host, port = _smtp()
    try:
        await aiosmtplib.send(msg, hostname=host, port=port, timeout=30)
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise ValidationError({"to": f"the SMTP server refused: {exc}"}) from None
    await audit.record("send_test", model=CAMPAIGN, record_id=campaign_id, detail=f"test to {to}")


_RECIPIENTS_SQL = (
    'INSERT INTO "crm_marketing_campaign_recipient" ("campaign", "person", "email", "language", "state", '
    '"attempts", "error") '
    'SELECT {}, p."id", p."email", p."language", \'queued\', 0, \'\' '
    'FROM "crm_marketing_segment_member" m JOIN "' + PERSON_TABLE + '" p ON p."id" = m."person" '
    'WHERE m."segment" = {} AND p."email" <> \'\' AND p."is_archived" = {} AND p."merged_into" IS NULL '
    'AND p."is_anonymized" = {} '
    'AND NOT EXISTS (SELECT 1 FROM "crm_marketing_suppression" s '
    '                WHERE s."email" = lower(p."email") OR s."person" = p."id") '
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


async def expire_leases() -> int:
    """Rows a dead worker left ``sending`` past their lease become ``unknown``: maybe delivered, so never sent
    again (no duplicate); shown on the campaign page. Campaigns with nothing else pending are finished."""
    rows = (
        await CampaignRecipient.update(
            {
                CampaignRecipient.state: "unknown",
                CampaignRecipient.error: "the worker stopped during the send: it may or may not have been delivered",
            }
        )
        .where((CampaignRecipient.state == "sending") & (CampaignRecipient.next_try_at < _now()))
        .returning(CampaignRecipient.campaign)
    )
    for campaign_id in {int(r["campaign"]) for r in rows}:
        left = await CampaignRecipient.count().where(
            (CampaignRecipient.campaign == campaign_id) & CampaignRecipient.state.is_in(["queued", "sending"])
        )
        if not left:
            await Campaign.update({Campaign.state: "sent"}).where(
                (Campaign.id == campaign_id) & (Campaign.state == "sending")
            )
    return len(rows)


async def send_scheduled() -> int:
    """Send every draft campaign whose time has come, as the user who scheduled it; how many were started.
    Also expires the leases of dead workers' batches (:func:`expire_leases`)."""
    await expire_leases()
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


async def _suppressed_to_skipped(campaign_id: int, first_id: int, last_id: int) -> None:
    """Someone unsubscribed between queueing and sending: never mail them."""
    await CampaignRecipient.raw(
        'UPDATE "crm_marketing_campaign_recipient" SET "state" = \'skipped\' '
        'WHERE "campaign" = {} AND "id" BETWEEN {} AND {} AND "state" = \'queued\' '
        'AND EXISTS (SELECT 1 FROM "crm_marketing_suppression" s '
        'WHERE s."email" = lower("crm_marketing_campaign_recipient"."email") '
        'OR s."person" = "crm_marketing_campaign_recipient"."person")',
        campaign_id,
        first_id,
        last_id,
    )


def per_minute() -> int:
    """Messages a minute one campaign may send (``CRM_X_MARKETING_PER_MINUTE``; 0 or unset: no limit)."""
    try:
        return max(0, int(current().settings.extra.get("CRM_X_MARKETING_PER_MINUTE", "0")))
    except ValueError:
        return 0


def not_before(sent_at: dt.datetime | None, index: int) -> dt.datetime | None:
    """When batch ``index`` of a campaign sent at ``sent_at`` may start under the throttle (None: now)."""
    rate = per_minute()
    if not rate or sent_at is None or index <= 0:
        return None
    start = sent_at if sent_at.tzinfo else sent_at.replace(tzinfo=dt.UTC)
    return start + dt.timedelta(minutes=index * BATCH / rate)


async def send_batch(campaign_id: int, first_id: int, last_id: int, index: int = 0) -> dict[str, int]:
    """Send the queued recipients ``first_id``…``last_id`` of a campaign (the actor's work); counts by outcome.
    Batch ``index`` waits its turn under the throttle (``RetryLater``, which uses up no attempt)."""
    await db.ensure_loop_pool()  # a connection a message otherwise: the batch commits once a message
    campaign = await Campaign.select().where(Campaign.id == campaign_id).first()
    if campaign is None:
        return {}
    due_at = not_before(campaign["sent_at"], index)
    if due_at is not None and due_at > _now():
        raise RetryLater(f"campaign {campaign_id} batch {index} is throttled", delay=(due_at - _now()).total_seconds())
    await _suppressed_to_skipped(campaign_id, first_id, last_id)
    in_batch = (
        (CampaignRecipient.campaign == campaign_id)
        & (CampaignRecipient.id >= first_id)
        & (CampaignRecipient.id <= last_id)
    )
    from core.outbox import heartbeat

    async with heartbeat(JOB_LEASE_SECONDS):
        counts = await _send_due(campaign, in_batch)
    waiting = (
        await CampaignRecipient.select(CampaignRecipient.next_try_at)
        .where(in_batch & (CampaignRecipient.state == "queued"))
        .order_by(CampaignRecipient.next_try_at)
    )
    if waiting:
        soonest = waiting[0]["next_try_at"]
        delay = max(0.0, (soonest - _now()).total_seconds()) if soonest else 0.0
        raise RetryLater(f"{len(waiting)} recipients of campaign {campaign_id} wait for a retry", delay=delay)
    left = await CampaignRecipient.count().where(
        (CampaignRecipient.campaign == campaign_id) & CampaignRecipient.state.is_in(["queued", "sending", "held"])
    )
    if not left:
        finished = (
            await Campaign.update({Campaign.state: "sent"})
            .where((Campaign.id == campaign_id) & (Campaign.state == "sending"))
            .returning(Campaign.sent_by)
        )
        if finished:  # this run finished the campaign: tell who sent it about recipients that failed for good
            await _tell_failures(campaign, finished[0]["sent_by"])
    return counts


async def _expire_in_flight(where: Any) -> None:
    """Rows a dead run left ``sending`` past its lease: that one message may have been accepted, so ``unknown``."""
    await CampaignRecipient.update(
        {
            CampaignRecipient.state: "unknown",
            CampaignRecipient.error: "the worker stopped during the send: it may or may not have been delivered",
        }
    ).where(where & (CampaignRecipient.state == "sending") & (CampaignRecipient.next_try_at < _now()))


async def _advance(done: int | None, row_id: int | None, lease: dt.datetime) -> int | None:
    """In one commit: ``done`` sent (the SMTP server accepted it) and ``row_id`` ``sending`` if this run still
    holds it (its lease is ``lease``); the row's attempts, or None when a later run took it over."""
    attempts = None
    async with db.atomic():
        if db.is_postgres():
            # no WAL flush wait for this commit (one a message: the flush was the cost of the send). It is visible
            # to every other worker at once and survives a killed worker; only a PostgreSQL crash within a fraction
            # of a second of it could lose it, and then the row is sent again (a duplicate, never a loss)
            await CampaignRecipient.raw("SET LOCAL synchronous_commit TO OFF")
        if done is not None:
            await CampaignRecipient.update(
                {CampaignRecipient.state: "sent", CampaignRecipient.sent_at: _now(), CampaignRecipient.error: ""}
            ).where((CampaignRecipient.id == done) & CampaignRecipient.state.is_in(["sending", "unknown"]))
        if row_id is not None:
            rows = (
                await CampaignRecipient.update(
                    {
                        CampaignRecipient.state: "sending",
                        CampaignRecipient.attempts: CampaignRecipient.attempts + 1,
                        CampaignRecipient.next_try_at: lease,
                    }
                )
                .where(
                    (CampaignRecipient.id == row_id)
                    & (CampaignRecipient.state == "queued")
                    & (CampaignRecipient.next_try_at == lease)
                )
                .returning(CampaignRecipient.attempts)
            )
            attempts = int(rows[0]["attempts"]) if rows else None
    return attempts


async def _send_due(campaign: dict[str, Any], in_batch: Any) -> dict[str, int]:
    await _expire_in_flight(in_batch)
    now = _now()
    # the claim: the due rows stay queued but are not due for anyone else before the lease runs out, so a second
    # run of the batch (a retry, a duplicate message) mails none of them, and a killed run's untried rows are
    # due again afterwards
    lease = now + dt.timedelta(seconds=LEASE_SECONDS)
    claimed = {
        int(r["id"])
        for r in await CampaignRecipient.update({CampaignRecipient.next_try_at: lease})
        .where(
            in_batch
            & (CampaignRecipient.state == "queued")
            & (CampaignRecipient.next_try_at.is_null() | (CampaignRecipient.next_try_at <= now))
        )
        .returning(CampaignRecipient.id)
    }
    due = (
        await CampaignRecipient.select()
        .where(CampaignRecipient.id.is_in(sorted(claimed) or [0]))
        .order_by(CampaignRecipient.id)
    )
    from crm_marketing import ab_test

    contacts = await contact_values([int(r["person"]) for r in due if r["person"]])
    counts = {"sent": 0, "retry": 0, "failed": 0}
    smtp: aiosmtplib.SMTP | None = None
    host, port = current().settings.smtp_host or "", current().settings.smtp_port
    accepted: int | None = None  # accepted by the server, its sent mark goes with the next row's claim
    try:
        for row in due:
            contact = contacts.get(int(row["person"] or 0), {})
            texts = ab_test.variant_texts(campaign, row["variant"]) if row["variant"] else campaign
            # rendered before the row is marked sending: a kill while rendering leaves it queued, not in doubt
            mail = message(dict(texts), contact, row["email"], row["language"], int(row["id"]))
            attempts = await _advance(accepted, int(row["id"]), lease)
            accepted = None
            if attempts is None:
                continue  # our lease ran out and a later run of the batch has it
            try:
                if not host:
                    raise aiosmtplib.SMTPException("no SMTP server is configured (CRM_SMTP_HOST)")
                if smtp is None or not smtp.is_connected:
                    smtp = aiosmtplib.SMTP(hostname=host, port=port, timeout=30)
                    await smtp.connect()
                await smtp.send_message(mail)
            except (aiosmtplib.SMTPException, OSError) as exc:
                if smtp is not None and not isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
                    smtp.close()
                    smtp = None
                last = attempts > len(RETRY_DELAYS)
                delay = 0.0 if last else RETRY_DELAYS[attempts - 1]
                await CampaignRecipient.update(
                    {
                        CampaignRecipient.state: "failed" if last else "queued",
                        CampaignRecipient.error: str(exc)[:1000],
                        CampaignRecipient.next_try_at: None if last else _now() + dt.timedelta(seconds=delay),
                    }
                ).where(CampaignRecipient.id == row["id"])
                counts["failed" if last else "retry"] += 1
                continue
            accepted = int(row["id"])
            counts["sent"] += 1
    finally:
        if accepted is not None:
            await _advance(accepted, None, lease)
        if smtp is not None and smtp.is_connected:
            try:
                await smtp.quit()
            except (aiosmtplib.SMTPException, OSError):
                smtp.close()
    return counts


async def _tell_failures(campaign: dict[str, Any], user_id: int | None) -> None:
    from core.hooks import Notification
    from core.i18n import gettext
    from core.notifications import notify

    failed = await CampaignRecipient.count().where(
        (CampaignRecipient.campaign == campaign["id"]) & (CampaignRecipient.state == "failed")
    )
    if not failed or not user_id:
        return
    title = gettext("Campaign %(name)s: %(count)s recipients could not be mailed") % {
        "name": campaign["name"],
        "count": failed,
    }
    await notify(
        Notification(
            user_id=int(user_id),
            title=title,
            url=f"/marketing/campaigns/{campaign['id']}",
            kind="error",
            source="crm_marketing",
        ),
        dedup_key=f"crm_marketing.failed:{campaign['id']}",
    )
