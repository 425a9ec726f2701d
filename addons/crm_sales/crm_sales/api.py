"""The public surface of crm_sales: the only module other addons import (list ``crm_sales`` in depends).

Only ids and frozen dataclasses cross the boundary. Events: ``crm_sales_order_confirmed(order_id)``,
``crm_sales_order_cancelled(order_id)``, ``crm_sales_opportunity_won(opportunity_id)`` (see ``hookspecs.py``),
published inside the transaction that made the change. These functions act as the system, not as a user.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

ORDER_MODEL = "crm_sales.order"
QUOTE_MODEL = "crm_sales.quote"
OPPORTUNITY_MODEL = "crm_sales.opportunity"
PRODUCT_MODEL = "crm_sales.product"

__all__ = ["OPPORTUNITY_MODEL", "ORDER_MODEL", "PRODUCT_MODEL", "QUOTE_MODEL", "OrderLineRef", "OrderRef",
           "get_order", "get_orders", "order_ids", "orders_by_reference"]

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


async def get_orders(order_ids: list[int]) -> dict[int, OrderRef]:
    """Orders by id, each with its lines in sequence (two queries per 500 ids); unknown ids are left out."""
    from crm_sales.models import Order, OrderLine

    out: dict[int, OrderRef] = {}
    ids = sorted(set(order_ids))
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start:start + _CHUNK]
        rows = await Order.select().where(Order.id.is_in(chunk))
        if not rows:
            continue
        lines: dict[int, list[OrderLineRef]] = {int(r["id"]): [] for r in rows}
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
