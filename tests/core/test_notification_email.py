"""Notifications by e-mail (core.notification_email), on SQLite and PostgreSQL, against an aiosmtpd sink: sent only
to who chose it, in their language, once; a change of mind before the job runs is honoured; SMTP not set up or
failing is told in the app (recipient and administrators), audited, never looped through e-mail again."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest

from core import i18n, jobs, notifications, outbox
from core.discovery import Discovered
from core.hooks import Notification
from core.models import Notification as Row
from core.models import Outbox
from core.notification_email import ACTOR, MAX_RETRIES
from core.security.models import AuditLog, User
from core.testing import free_port, make_user


class Sink:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse: set[str] = set()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:  # noqa: N802
        if address in self.refuse:
            return "550 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        msg = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append(msg)
        return "250 OK"


@pytest.fixture
async def smtp(crm_boot: Any, found: Discovered) -> Any:
    from aiosmtpd.controller import Controller

    from core.runtime import current

    await crm_boot("crm_testbase", found=found)
    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    runtime = current()
    runtime.settings = runtime.settings.with_(
        smtp_host="127.0.0.1", smtp_port=port, smtp_from="crm@example.com", base_url="https://crm.example.com"
    )
    yield sink, runtime
    controller.stop()


async def _jobs() -> list[int]:
    return [
        int(r["id"])
        for r in await Outbox.select(Outbox.id)
        .where((Outbox.actor == ACTOR) & (Outbox.state == "pending"))
        .order_by(Outbox.id)
    ]


async def _run(outbox_id: int) -> None:
    await outbox.run_job(jobs.spec(ACTOR), outbox_id)


def _text(msg: EmailMessage) -> str:
    return str(msg.get_content())


async def test_sent_to_who_chose_it_in_their_language_once(smtp: Any) -> None:
    sink, _ = smtp
    zoe = await make_user("zoe", email="zoe@example.com", language="zh_CN")
    yan = await make_user("yan", email="yan@example.com")
    xia = await make_user("xia")
    await User.update({User.has_email_notifications: False}).where(User.id == yan)
    for uid in (zoe, yan, xia):
        await notifications.notify(
            Notification(user_id=uid, title="报价已接受 Q-7", body="客户接受了报价。", url="/sales/quotes/7"),
            dedup_key=f"q7:{uid}",
        )
    await notifications.notify(Notification(user_id=zoe, title="again"), dedup_key=f"q7:{zoe}")  # the same one
    pending = await _jobs()
    assert len(pending) == 1
    await _run(pending[0])
    await _run(pending[0])  # a second delivery of the message sends nothing more
    assert len(sink.messages) == 1
    msg = sink.messages[0]
    assert msg["To"] == "zoe@example.com" and msg["Subject"] == "报价已接受 Q-7"
    text = _text(msg)
    assert "客户接受了报价。" in text
    assert i18n.in_language("zh_CN", "Open it: %(link)s") % {"link": "https://crm.example.com/sales/quotes/7"} in text
    assert "Open it" not in text  # the frame is in Chinese too

    # zoe changes her mind before the job runs: nothing is sent
    await notifications.notify(Notification(user_id=zoe, title="Second"))
    await User.update({User.has_email_notifications: False}).where(User.id == zoe)
    await _run((await _jobs())[0])
    assert len(sink.messages) == 1


async def test_unset_or_failing_smtp_is_told_in_the_app_never_by_e_mail(smtp: Any) -> None:
    sink, runtime = smtp
    root = await make_user("root", "admin")
    wu = await make_user("wu", email="wu@example.com")
    sink.refuse.add("wu@example.com")
    await notifications.notify(Notification(user_id=wu, title="Deal won"))
    await _run((await _jobs())[0])  # refused for good at once: no retry changes a 550
    assert sink.messages == []
    told = [r["title"] for r in await Row.select(Row.title).where(Row.user_id == wu).order_by(Row.id)]
    assert told == ["Deal won", "A notification could not be e-mailed to you"]
    assert [r["title"] for r in await Row.select(Row.title).where(Row.user_id == root)] == [
        "Notification e-mails are failing"
    ]
    assert await AuditLog.count().where((AuditLog.action == "notify_failed") & (AuditLog.record_id == str(wu))) == 1
    assert await _jobs() == []  # the failure notices are not e-mailed (root has no address anyway; wu's failed)

    # the server is down: tried again, then given up and told (once this hour)
    sink.refuse.clear()
    runtime.settings = runtime.settings.with_(smtp_port=free_port())
    await notifications.notify(Notification(user_id=wu, title="Task due"))
    job = (await _jobs())[0]
    with pytest.raises(OSError):
        await _run(job)
    await Outbox.update({Outbox.attempts: MAX_RETRIES, Outbox.state: "pending"}).where(Outbox.id == job)
    await _run(job)
    assert (await Outbox.select(Outbox.state).where(Outbox.id == job).first())["state"] == "done"
    assert await Row.count().where(Row.user_id == wu) == 3  # "Task due"; the hour's failure notice is not repeated

    # not set up at all: who chose e-mail is told once, in the app
    runtime.settings = runtime.settings.with_(smtp_host=None)
    vic = await make_user("vic", email="vic@example.com", language="zh_CN")
    for title in ("One", "Two"):
        await notifications.notify(Notification(user_id=vic, title=title))
    titles = [r["title"] for r in await Row.select(Row.title).where(Row.user_id == vic).order_by(Row.id)]
    # stored in English, so the notifications page shows it in the language the reader uses that day
    unset = "E-mail notifications cannot be sent: e-mail is not set up"
    assert titles == ["One", unset, "Two"] and i18n.in_language("zh_CN", unset) != unset
    assert await _jobs() == []
    from core import status

    banner = [c.hint for c in await status.notices("/account/preferences")]
    assert banner == ["e-mail is not set up: notifications reach you here only, not by e-mail"]
