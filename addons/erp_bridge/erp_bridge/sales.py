"""The one module that reads crm_sales orders, turning them into frozen values and ERP payloads.

crm_sales publishes no ``api.py`` yet, so this module reads its ``Order``/``OrderLine`` tables (the same
module path a ``LazyTableReference`` would import) and nothing else does. When crm_sales grows a public
order accessor, only this file changes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from erp_bridge.backends.base import Address, CustomerPayload, OrderLinePayload, OrderPayload

ORDER_MODEL = "crm_sales.order"
_PRICE = Decimal("0.0001")  # Tryton's unit_price digits (4): the discounted price we send


class PayloadError(Exception):
    """The CRM record cannot become an ERP document as it is (fix it in the CRM, then re-drive)."""


@dataclass(frozen=True)
class SalesLine:
    code: str
    description: str
    quantity: Decimal
    unit_price: Decimal
    discount_percent: Decimal


@dataclass(frozen=True)
class SalesOrder:
    id: int
    reference: str
    state: str  # confirmed | cancelled
    person_id: int | None
    currency: str
    order_date: dt.date
    untaxed: Decimal
    tax: Decimal
    total: Decimal
    owner_id: int | None
    lines: tuple[SalesLine, ...]


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    return value if isinstance(value, dt.date) else dt.date.today()


async def load_order(order_id: int) -> SalesOrder | None:
    from crm_sales.models import Order, OrderLine

    row = await Order.select().where(Order.id == order_id).first()
    if row is None:
        return None
    lines = await OrderLine.select().where(OrderLine.order == order_id).order_by(OrderLine.sequence).order_by(
        OrderLine.id)
    return SalesOrder(
        id=row["id"], reference=row["reference"] or f"CRM-SO-{row['id']}", state=row["state"],
        person_id=row["person"], currency=row["currency"], order_date=_date(row["confirmed_at"]),
        untaxed=Decimal(row["untaxed"]), tax=Decimal(row["tax"]), total=Decimal(row["total"]),
        owner_id=row["owner"],
        lines=tuple(SalesLine(code=ln["code"], description=ln["description"], quantity=Decimal(ln["quantity"]),
                              unit_price=Decimal(ln["unit_price"]),
                              discount_percent=Decimal(ln["discount_percent"] or 0)) for ln in lines))


async def orders_by_reference(references: list[str]) -> dict[str, SalesOrder]:
    from crm_sales.models import Order

    if not references:
        return {}
    rows = await Order.select(Order.id).where(Order.reference.is_in(references))
    out: dict[str, SalesOrder] = {}
    for r in rows:
        order = await load_order(int(r["id"]))
        if order is not None:
            out[order.reference] = order
    return out


async def order_ids(*, state: str | None = None, person_id: int | None = None) -> list[int]:
    from crm_sales.models import Order

    query = Order.select(Order.id)
    if state:
        query = query.where(Order.state == state)
    if person_id is not None:
        query = query.where(Order.person == person_id)
    return [int(r["id"]) for r in await query.order_by(Order.id)]


async def order_headers(ids: list[int]) -> dict[int, dict[str, Any]]:
    """id → reference, state, person, currency, amounts, confirmed_at (one query, for lists)."""
    from crm_sales.models import Order

    if not ids:
        return {}
    rows = await Order.select(Order.id, Order.reference, Order.state, Order.person, Order.currency, Order.untaxed,
                              Order.tax, Order.total, Order.confirmed_at).where(Order.id.is_in(ids))
    return {int(r["id"]): dict(r) for r in rows}


def _address(lines: tuple[str, ...]) -> Address | None:
    """crm_contacts gives ``(line1, line2, "postcode province city", country)`` with empty parts left out."""
    parts = list(lines)
    if not parts:
        return None
    country = parts.pop() if len(parts) > 1 and len(parts[-1]) == 2 and parts[-1].isalpha() else None
    street = parts.pop(0) if parts else None
    return Address(street=street, city=" ".join(parts) or None, country_code=country.upper() if country else None)


async def build_payload(order: SalesOrder) -> OrderPayload:
    """The ERP order for ``order``; ``PayloadError`` names what must be fixed in the CRM first."""
    from crm_contacts.api import get_contact, get_organization

    if order.person_id is None:
        raise PayloadError(f"order {order.reference} has no customer")
    person = await get_contact(order.person_id)
    # the invoiced party is the company when the buyer belongs to one, else the person
    customer = await get_organization(person.organization_id) if person.organization_id else person
    address = _address(customer.address_lines) or _address(person.address_lines)
    if address is None:
        raise PayloadError(f"customer {customer.display_name!r} of order {order.reference} has no postal address: "
                           "add one in the CRM, then re-drive")
    if not order.lines:
        raise PayloadError(f"order {order.reference} has no lines")
    missing = [ln.description or "?" for ln in order.lines if not ln.code]
    if missing:
        raise PayloadError(f"order {order.reference}: line(s) without a product code: {', '.join(missing)}")
    prefix = "CRM-O" if customer.kind == "organization" else "CRM-C"
    lines = tuple(OrderLinePayload(
        product_code=ln.code, description=ln.description or ln.code, quantity=ln.quantity,
        unit_price=(ln.unit_price * (1 - ln.discount_percent / 100)).quantize(_PRICE)) for ln in order.lines)
    return OrderPayload(
        ref=order.reference,
        customer=CustomerPayload(ref=f"{prefix}-{customer.id}", name=customer.display_name,
                                 email=customer.email or None, phone=customer.phone or None,
                                 lang=person.language or None, address=address),
        currency=order.currency, order_date=order.order_date, lines=lines,
        untaxed=order.untaxed, tax=order.tax, total=order.total)


def payload_hash(payload: OrderPayload) -> str:
    """A stable digest of what was sent: an edit made while the order was in flight changes it."""
    return hashlib.sha256(json.dumps(asdict(payload), sort_keys=True, default=str).encode()).hexdigest()
