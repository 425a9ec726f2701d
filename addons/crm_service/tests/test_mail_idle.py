"""The long-running mail watcher against the real Dovecot of the tests: with IMAP IDLE a delivered mail becomes a
ticket well before the idle wait would have ended (the server woke it); without IDLE it polls; stopping ends it."""

from __future__ import annotations

import asyncio
import time
from email.message import EmailMessage

from imap_tools import MailBoxUnencrypted
from service_helpers import Desk


def _mail(subject: str, mid: str) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"], msg["Message-ID"] = "qian@example.cn", "support@example.com", subject, mid
    msg.set_content("请尽快处理")
    return msg.as_bytes()


async def _ticket_within(subject: str, seconds: float) -> float:
    from crm_service.models import Ticket

    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if await Ticket.exists().where(Ticket.subject == subject):
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    raise AssertionError(f"no ticket {subject!r} within {seconds} s")


async def test_watch_with_idle_and_polling(desk: Desk, dovecot: tuple[str, int]) -> None:
    from crm_service.mailbox import MailboxConfig, watch

    host, port = dovecot
    user = f"idle{desk.support}{id(desk)}"
    cfg = MailboxConfig(host=host, port=port, user=user, password="secret")
    with MailBoxUnencrypted(host, port).login(user, "secret") as box:
        box.append(_mail("已有的邮件", "<before-1@example.cn>"), "INBOX")
        assert "IDLE" in box.client.capabilities

    for use_idle, subject in ((None, "空调不制冷"), (False, "洗衣机漏水")):
        stop = asyncio.Event()
        # IDLE: one wait of 120 s, so a ticket within 30 s was announced by the server; polling: every 0.3 s
        task = asyncio.create_task(watch(cfg, stop, use_idle=use_idle, idle_seconds=120, poll_seconds=0.3))
        if use_idle is None:
            await _ticket_within("已有的邮件", 30)  # what was waiting is fetched at once
            await asyncio.sleep(0.5)  # in IDLE by now
        with MailBoxUnencrypted(host, port).login(user, "secret") as box:
            box.append(_mail(subject, f"<{use_idle}-1@example.cn>"), "INBOX")
        await _ticket_within(subject, 30)  # seconds on a quiet machine; 30 leaves room on a loaded one
        stop.set()
        if use_idle is None:
            # the watcher notices stop between two waits: wake it with one more mail instead of waiting 120 s
            with MailBoxUnencrypted(host, port).login(user, "secret") as box:
                box.append(_mail("唤醒", "<wake-1@example.cn>"), "INBOX")
        counts = await asyncio.wait_for(task, 30)
        assert counts["ticket"] >= 1
