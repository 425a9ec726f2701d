"""The customer portal's quotes and orders (kernel hooks ``crm_portal_sections``, ``crm_portal_document``,
``crm_portal_action``; served by whichever addon runs the portal, crm_sales names none).

A customer sees the quotes of deals whose contact they are, once sent (never a draft, never a superseded
revision), and the orders placed for them. Opening, downloading the PDF (the same customer copy the acceptance
link gives) and accepting or declining go through the acceptance link's own logic (``acceptance.accept`` /
``decline``: one transaction, audited, the same order on a replay); another customer's id is ``None`` — a 404.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core.hooks import PortalCustomer, PortalDocument, PortalSection, hookimpl
from core.i18n import gettext
from crm_sales.models import Order, OrderLine, Quote, QuoteLine

QUOTES = "crm_sales_quotes"
ORDERS = "crm_sales_orders"
SHOWN = ("sent", "accepted", "declined", "expired")  # what the customer was sent: never a draft
LIMIT = 50


def _own_quotes(person_id: int) -> Any:
    return ((Quote.opportunity.person == person_id) & Quote.state.is_in(list(SHOWN))
            & (Quote.is_superseded == False))  # noqa: E712


async def _quote(person_id: int, quote_id: int) -> dict[str, Any] | None:
    from crm_sales.quotes import expire_if_due

    row = await Quote.select().where((Quote.id == quote_id) & _own_quotes(person_id)).first()
    return await expire_if_due(dict(row)) if row else None


async def _order(person_id: int, order_id: int) -> dict[str, Any] | None:
    row = await Order.select().where((Order.id == order_id) & (Order.person == person_id)).first()
    return dict(row) if row else None


@hookimpl
async def crm_portal_sections(customer: PortalCustomer) -> Sequence[PortalSection]:
    quotes = await Quote.select(Quote.id, Quote.number, Quote.revision, Quote.state, Quote.quote_date,
                                Quote.valid_until, Quote.currency, Quote.total).where(
        _own_quotes(customer.person_id)).order_by(Quote.id, ascending=False).limit(LIMIT)
    orders = await Order.select(Order.id, Order.reference, Order.state, Order.confirmed_at, Order.currency,
                                Order.total).where(Order.person == customer.person_id).order_by(
        Order.id, ascending=False).limit(LIMIT)
    # after the service portal's own tickets (order 100)
    return [PortalSection(key=QUOTES, title=gettext("Your quotes"), template="crm_sales/portal_quotes.html",
                          context={"rows": quotes}, order=110),
            PortalSection(key=ORDERS, title=gettext("Your orders"), template="crm_sales/portal_orders.html",
                          context={"rows": orders}, order=120)]


@hookimpl
async def crm_portal_document(customer: PortalCustomer, section: str, record_id: int,
                              view: str) -> PortalDocument | None:
    if section == QUOTES:
        quote = await _quote(customer.person_id, record_id)
        if quote is None or view not in ("", "pdf"):
            return None
        title = gettext("Quote %(number)s") % {"number": quote["number"]}
        if view == "pdf":
            from crm_sales import documents

            return PortalDocument(title=title, content=await documents.render_pdf(record_id),
                                  filename=documents.filename(quote))
        lines = await QuoteLine.select().where(QuoteLine.quote == record_id).order_by(QuoteLine.sequence)
        return PortalDocument(title=title, template="crm_sales/portal_quote.html",
                              context={"q": quote, "lines": lines})
    if section == ORDERS and not view:
        order = await _order(customer.person_id, record_id)
        if order is None:
            return None
        lines = await OrderLine.select().where(OrderLine.order == record_id).order_by(OrderLine.sequence)
        return PortalDocument(title=gettext("Order %(reference)s") % {"reference": order["reference"]},
                              template="crm_sales/portal_order.html", context={"o": order, "lines": lines})
    return None


@hookimpl
async def crm_portal_action(customer: PortalCustomer, section: str, record_id: int, action: str,
                            form: Mapping[str, str]) -> bool | None:
    from crm_sales import acceptance

    if section != QUOTES or action not in ("accept", "decline"):
        return None
    if await _quote(customer.person_id, record_id) is None:
        return None
    name = str(form.get("name", "")).strip()[:200]
    # the acceptance link's logic: one transaction, the audit entry names the portal account
    if action == "accept":
        await acceptance.accept(record_id, by=name, via=f"portal {customer.email}")
    else:
        await acceptance.decline(record_id, by=name or customer.email,
                                 reason=f"{str(form.get('reason', ''))[:1000]} (portal {customer.email})")
    return True
