"""The one module that reads crm_sales orders (through ``crm_sales.api``) and turns them into ERP payloads."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict
from decimal import Decimal

from crm_sales.api import ORDER_MODEL, OrderRef, get_order, get_orders, order_ids

from erp_bridge import taxes
from erp_bridge.backends.base import Address, CustomerPayload, OrderLinePayload, OrderPayload

__all__ = ["ORDER_MODEL", "OrderRef", "PayloadError", "build_payload", "get_orders", "line_payloads", "load_order",
           "order_ids", "payload_hash"]


class PayloadError(Exception):
    """The CRM record cannot become an ERP document as it is (fix it in the CRM, then re-drive)."""


def _date(value: dt.datetime | dt.date | None) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    return value if isinstance(value, dt.date) else dt.date.today()


async def load_order(order_id: int) -> OrderRef | None:
    return await get_order(order_id)


def _address(lines: tuple[str, ...]) -> Address | None:
    """crm_contacts gives ``(line1, line2, "postcode province city", country)`` with empty parts left out."""
    parts = list(lines)
    if not parts:
        return None
    country = parts.pop() if len(parts) > 1 and len(parts[-1]) == 2 and parts[-1].isalpha() else None
    street = parts.pop(0) if parts else None
    return Address(street=street, city=" ".join(parts) or None, country_code=country.upper() if country else None)


async def build_payload(order: OrderRef) -> OrderPayload:
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
    lines = line_payloads(order, await taxes.load())
    return OrderPayload(
        ref=order.reference,
        customer=CustomerPayload(ref=f"{prefix}-{customer.id}", name=customer.display_name,
                                 email=customer.email or None, phone=customer.phone or None,
                                 lang=person.language or None, address=address),
        currency=order.currency, order_date=_date(order.confirmed_at), lines=lines,
        untaxed=order.untaxed, tax=order.tax, total=order.total)


def line_payloads(order: OrderRef, mapping: dict[Decimal, taxes.Mapped]) -> tuple[OrderLinePayload, ...]:
    """The ERP lines of ``order``: the net unit price the CRM computed each line from (``crm_sales.pricing``:
    rounded to the ERP's price digits, so the ERP's quantity × price, rounded, is the CRM's line amount) and the
    ERP taxes its tax rate is mapped to (``erp_bridge.taxes``; ``mapping`` as ``taxes.load()`` returns it)."""
    unmapped = sorted({taxes.key(ln.tax_rate) for ln in order.lines} - set(mapping))
    if unmapped:
        rates = ", ".join(taxes.percent(r) for r in unmapped)
        raise PayloadError(f"order {order.reference}: tax rate {rates} has no ERP tax mapped: map it (Settings → ERP "
                           "tax mapping, or crm erp taxes map), then re-drive")
    return tuple(OrderLinePayload(
        product_code=ln.code, description=ln.description or ln.code, quantity=ln.quantity,
        unit_price=ln.net_unit_price, taxes=mapping[taxes.key(ln.tax_rate)].taxes) for ln in order.lines)


def payload_hash(payload: OrderPayload) -> str:
    """A stable digest of what was sent: an edit made while the order was in flight changes it."""
    return hashlib.sha256(json.dumps(asdict(payload), sort_keys=True, default=str).encode()).hexdigest()
