"""E-mail in from a real IMAP server (Dovecot, started by the tests) and out through an SMTP sink (aiosmtpd):
tickets, threading, loop guard, bad mail, no duplicates on a second fetch."""

from __future__ import annotations

from email.message import EmailMessage

from aiosmtpd.controller import Controller
from imap_tools import AND, MailBoxUnencrypted
from service_helpers import Desk

from core import jobs, outbox
from core.models import Outbox
from core.testing import MailInbox as Inbox
from core.testing import free_port


def _mail(sender: str, subject: str, body: str, mid: str, **headers: str) -> bytes:
    msg = EmailMessage()
    if sender:
        msg["From"] = sender
    msg["To"] = "support@example.com"
    msg["Subject"] = subject
    msg["Message-ID"] = mid
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg.as_bytes()



async def test_mail_in_threading_loops_bad_mail_and_reply_out(desk: Desk, dovecot: tuple[str, int]) -> None:
    from crm_service import tickets
    from crm_service.mailbox import MailboxConfig, fetch_once
    from crm_service.models import InboundMail, Ticket
    from crm_service.models import Message as TicketMessage

    host, port = dovecot
    user = f"support{desk.support}{id(desk)}"  # one mailbox per test run (the server lives for the session)
    cfg = MailboxConfig(host=host, port=port, user=user, password="secret")
    exe = EmailMessage()
    exe["From"], exe["Subject"], exe["Message-ID"] = "li@example.cn", "发票", "<inv-1@example.cn>"
    exe.set_content("见附件")
    exe.add_attachment(b"MZ\x90\x00", maintype="application", subtype="octet-stream", filename="invoice.exe")
    html = EmailMessage()
    html["From"], html["Subject"], html["Message-ID"] = "zhao@example.cn", "Broken screen", "<html-1@example.cn>"
    html.set_content("<p>My screen is broken</p><script>alert('x')</script>", subtype="html")
    with MailBoxUnencrypted(host, port).login(user, "secret") as box:
        for raw in (
            _mail("张三 <zhang@example.cn>", "打印机坏了", "打印机无法开机", "<p-1@example.cn>"),
            _mail("robot@example.cn", "Out of office", "away", "<ooo-1@example.cn>", Auto_Submitted="auto-replied"),
            _mail("news@example.cn", "Newsletter", "hi", "<news-1@example.cn>", Precedence="bulk"),
            _mail("", "who am I", "no sender", "<anon-1@example.cn>"),
            exe.as_bytes(), html.as_bytes(),
            b"\x00\xff this is not a mail at all",
        ):
            box.append(raw, "INBOX")

    counts = await fetch_once(cfg, own_address="support@example.com")
    assert counts == {"ticket": 3, "ignored": 2, "quarantined": 2}, counts
    outcomes = {r["message_id"]: (r["outcome"], r["note"]) for r in await InboundMail.select()}
    assert outcomes["<ooo-1@example.cn>"][0] == "ignored" and "Auto-Submitted" in outcomes["<ooo-1@example.cn>"][1]
    assert outcomes["<anon-1@example.cn>"] == ("quarantined", "no sender address")
    assert "invoice.exe refused" in outcomes["<inv-1@example.cn>"][1]
    printer = await Ticket.select().where(Ticket.subject == "打印机坏了").first()
    assert printer["channel"] == "email" and printer["customer_email"] == "zhang@example.cn" and printer["person"]
    screen = await Ticket.select().where(Ticket.subject == "Broken screen").first()
    assert "My screen is broken" in screen["description"] and "script" not in screen["description"]
    assert "alert" not in screen["description"]

    # every message flagged seen after its commit; fetching again changes nothing
    with MailBoxUnencrypted(host, port).login(user, "secret") as box:
        assert list(box.uids(AND(seen=False))) == []
        box.flag(box.uids(), "\\Seen", False)  # as if the fetcher had died before flagging
    again = await fetch_once(cfg, own_address="support@example.com")
    assert again == {"duplicate": 7} and await Ticket.count() == 3

    # an agent replies: the mail goes out with the reference and a Message-ID the customer's answer threads on
    sink = Inbox()
    smtp_port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        desk.runtime.settings = desk.runtime.settings.with_(smtp_host="127.0.0.1", smtp_port=smtp_port,
                                                            smtp_from="support@example.com")
        agent = await desk.acc("boss")
        await tickets.add_message(agent, printer["id"], "note", "内部：客户上周也报过")
        await tickets.add_message(agent, printer["id"], "reply", "请检查电源线")
        for job in await Outbox.select().where(Outbox.actor == "crm_service.send_reply"):
            await outbox.run_job(jobs.spec("crm_service.send_reply"), job["id"])
    finally:
        controller.stop()
    assert len(sink.messages) == 1  # the internal note never leaves
    out = sink.messages[0]
    ref = tickets.reference(printer["id"])
    assert out["To"] == "zhang@example.cn" and f"[{ref}]" in out["Subject"]
    assert out["In-Reply-To"] == "<p-1@example.cn>" and "内部" not in out.get_payload(decode=True).decode()

    with MailBoxUnencrypted(host, port).login(user, "secret") as box:
        # the customer answers (threaded by In-Reply-To) ...
        box.append(_mail("zhang@example.cn", f"Re: 打印机坏了 [{ref}]", "好了，谢谢\n\n> 请检查电源线",
                         "<p-2@example.cn>", In_Reply_To=out["Message-ID"]), "INBOX")
        # ... someone else quotes that reference in a subject: never put on Zhang's ticket
        box.append(_mail("mallory@example.cn", f"About [{ref}]", "let me in", "<m-1@example.cn>"), "INBOX")
    third = await fetch_once(cfg, own_address="support@example.com")
    assert third == {"reply": 1, "ticket": 1}, third
    answer = await TicketMessage.select().where(TicketMessage.message_id == "<p-2@example.cn>").first()
    assert answer["ticket"] == printer["id"] and answer["body"] == "好了，谢谢"  # quoted history stripped
    stranger = await InboundMail.select().where(InboundMail.message_id == "<m-1@example.cn>").first()
    assert stranger["outcome"] == "ticket" and stranger["ticket"] != printer["id"]
