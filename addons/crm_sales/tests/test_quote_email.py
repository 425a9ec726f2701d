"""The quote PDF from the database in both languages, and the e-mail job delivering it to a real SMTP server."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from crm_sales import acceptance, documents, quotes
from sales_helpers import new_deal

from core import jobs, outbox
from core.models import Outbox
from core.testing import MailInbox as Inbox
from core.testing import free_port

LINES = [{"code": "SRV-R740", "description": "机架式服务器 Rack server", "quantity": "2", "unit_price": "48500",
          "tax_rate": "0.13"}]


def _text(pdf: bytes, tmp_path: Path, name: str) -> str:
    path = tmp_path / name
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return "".join(out.split())  # pdftotext spaces CJK glyphs unpredictably


def _fonts(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "fonts.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("language", ["zh_CN", "en"])
async def test_pdf_follows_the_customer_language(org: Any, tmp_path: Path, language: str) -> None:
    rep = await org.acc("rep1")
    opp_id = await new_deal(rep, "Servers", email="buyer@example.com", language=language, contact="王小明")
    quote_id = await quotes.create_quote(rep, opp_id, LINES, terms="付款：30 天\nDelivery in 2 weeks")
    text = _text(await documents.render_pdf(quote_id), tmp_path, f"{language}.pdf")
    number = f"Q{quote_id:05d}"
    assert number in text and "王小明" in text and "机架式服务器" in text
    if language == "zh_CN":
        assert "报价单" in text and "不含税金额" in text and "第1页共1页" in text and "¥109,610.00" in text
        assert "Untaxed" not in text
    else:
        assert "Untaxedamount" in text and "Page1of1" in text and "CN¥109,610.00" in text
        assert "报价单" not in text
    if language == "zh_CN":
        assert "WenQuanYi" in _fonts(await documents.render_pdf(quote_id), tmp_path) or "Noto" in _fonts(
            await documents.render_pdf(quote_id), tmp_path)



async def test_send_mails_the_pdf_with_the_acceptance_link(org: Any, tmp_path: Path) -> None:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        org.runtime.settings = org.runtime.settings.with_(smtp_host="127.0.0.1", smtp_port=port,
                                                          smtp_from="sales@example.com")
        rep = await org.acc("rep1")
        opp_id = await new_deal(rep, "Servers", email="buyer@example.com", language="en", contact="Li Lei")
        quote_id = await quotes.create_quote(rep, opp_id, LINES)
        sent = await acceptance.send(rep, quote_id)
        assert await _email_state(quote_id) == "sending"  # not "sent" before the SMTP server took it
        job = await Outbox.select().where(Outbox.actor == "crm_sales.send_quote_email").first()
        await outbox.run_job(jobs.spec("crm_sales.send_quote_email"), job["id"])
    finally:
        controller.stop()
    assert len(inbox.messages) == 1 and await _email_state(quote_id) == "sent"
    msg = inbox.messages[0]
    assert msg["To"] == "buyer@example.com" and msg["From"] == "sales@example.com"
    assert f"Q{quote_id:05d}" in msg["Subject"]
    parts = list(msg.walk())
    body = next(p for p in parts if p.get_content_type() == "text/plain").get_payload(decode=True).decode()
    assert sent["accept_url"] in body
    pdf = next(p for p in parts if p.get_content_type() == "application/pdf")
    assert pdf.get_filename() == f"Q{quote_id:05d}-v1.pdf"
    data = pdf.get_payload(decode=True)
    assert data.startswith(b"%PDF") and "LiLei" in _text(data, tmp_path, "mail.pdf")
    state = (await Outbox.select(Outbox.state).where(Outbox.id == job["id"]).first())["state"]
    assert state == "done"


async def test_send_without_smtp_fails_for_good(org: Any) -> None:
    rep = await org.acc("rep1")
    opp_id = await new_deal(rep, "Servers", email="buyer@example.com")
    quote_id = await quotes.create_quote(rep, opp_id, LINES)
    await acceptance.send(rep, quote_id)
    job = await Outbox.select().where(Outbox.actor == "crm_sales.send_quote_email").first()
    await outbox.run_job(jobs.spec("crm_sales.send_quote_email"), job["id"])
    row = await Outbox.select(Outbox.state, Outbox.last_error).where(Outbox.id == job["id"]).first()
    assert row["state"] == "failed" and "CRM_SMTP_HOST" in row["last_error"]
    assert await _email_state(quote_id) == "failed"


async def _email_state(quote_id: int) -> str:
    from crm_sales.models import Quote

    return str((await Quote.select(Quote.email_state).where(Quote.id == quote_id).first())["email_state"])


async def test_an_unreachable_smtp_server_leaves_sending_until_the_last_retry_then_failed(org: Any) -> None:
    org.runtime.settings = org.runtime.settings.with_(smtp_host="127.0.0.1", smtp_port=free_port(),
                                                      smtp_from="sales@example.com")
    rep = await org.acc("rep1")
    opp_id = await new_deal(rep, "Servers", email="buyer@example.com")
    quote_id = await quotes.create_quote(rep, opp_id, LINES)
    await acceptance.send(rep, quote_id)
    spec = jobs.spec("crm_sales.send_quote_email")
    job = await Outbox.select().where(Outbox.actor == "crm_sales.send_quote_email").first()
    with pytest.raises(OSError):  # nobody listens: a retry follows, the quote still says "sending"
        await outbox.run_job(spec, job["id"])
    assert await _email_state(quote_id) == "sending"
    await Outbox.update({Outbox.attempts: spec.max_retries, Outbox.state: "pending"}).where(Outbox.id == job["id"])
    await outbox.run_job(spec, job["id"])  # the last try: failed for good, recorded, not raised for a retry
    row = await Outbox.select(Outbox.state).where(Outbox.id == job["id"]).first()
    assert row["state"] == "failed" and await _email_state(quote_id) == "failed"
