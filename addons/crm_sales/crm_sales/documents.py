"""The quote as a document: the PDF (in the customer's language) and the e-mail that carries it.

Company details come from the environment (``CRM_X_COMPANY_NAME``, ``…_ADDRESS`` with lines separated by
``|``, ``…_PHONE``, ``…_EMAIL``, ``…_TAX_ID``), so one deployment prints its own letterhead.
"""

from __future__ import annotations

import asyncio
import hashlib
import smtplib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from email.message import EmailMessage
from functools import partial
from typing import Any

from babel.numbers import format_decimal, format_percent

from core import i18n, templating
from core.reports import CJK_FONT_STACK, render_pdf_async
from core.runtime import current
from core.security.access import Access
from core.security.models import User
from crm_sales.models import Opportunity, Quote, QuoteLine
from crm_sales.pricing import QuoteLineInput, format_money, quote_totals


@contextmanager
def language(lang: str) -> Iterator[None]:
    """Translate in ``lang`` for the duration (the customer's, not the salesperson's)."""
    before = i18n.language()
    i18n.set_language(lang)
    try:
        yield
    finally:
        i18n.set_language(before)


def company() -> dict[str, Any]:
    extra = current().settings.extra
    return {"name": extra.get("CRM_X_COMPANY_NAME", "CRM Demo Co., Ltd."),
            "address": [p for p in extra.get("CRM_X_COMPANY_ADDRESS", "").split("|") if p],
            "phone": extra.get("CRM_X_COMPANY_PHONE", ""), "email": extra.get("CRM_X_COMPANY_EMAIL", ""),
            "tax_id": extra.get("CRM_X_COMPANY_TAX_ID", ""), "logo": None}


async def _quote(quote_id: int) -> dict[str, Any]:
    from core.errors import NotFound

    row = await Quote.select().where(Quote.id == quote_id).first()
    if row is None:
        raise NotFound(f"quote {quote_id} not found")
    return dict(row)


async def context(quote_id: int, viewer: Access | None = None) -> dict[str, Any]:
    """Everything ``crm_sales/quote_pdf.html`` needs (see its header comment).

    ``viewer``: the user the document is shown to, whose field rules apply to the customer's details as on
    every page (a masked phone stays masked); None for the customer's own copy (the link, the e-mail)."""
    from crm_contacts.api import get_contact, seen_by

    quote = await _quote(quote_id)
    opp = await Opportunity.select(Opportunity.person, Opportunity.owner).where(
        Opportunity.id == quote["opportunity"]).first()
    lines = await QuoteLine.select().where(QuoteLine.quote == quote_id).order_by(QuoteLine.sequence)
    customer: dict[str, Any] = {"name": "", "contact": "", "address": [], "phone": "", "email": "", "tax_id": ""}
    if opp and opp["person"]:
        ref = await get_contact(opp["person"])
        if viewer is not None:
            ref = seen_by(viewer, ref)
        customer = {"name": ref.organization_name or ref.display_name,
                    "contact": ref.display_name if ref.organization_name else "",
                    "address": list(ref.address_lines), "phone": ref.phone, "email": ref.email,
                    "tax_id": ref.tax_id}
    seller = await User.select(User.name).where(User.id == quote["owner"]).first() if quote["owner"] else None
    loc = "zh_CN" if quote["language"] == "zh_CN" else "en"
    currency = quote["currency"]
    totals = quote_totals([QuoteLineInput(ln["quantity"], ln["unit_price"], ln["discount_percent"], ln["tax_rate"])
                           for ln in lines], currency)
    money: Callable[[Any], str] = partial(format_money, currency=currency, locale=loc)
    return {
        "lang": "zh-CN" if loc == "zh_CN" else "en", "locale": loc, "company": company(), "customer": customer,
        "quote": {"number": quote["number"], "version": quote["revision"],
                  "date": quote["quote_date"].isoformat() if quote["quote_date"] else "",
                  "valid_until": quote["valid_until"].isoformat() if quote["valid_until"] else "",
                  "currency": currency, "salesperson": seller["name"] if seller else "",
                  "notes": quote["notes"], "terms": [t for t in quote["terms"].splitlines() if t.strip()]},
        "lines": [{"code": ln["code"], "description": ln["description"], "quantity": Decimal(ln["quantity"]),
                   "unit": ln["unit"], "unit_price": Decimal(ln["unit_price"]),
                   "discount_percent": Decimal(ln["discount_percent"]), "tax_rate": Decimal(ln["tax_rate"])}
                  for ln in lines],
        "totals": totals, "money": money,
        "number": lambda v: format_decimal(Decimal(v).normalize(), locale=loc),
        "percent": lambda v: format_percent(Decimal(v), locale=loc, decimal_quantization=False),
    }


