"""The public surface of crm_sales: the only module other addons import (list ``crm_sales`` in depends).

Only ids and frozen dataclasses cross the boundary. Events: ``crm_sales_order_confirmed(order_id)``,
``crm_sales_order_cancelled(order_id)``, ``crm_sales_opportunity_won(opportunity_id)``,
``crm_sales_quote_sent(quote_id)`` (see ``hookspecs.py``), published inside the transaction that made the change.
These functions act as the system, not as a user.

Amounts follow ``crm_sales.pricing``'s one rounding rule: ``PRICE_DIGITS`` (the net unit price an ERP gets,
``OrderLineRef.net_unit_price``), ``TAX_ROUNDING`` ("line") and ``ROUNDING`` (half to even).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

ORDER_MODEL = "crm_sales.order"
QUOTE_MODEL = "crm_sales.quote"
OPPORTUNITY_MODEL = "crm_sales.opportunity"
PRODUCT_MODEL = "crm_sales.product"

__all__ = ["OPPORTUNITY_MODEL", "ORDER_MODEL", "PRICE_DIGITS", "PRODUCT_MODEL", "QUOTE_MODEL", "ROUNDING",
           "TAX_ROUNDING", "NewOrderLine", "OrderLineRef", "OrderRef", "QuoteLineTax", "create_lead", "create_order",
           "currencies_in_use", "get_order", "get_orders", "order_ids", "order_url", "orders_by_reference",
           "quote_line_taxes", "tax_rates_in_use"]

PRICE_DIGITS = 4  # = crm_sales.pricing.PRICE_DIGITS (cheap to import: the pricing module loads Babel)
TAX_ROUNDING = "line"  # = crm_sales.pricing.TAX_ROUNDING: taxes rounded per line, as the ERP must be configured
ROUNDING = "ROUND_HALF_EVEN"  # = crm_sales.pricing.ROUNDING, the decimal module's name

_CHUNK = 500  # ids per IN (...) list


@dataclass(frozen=True)
class OrderLineRef:
    code: str
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    discount_percent: Decimal
    tax_rate: Decimal  # a fraction: 0.13 for 13 %
    untaxed: Decimal
    tax: Decimal
    total: Decimal
    product_external_ref: str = ""

    @property
    def net_unit_price(self) -> Decimal:
        """The discounted unit price, rounded to ``PRICE_DIGITS``: the line's amount is ``quantity ×`` this
        rounded to the currency (``crm_sales.pricing``), and it is the unit price an ERP must receive."""
        from crm_sales.pricing import net_unit_price

        return net_unit_price(self.unit_price, self.discount_percent)


@dataclass(frozen=True)
class OrderRef:
    """A confirmed (or cancelled) order; ``reference`` is deterministic (``CRM-SO-<id>``)."""

    id: int
    reference: str
    state: str  # confirmed | cancelled
    person_id: int | None
    opportunity_id: int | None
    currency: str
    confirmed_at: dt.datetime
    untaxed: Decimal
    tax: Decimal
    total: Decimal
    owner_id: int | None
    lines: tuple[OrderLineRef, ...]


def _line(row: dict[str, Any]) -> OrderLineRef:
    return OrderLineRef(code=row["code"], description=row["description"], quantity=Decimal(row["quantity"]),
                        unit=row["unit"], unit_price=Decimal(row["unit_price"]),
                        discount_percent=Decimal(row["discount_percent"] or 0), tax_rate=Decimal(row["tax_rate"] or 0),
                        untaxed=Decimal(row["untaxed"]), tax=Decimal(row["tax"]), total=Decimal(row["total"]),
                        product_external_ref=row.get("product.external_ref") or "")


async def get_order(order_id: int) -> OrderRef | None:
    """The order with its lines in sequence, or None."""
    return (await get_orders([order_id])).get(order_id)


async def get_orders(order_ids: list[int], *, with_lines: bool = True) -> dict[int, OrderRef]:
    """Orders by id, each with its lines in sequence (two queries per 500 ids); unknown ids are left out.
    ``with_lines=False``: the headers only (``lines`` empty), one query per 5,000 ids — for reports over
    every order."""
    from core.bulk import any_of
    from crm_sales.models import Order, OrderLine

    out: dict[int, OrderRef] = {}
    ids = sorted(set(order_ids))
    chunk_size = _CHUNK if with_lines else 5000
    for start in range(0, len(ids), chunk_size):
        chunk = ids[start:start + chunk_size]
        rows = await Order.select().where(any_of(Order.id, chunk))
        if not rows:
            continue
        lines: dict[int, list[OrderLineRef]] = {int(r["id"]): [] for r in rows}
        if with_lines:
            for ln in await OrderLine.select(*OrderLine.all_columns(), OrderLine.product.external_ref).where(
                    OrderLine.order.is_in(list(lines))).order_by(OrderLine.sequence).order_by(OrderLine.id):
                lines[int(ln["order"])].append(_line(ln))
        for row in rows:
            out[int(row["id"])] = OrderRef(
                id=row["id"], reference=row["reference"] or f"CRM-SO-{row['id']}", state=row["state"],
                person_id=row["person"], opportunity_id=row["opportunity"], currency=row["currency"],
                confirmed_at=row["confirmed_at"], untaxed=Decimal(row["untaxed"]), tax=Decimal(row["tax"]),
                total=Decimal(row["total"]), owner_id=row["owner"], lines=tuple(lines[int(row["id"])]))
    return out


async def order_ids(*, state: str | None = None, person_id: int | None = None) -> list[int]:
    """Ids of the orders in ``state`` and/or of ``person_id`` (all orders without filters), ascending."""
    from crm_sales.models import Order

    query = Order.select(Order.id)
    if state is not None:
        query = query.where(Order.state == state)
    if person_id is not None:
        query = query.where(Order.person == person_id)
    return [int(r["id"]) for r in await query.order_by(Order.id)]


async def orders_by_reference(references: list[str]) -> dict[str, OrderRef]:
    """Orders by their reference (the ERP reconciliation's key); unknown references are left out."""
    from crm_sales.models import Order

    if not references:
        return {}
    rows = await Order.select(Order.id).where(Order.reference.is_in(list(references)))
    return {o.reference: o for o in (await get_orders([int(r["id"]) for r in rows])).values()}


def order_url(order_id: int) -> str:
    """The page of order ``order_id`` (it checks the viewer's access itself)."""
    from crm_sales.manifest import ADDON

    return f"{ADDON.mount}/orders/{order_id}"


@dataclass(frozen=True)
class NewOrderLine:
    """One line of an order recorded with :func:`create_order`; amounts are ``Decimal``, ``int`` or a decimal
    ``str`` (never ``float``), ``tax_rate`` a fraction (``"0.13"`` for 13 %)."""

    code: str
    description: str
    quantity: Decimal | int | str
    unit_price: Decimal | int | str
    tax_rate: Decimal | int | str = 0
    discount_percent: Decimal | int | str = 0
    unit: str = ""


async def create_order(*, person_id: int | None, currency: str, lines: Sequence[NewOrderLine],
                       owner_id: int | None = None) -> int:
    """Record an order confirmed outside the quote flow (a web shop, an import; test and bench data); its id.

    Written the way an accepted quote's order is: the order with reference ``CRM-SO-<id>``, its lines with
    figures rounded like a quote's (``crm_sales.pricing``), and ``crm_sales_order_confirmed`` in one
    transaction. Raises ``core.errors.ValidationError`` naming a field the pricing refuses.
    """
    from core import db, hooks
    from core.errors import ValidationError
    from core.security import audit
    from crm_sales.models import Order, OrderLine
    from crm_sales.pricing import QuoteLineInput, quote_totals

    if not lines:
        raise ValidationError({"lines": "an order needs at least one line"})
    inputs = [QuoteLineInput(ln.quantity, ln.unit_price, ln.discount_percent, ln.tax_rate) for ln in lines]
    totals = quote_totals(inputs, currency)
    async with db.atomic():
        rows = await Order.insert(Order(person=person_id, currency=currency, untaxed=totals.untaxed, tax=totals.tax,
                                        total=totals.total, owner=owner_id)).returning(Order.id)
        order_id = int(rows[0]["id"])
        await Order.update({Order.reference: f"CRM-SO-{order_id}"}).where(Order.id == order_id)
        await OrderLine.insert(*(
            OrderLine(order=order_id, sequence=seq * 10, code=ln.code, description=ln.description, unit=ln.unit,
                      quantity=given.quantity, unit_price=given.unit_price, discount_percent=given.discount_percent,
                      tax_rate=given.tax_rate, untaxed=fig.untaxed, tax=fig.tax, total=fig.total)
            for seq, (ln, given, fig) in enumerate(zip(lines, inputs, totals.lines, strict=True), start=1)))
        await audit.record("create", model=ORDER_MODEL, record_id=order_id, detail="recorded through crm_sales.api")
        await hooks.publish("crm_sales_order_confirmed", order_id=order_id)
    return order_id


async def create_lead(*, name: str, contact_name: str = "", company_name: str = "", email: str = "", phone: str = "",
                      language: str = "", source: str = "", utm_source: str = "", utm_medium: str = "",
                      utm_campaign: str = "") -> int:
    """Record a lead that came in outside the pages (a marketing capture form); its id.

    Checked and standardized like a typed lead (phone E.164, e-mail), audited and placed by the assignment
    rules (unplaced: the unassigned queue). Raises ``core.errors.ValidationError`` naming the field.
    """
    from crm_sales.leads import create_lead as create

    return await create(None, {"name": name, "contact_name": contact_name, "company_name": company_name,
                               "email": email, "phone": phone, "language": language, "source": source,
                               "utm_source": utm_source, "utm_medium": utm_medium, "utm_campaign": utm_campaign})


@dataclass(frozen=True)
class QuoteLineTax:
    """The tax of one line of a quote: ``index`` is the line's position (0-based, in sequence)."""

    index: int
    description: str
    tax_rate: Decimal  # a fraction: 0.13 for 13 %


async def quote_line_taxes(quote_id: int) -> tuple[QuoteLineTax, ...]:
    """The tax rate of each line of quote ``quote_id``, in sequence (empty for an unknown quote)."""
    from crm_sales.models import QuoteLine

    rows = await QuoteLine.select(QuoteLine.description, QuoteLine.tax_rate).where(
        QuoteLine.quote == quote_id).order_by(QuoteLine.sequence).order_by(QuoteLine.id)
    return tuple(QuoteLineTax(index=i, description=r["description"], tax_rate=Decimal(r["tax_rate"] or 0))
                 for i, r in enumerate(rows))


async def tax_rates_in_use() -> list[Decimal]:
    """Every tax rate the CRM may still quote or send to an ERP, ascending: those of active products, of the
    lines of draft and sent quotes and of confirmed orders' lines (normalized: ``0.13``, never ``0.1300``)."""
    from crm_sales.models import OrderLine, Product, QuoteLine

    found: set[Decimal] = set()
    queries = [
        Product.select(Product.tax_rate).where(Product.is_active == True).distinct(),  # noqa: E712
        QuoteLine.select(QuoteLine.tax_rate).where(QuoteLine.quote.state.is_in(["draft", "sent"])).distinct(),
        OrderLine.select(OrderLine.tax_rate).where(OrderLine.order.state == "confirmed").distinct(),
    ]
    for query in queries:
        for row in await query:
            found.add(_normal(Decimal(row["tax_rate"] or 0)))
    return sorted(found)


async def currencies_in_use() -> list[str]:
    """The currencies of draft and sent quotes and of confirmed orders, sorted."""
    from crm_sales.models import Order, Quote

    found: set[str] = set()
    for query in (Quote.select(Quote.currency).where(Quote.state.is_in(["draft", "sent"])).distinct(),
                  Order.select(Order.currency).where(Order.state == "confirmed").distinct()):
        found.update(str(row["currency"]) for row in await query)
    return sorted(found)


def _normal(rate: Decimal) -> Decimal:
    return rate.normalize() if rate else Decimal(0)
