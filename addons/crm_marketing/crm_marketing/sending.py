"""A campaign's batches going out: ``crm_marketing.send_batch`` jobs, each over a range of recipient ids.

A run claims its due rows with a lease (they stay ``queued``, not due for anyone else until it runs out). Per
recipient, in this order: its mail is composed (:class:`composer.Compiled`, once per text and language) and
encoded (:mod:`mime`); the SMTP envelope (``MAIL FROM``, ``RCPT TO``) goes over the run's one connection; the row
is marked ``sending`` — only by the lease's holder, in the same commit as the previous row's ``sent``
(:class:`send_marks.Marks`) — and only then the content. A worker killed mid-batch therefore leaves its untried
rows ``queued`` (the next run, after the lease, sends them: none lost) and at most the one message whose content
was on its way ``sending``, which becomes ``unknown`` (the server may have taken it: never sent again, no
duplicate; shown on the campaign page). With the envelope first, the window in which a kill loses a message
(marked, content not yet sent) is one SMTP round trip (``DATA``); a kill after the content was sent leaves a
delivered message ``unknown``. An SMTP refusal puts that recipient back in the queue with a backoff
(:data:`RETRY_DELAYS`) and, after the last try, marks it ``failed``; the others of the batch go on.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import aiosmtplib

from core import db
from core.errors import RetryLater
from core.runtime import current
from crm_marketing import ab_test, campaigns, composer, mime, smtp_data
from crm_marketing.models import Campaign, CampaignRecipient
from crm_marketing.send_marks import Marks

#: a batch's claim on its recipients; past it, untried rows are due again (for the job's next run; a slow run
#: still going then finds them taken and skips them: the marks are fenced by the claim) and a row still ``sending``
#: is marked ``unknown``. As long as the job's lease, so a killed worker's batch goes on as soon as it is sent again
#: (was 60 s: ~40 s of idle tail after each kill)
LEASE_SECONDS = 20
#: the send job's own lease (the outbox heartbeat): a killed worker's batch is run again about this long after
JOB_LEASE_SECONDS = 20
#: seconds before the 2nd, 3rd… try of a recipient the SMTP server refused; after the last, it is failed
RETRY_DELAYS: tuple[float, ...] = (30.0, 120.0, 600.0)
IN_DOUBT = "the worker stopped during the send: it may or may not have been delivered"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


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
    return start + dt.timedelta(minutes=index * campaigns.BATCH / rate)


async def expire_leases() -> int:
    """Rows a dead worker left ``sending`` past their lease become ``unknown``: maybe delivered, so never sent
    again (no duplicate); shown on the campaign page. Campaigns with nothing else pending are finished."""
    rows = (
        await CampaignRecipient.update({CampaignRecipient.state: "unknown", CampaignRecipient.error: IN_DOUBT})
        .where((CampaignRecipient.state == "sending") & (CampaignRecipient.next_try_at < _now()))
        .returning(CampaignRecipient.campaign)
    )
    for campaign_id in {int(r["campaign"]) for r in rows}:
        await _finish_if_done(campaign_id, ["queued", "sending"])
    return len(rows)


async def _finish_if_done(campaign_id: int, pending: list[str]) -> list[dict[str, Any]]:
    """The campaign ``sent`` if none of its recipients is ``pending``; the finished row (``sent_by``) or []."""
    left = (
        await CampaignRecipient.select(CampaignRecipient.id)
        .where((CampaignRecipient.campaign == campaign_id) & CampaignRecipient.state.is_in(pending))
        .first()
    )
    if left is not None:
        return []
    return list(
        await Campaign.update({Campaign.state: "sent"})
        .where((Campaign.id == campaign_id) & (Campaign.state == "sending"))
        .returning(Campaign.sent_by)
    )


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


async def send_batch(campaign_id: int, first_id: int, last_id: int, index: int = 0) -> dict[str, int]:
    """Send the queued recipients ``first_id``…``last_id`` of a campaign (the actor's work); counts by outcome.
    Batch ``index`` waits its turn under the throttle (``RetryLater``, which uses up no attempt)."""
    await db.ensure_loop_pool()  # a connection a query otherwise
    from core.outbox import heartbeat

    # the heartbeat first: until its first beat the job's row holds the claim's long lease (the job's time limit),
    # and a worker killed in between left its batch waiting ~5 minutes for the sweep
    async with heartbeat(JOB_LEASE_SECONDS):
        campaign = await Campaign.select().where(Campaign.id == campaign_id).first()
        if campaign is None:
            return {}
        due_at = not_before(campaign["sent_at"], index)
        if due_at is not None and due_at > _now():
            delay = (due_at - _now()).total_seconds()
            raise RetryLater(f"campaign {campaign_id} batch {index} is throttled", delay=delay)
        await _suppressed_to_skipped(campaign_id, first_id, last_id)
        in_batch = (
            (CampaignRecipient.campaign == campaign_id)
            & (CampaignRecipient.id >= first_id)
            & (CampaignRecipient.id <= last_id)
        )
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
    finished = await _finish_if_done(campaign_id, ["queued", "sending", "held"])
    if finished:  # this run finished the campaign: tell who sent it about recipients that failed for good
        await _tell_failures(campaign, finished[0]["sent_by"])
    return counts


async def _expire_in_flight(where: Any) -> None:
    """Rows a dead run left ``sending`` past its lease: that one message may have been accepted, so ``unknown``."""
    await CampaignRecipient.update({CampaignRecipient.state: "unknown", CampaignRecipient.error: IN_DOUBT}).where(
        where & (CampaignRecipient.state == "sending") & (CampaignRecipient.next_try_at < _now())
    )


async def _fail(row: dict[str, Any], attempts: int | None, lease: dt.datetime, exc: Exception) -> str:
    """A refusal: the row back in the queue after a backoff, or ``failed`` after the last try; the outcome.
    ``attempts`` is None when it was refused before its ``sending`` mark (at ``MAIL``/``RCPT``): this counts the try."""
    tries = attempts if attempts is not None else int(row["attempts"]) + 1
    last = tries > len(RETRY_DELAYS) or isinstance(exc, ValueError)  # an address no try will fix
    ours = (
        CampaignRecipient.state == "sending"
        if attempts is not None
        else (CampaignRecipient.state == "queued") & (CampaignRecipient.next_try_at == lease)
    )
    await CampaignRecipient.update(
        {
            CampaignRecipient.state: "failed" if last else "queued",
            CampaignRecipient.attempts: tries,
            CampaignRecipient.error: str(exc)[:1000],
            CampaignRecipient.next_try_at: None if last else _now() + dt.timedelta(seconds=RETRY_DELAYS[tries - 1]),
        }
    ).where((CampaignRecipient.id == row["id"]) & ours)
    return "failed" if last else "retry"


async def _in_doubt(row_id: int, exc: Exception) -> str:
    """The connection failed while the content was on its way: the server may have taken it, so never again."""
    await CampaignRecipient.update(
        {CampaignRecipient.state: "unknown", CampaignRecipient.error: f"{IN_DOUBT} ({exc})"[:1000]}
    ).where((CampaignRecipient.id == row_id) & (CampaignRecipient.state == "sending"))
    return "unknown"


async def _after_error(smtp: aiosmtplib.SMTP | None, exc: Exception | None) -> aiosmtplib.SMTP | None:
    """The connection to go on with: kept (transaction reset) when the server answered ``exc`` (or there was no
    error), else closed."""
    if smtp is None:
        return None
    if (exc is None or isinstance(exc, aiosmtplib.SMTPResponseException)) and smtp.is_connected:
        try:
            await smtp.rset()
            return smtp
        except (aiosmtplib.SMTPException, OSError):
            pass
    smtp.close()
    return None


async def _send_due(campaign: dict[str, Any], in_batch: Any) -> dict[str, int]:
    await _expire_in_flight(in_batch)
    now = _now()
    # the claim: the due rows stay queued but are not due for anyone else before the lease runs out, so a second
    # run of the batch (a retry, a duplicate message) mails none of them, and a killed run's untried rows are
    # due again afterwards
    lease = now + dt.timedelta(seconds=LEASE_SECONDS)
    due = sorted(
        await CampaignRecipient.update({CampaignRecipient.next_try_at: lease})
        .where(
            in_batch
            & (CampaignRecipient.state == "queued")
            & (CampaignRecipient.next_try_at.is_null() | (CampaignRecipient.next_try_at <= now))
        )
        .returning(
            CampaignRecipient.id,
            CampaignRecipient.person,
            CampaignRecipient.email,
            CampaignRecipient.language,
            CampaignRecipient.variant,
            CampaignRecipient.attempts,
        ),
        key=lambda r: int(r["id"]),
    )
    counts = {"sent": 0, "retry": 0, "failed": 0}
    if not due:
        return counts
    contacts = await campaigns.contact_values([int(r["person"]) for r in due if r["person"]])
    settings = current().settings
    envelope = mime.Envelope(settings.smtp_from)
    domain = envelope.mail_from.rpartition("@")[2] or "crm"
    host, port = settings.smtp_host or "", settings.smtp_port
    compiled: dict[tuple[str, bool], composer.Compiled] = {}
    smtp: aiosmtplib.SMTP | None = None
    accepted: int | None = None  # accepted by the server; its sent mark goes with the next row's sending mark
    async with Marks(lease) as marks:
        try:
            for row in due:
                rid, to = int(row["id"]), str(row["email"])
                zh = str(row["language"] or "").startswith("zh")  # every language choice is zh or not
                key = (str(row["variant"] or ""), zh)
                if key not in compiled:
                    texts = ab_test.variant_texts(campaign, key[0]) if key[0] else campaign
                    compiled[key] = composer.Compiled(dict(texts), "zh_CN" if zh else "en")
                # composed before anything is marked: a kill meanwhile leaves the row queued, not in doubt
                subject, html, text, links = compiled[key].render(contacts.get(int(row["person"] or 0), {}), rid)
                utf8 = mime.needs_smtputf8(to)
                try:
                    raw = envelope.build(
                        to=to,
                        subject=subject,
                        text=text,
                        html=html,
                        # the same id on every try: a receiver (or the bench's sink) sees a replay as the same message
                        message_id=f"<crm-marketing-{campaign['id']}-{rid}@{domain}>",
                        list_unsubscribe=links["unsubscribe_url"],
                    )
                    if not host:
                        raise aiosmtplib.SMTPException("no SMTP server is configured (CRM_SMTP_HOST)")
                    if smtp is None or not smtp.is_connected:
                        smtp = aiosmtplib.SMTP(hostname=host, port=port, timeout=30)
                        await smtp.connect()
                    await smtp.mail(envelope.mail_from, options=["SMTPUTF8"] if utf8 else None)
                    await smtp.rcpt(to, encoding="utf-8" if utf8 else "ascii")
                except (aiosmtplib.SMTPException, OSError, ValueError) as exc:
                    smtp = await _after_error(smtp, exc)
                    accepted = await marks.advance(accepted, None)
                    counts[await _fail(row, None, lease, exc)] += 1
                    continue
                attempts: int | None = None

                async def mark(rid: int = rid) -> bool:  # between the server's 354 and the content (smtp_data)
                    nonlocal attempts, accepted
                    attempts = await marks.advance(accepted, rid)
                    accepted = None
                    return attempts is not None

                try:
                    await smtp_data.data_after(smtp, raw, mark)
                except smtp_data.NotReady:  # our lease ran out and a later run of the batch has the row
                    smtp = None
                    continue
                except (aiosmtplib.SMTPException, OSError) as exc:
                    smtp = await _after_error(smtp, exc)
                    if attempts is None:  # refused before the mark (DATA): not sent, tried again
                        accepted = await marks.advance(accepted, None)
                        outcome = await _fail(row, None, lease, exc)
                    elif isinstance(exc, aiosmtplib.SMTPResponseException):  # the content refused
                        outcome = await _fail(row, attempts, lease, exc)
                    else:  # no reply to the content: in doubt
                        outcome = await _in_doubt(rid, exc)
                    counts[outcome] = counts.get(outcome, 0) + 1
                    continue
                accepted = rid
                counts["sent"] += 1
        finally:
            if accepted is not None:
                await marks.advance(accepted, None)
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
