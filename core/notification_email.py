"""Notifications by e-mail, for the users who chose it (``has_email_notifications`` on ``/account/preferences``).

:func:`queue` runs as a notification is stored: for each recipient who wants e-mail, has an address and is
active, one job ``core.notification_email`` (off the request, after commit; a notification's ``dedup_key`` makes
the e-mail idempotent too). The job (:func:`send`) reads the preference again (it may have changed meanwhile),
writes the e-mail in the recipient's language through the kernel's SMTP settings (``CRM_SMTP_HOST``, ``_PORT``,
``_FROM``) and sends it.

Failures are never silent, and never loop: with SMTP not configured, a user who chose e-mail is told once, in the
app, that e-mail is not set up (the status page says so to administrators); a send that fails is retried, and
when it fails for good the recipient and the administrators are told in the app (at most once an hour each, not
by e-mail) and the failure is audited (``notify_failed``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import smtplib
from collections.abc import Sequence
from email.message import EmailMessage

from core import i18n
from core.hooks import Notification
from core.i18n import N_
from core.jobs import actor

log = logging.getLogger("crm.notifications")
ACTOR = "core.notification_email"
MAX_RETRIES = 3
#: SMTP answers that no retry will change (the address refused, the message refused)
_PERMANENT = (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPNotSupportedError)


async def queue(items: Sequence[tuple[Notification, str | None]]) -> int:
    """Ask for the e-mail of each notification whose recipient wants one; returns how many were asked for."""
    from core.bulk import any_of
    from core.runtime import current
    from core.security import context
    from core.security.models import User

    wanted = sorted({n.user_id for n, _ in items})
    if not wanted:
        return 0
    users = {
        int(u["id"]): u
        for u in await User.select(User.id, User.email).where(
            any_of(User.id, wanted)
            & (User.has_email_notifications == True)  # noqa: E712
            & (User.is_active == True)  # noqa: E712
            & (User.email != "")
        )
    }
    if not users:
        return 0
    if not current().settings.smtp_host:
        for user_id in users:
            await _unset(user_id)
        return 0
    from core import jobs

    before = context.get()
    # nobody "asked" for these e-mails: a failure is told to the recipient, not to whoever's action notified them
    context.set_context(context.RequestContext(ip=before.ip, request_id=before.request_id))
    try:
        asked = 0
        for notification, key in items:
            if notification.user_id not in users:
                continue
            await jobs.enqueue(
                ACTOR,
                dedup_key=f"email:{key}"[:200] if key else None,
                user_id=notification.user_id,
                title=notification.title,
                body=notification.body,
                url=notification.url or "",
            )
            asked += 1
    finally:
        context.set_context(before)
    return asked


async def _unset(user_id: int) -> None:
    from core.notifications import notify

    await notify(
        Notification(
            user_id=user_id,
            # stored in English, shown in the reader's language of the day (the page translates it)
            title=N_("E-mail notifications cannot be sent: e-mail is not set up"),
            body=N_("Your notifications are here until an administrator configures e-mail (CRM_SMTP_HOST)."),
            url="/account/preferences",
            kind="error",
            source="core",
        ),
        dedup_key=f"email-unset:{user_id}",
        email=False,
    )


async def _language(user_id: int) -> str:
    from core.runtime import current
    from core.security.models import User

    row = await User.select(User.language).where(User.id == user_id).first()
    return str(row["language"] if row and row["language"] else current().settings.default_language)


def message(
    *, to: str, sender: str, lang: str, title: str, body: str, url: str, base_url: str, key: str
) -> EmailMessage:
    """The e-mail of one notification, its frame in ``lang`` (the title and body come in it already)."""
    link = f"{base_url}{url}" if url.startswith("/") else url
    parts = [body.strip()] if body.strip() else []
    if link:
        parts.append(i18n.in_language(lang, N_("Open it: %(link)s")) % {"link": link})
    parts.append(
        "-- \n"
        + i18n.in_language(
            lang, N_("You get this e-mail because e-mail notifications are on in your preferences: %(link)s")
        )
        % {"link": f"{base_url}/account/preferences"}
    )
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = title.replace("\n", " ").strip()[:250] or "CRM"
    # the same Message-ID on a retry: the receiving side may recognise a second copy
    msg["Message-ID"] = f"<notification-{key}@{sender.rpartition('@')[2] or 'crm'}>"
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content("\n\n".join(parts))
    return msg


async def _attempts() -> int:
    """How many times this job's outbox row has been tried before (0 outside a job)."""
    from core.models import Outbox
    from core.outbox import _running

    outbox_id = _running.get()
    if outbox_id is None:
        return 0
    row = await Outbox.select(Outbox.attempts).where(Outbox.id == outbox_id).first()
    return int(row["attempts"]) if row else 0


async def send(user_id: int, title: str, body: str, url: str) -> str:
    """The job: e-mail one notification to ``user_id``, if they still want it. Returns what happened."""
    from core.runtime import current
    from core.security.models import User

    user = (
        await User.select(User.email, User.language, User.has_email_notifications, User.is_active)
        .where(User.id == user_id)
        .first()
    )
    if user is None or not user["is_active"] or not user["has_email_notifications"] or not user["email"]:
        return "not wanted any more"
    settings = current().settings
    if not settings.smtp_host:
        await _unset(user_id)
        return "e-mail is not set up"
    lang = str(user["language"] or settings.default_language)
    key = hashlib.sha256(f"{user_id}\n{title}\n{body}\n{url}".encode()).hexdigest()[:32]
    msg = message(
        to=str(user["email"]),
        sender=settings.smtp_from,
        lang=lang,
        title=title,
        body=body,
        url=url,
        base_url=settings.base_url,
        key=key,
    )

    def deliver() -> None:
        with smtplib.SMTP(settings.smtp_host or "", settings.smtp_port, timeout=30) as smtp:
            smtp.send_message(msg)

    try:
        await asyncio.to_thread(deliver)
    except (smtplib.SMTPException, OSError) as exc:
        if not isinstance(exc, _PERMANENT) and await _attempts() < MAX_RETRIES:
            raise  # tried again with backoff
        await failed(user_id, lang, f"{type(exc).__name__}: {exc}")
        return f"not sent: {type(exc).__name__}"
    return f"e-mailed {user['email']}"


async def failed(user_id: int, lang: str, cause: str) -> None:
    """A notification's e-mail failed for good: audited; the recipient and the administrators told in the app
    (at most once an hour each, and not by e-mail, which is what failed)."""
    from core.notifications import notify, notify_admins
    from core.security import audit

    log.warning("notification e-mail to user %s failed: %s", user_id, cause)
    await audit.record("notify_failed", model="core.user", record_id=user_id, detail=f"email: {cause}"[:500])
    hour = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H")
    await notify(
        Notification(
            user_id=user_id,
            title=i18n.in_language(lang, N_("A notification could not be e-mailed to you")),
            body=cause[:1000],
            url="/notifications",
            kind="error",
            source="core",
        ),
        dedup_key=f"email-failed:{user_id}:{hour}",
        email=False,
    )
    await notify_admins(
        i18n.gettext("Notification e-mails are failing"),
        cause[:1000],
        "/admin/status",
        source="core",
        dedup_key=f"email-failed:admins:{hour}",
        besides=user_id,
        email=False,
    )


@actor(ACTOR, max_retries=MAX_RETRIES + 1, min_backoff_ms=5_000, max_backoff_ms=300_000)
async def notification_email(user_id: int, title: str, body: str, url: str) -> None:
    await send(int(user_id), str(title), str(body), str(url))
