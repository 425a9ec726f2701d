"""Agents' public replies out by SMTP, with the ticket reference in the subject and threading headers, so the
customer's answer comes back onto the same ticket. Internal notes are never sent."""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage
from email.utils import formatdate

from core.runtime import current
from crm_service.models import Message, Ticket
from crm_service.tickets import reference


def outgoing_id(message_id: int, sender: str) -> str:
    """A stable Message-ID per reply: a retried send produces the same mail (the receiver deduplicates)."""
    domain = sender.rpartition("@")[2] or "localhost"
    return f"<crm-service-reply-{message_id}@{domain}>"


async def send_reply(message_id: int) -> str:
    """Send reply ``message_id`` to its ticket's customer; '' when there is nothing (more) to send."""
    settings = current().settings
    msg_row = await Message.select().where(Message.id == message_id).first()
    if msg_row is None or msg_row["kind"] != "reply" or msg_row["message_id"]:
        return ""  # not a public reply, or already sent
    ticket = await Ticket.select().where(Ticket.id == msg_row["ticket"]).first()
    if ticket is None or not ticket["customer_email"]:
        return ""
    earlier = await Message.select(Message.message_id).where(
        (Message.ticket == ticket["id"]) & (Message.message_id != "") & (Message.id < message_id)).order_by(Message.id)
    refs = [r["message_id"] for r in earlier][-20:]
    mail = EmailMessage()
    mail["From"] = settings.smtp_from
    mail["To"] = ticket["customer_email"]
    mail["Subject"] = f"Re: {ticket['subject']} [{reference(int(ticket['id']))}]"
    mail["Date"] = formatdate(localtime=False)
    mid = outgoing_id(message_id, settings.smtp_from)
    mail["Message-ID"] = mid
    if refs:
        mail["In-Reply-To"] = refs[-1]
        mail["References"] = " ".join(refs)
    mail.set_content(msg_row["body"])

    def deliver() -> None:
        with smtplib.SMTP(settings.smtp_host or "", settings.smtp_port, timeout=30) as smtp:
            smtp.send_message(mail)

    if not settings.smtp_host:
        raise RuntimeError("CRM_SMTP_HOST is not set: the reply stays queued")
    await asyncio.to_thread(deliver)
    await Message.update({Message.message_id: mid}).where(Message.id == message_id)
    return str(ticket["customer_email"])


async def send_invite(to: str, path: str, user_id: int | None = None) -> None:
    """Mail the portal link; without SMTP the agent who asked is told instead of the job retrying in vain."""
    from core.hooks import Notification
    from core.i18n import gettext
    from core.notifications import notify

    settings = current().settings
    if not settings.smtp_host:
        if user_id:
            await notify(Notification(user_id=user_id, title=gettext("The portal invitation could not be sent"),
                                      body=gettext("E-mail is not set up (CRM_SMTP_HOST)."), kind="error",
                                      source="crm_service"), dedup_key=f"crm_service.invite.{path[-12:]}")
        return
    mail = EmailMessage()
    mail["From"] = settings.smtp_from
    mail["To"] = to
    mail["Subject"] = "Your customer portal / 客户门户"
    mail["Date"] = formatdate(localtime=False)
    base = settings.extra.get("CRM_X_SERVICE_PORTAL_URL", "http://127.0.0.1:8000").rstrip("/")
    mail.set_content(f"{base}{path}\n\nSet your password with this link (valid 7 days).\n"
                     "请通过此链接设置密码（7 天内有效）。")

    def deliver() -> None:
        with smtplib.SMTP(settings.smtp_host or "", settings.smtp_port, timeout=30) as smtp:
            smtp.send_message(mail)

    await asyncio.to_thread(deliver)