_ENV: dict[int, Any] = {}


def _environment() -> Any:
    runtime = current()
    key = id(runtime)
    if key not in _ENV:
        _ENV.clear()
        _ENV[key] = templating.environment(runtime.addons)
    return _ENV[key]


async def render_pdf(quote_id: int, viewer: Access | None = None) -> bytes:
    """The quote's PDF as ``viewer`` may see it (None: the customer's own copy, see :func:`context`)."""
    ctx = await context(quote_id, viewer)
    with language(ctx["locale"]):
        html = _environment().get_template("crm_sales/quote_pdf.html").render(
            CJK_FONT_STACK=CJK_FONT_STACK, _=i18n.gettext, **ctx)
    return await render_pdf_async(html, assets=templating.static_dirs(current().addons))


def filename(quote: dict[str, Any]) -> str:
    return f"{quote['number']}-v{quote['revision']}.pdf"


async def mark_email_failed(quote_id: int) -> None:
    await Quote.update({Quote.email_state: "failed"}).where(Quote.id == quote_id)


async def send_email(quote_id: int, accept_url: str) -> str:
    """E-mail the quote's PDF and acceptance link to the customer; returns the recipient."""
    from crm_contacts.api import get_contact

    from core.errors import PermanentJobError

    settings = current().settings

    async def failed(reason: str) -> PermanentJobError:
        # for good: the quote says so (the job's failure tells the rep and the admins why)
        await mark_email_failed(quote_id)
        return PermanentJobError(reason)

    if not settings.smtp_host:
        raise await failed("CRM_SMTP_HOST is not set: quotes cannot be e-mailed")
    quote = await _quote(quote_id)
    opp = await Opportunity.select(Opportunity.person).where(Opportunity.id == quote["opportunity"]).first()
    ref = await get_contact(opp["person"]) if opp and opp["person"] else None
    if ref is None or not ref.email:
        raise await failed(f"quote {quote_id}: the customer has no e-mail address")
    pdf = await render_pdf(quote_id)
    with language(quote["language"]):
        subject = i18n.gettext("Quote {number} (version {version})").format(
            number=quote["number"], version=quote["revision"])
        body = i18n.gettext("Dear {name},\n\nPlease find our quote attached. You can review and accept it "
                            "online:\n{url}\n").format(name=ref.display_name, url=accept_url)
    msg = EmailMessage()
    msg["From"] = settings.smtp_from
    msg["To"] = ref.email
    msg["Subject"] = subject
    # one Message-ID per quote and link: a retry after a lost acknowledgement is the same message, which mail
    # systems and readers recognise as such (and a soak test counts as one)
    digest = hashlib.sha256(f"{quote_id}:{accept_url}".encode()).hexdigest()[:24]
    msg["Message-ID"] = f"<quote-{quote_id}-{digest}@{settings.smtp_from.rpartition('@')[2] or 'crm.local'}>"
    msg.set_content(body)
    msg.add_attachment(pdf, maintype="application", subtype="pdf", filename=filename(quote))

    def deliver() -> None:
        with smtplib.SMTP(settings.smtp_host or "", settings.smtp_port, timeout=30) as smtp:
            smtp.send_message(msg)

    await asyncio.to_thread(deliver)
    # only now "sent": the SMTP server took it (a failed attempt stays "sending" while the job retries)
    await Quote.update({Quote.email_state: "sent"}).where(Quote.id == quote_id)
    return str(ref.email)
