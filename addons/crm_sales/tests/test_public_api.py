"""crm_sales.api as other addons use it: orders recorded outside the quote flow, and the order page's URL."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from core.errors import ValidationError
from core.hooks import hookimpl


class ConfirmedListener:
    def __init__(self) -> None:
        self.seen: list[int] = []

    @hookimpl
    def crm_sales_order_confirmed(self, order_id: int) -> None:
        self.seen.append(order_id)


async def test_create_order_rounds_like_a_quote_and_publishes_confirmation(crm_boot: Any) -> None:
    from crm_contacts.api import find_or_create_person
    from crm_sales.api import NewOrderLine, create_order, get_order, order_url

    from core.runtime import current

    runtime = await crm_boot("crm_sales")
    listener = ConfirmedListener()
    current().plugins.register(listener)
    person, _ = await find_or_create_person(name="Li Lei", email="li@example.org")
    order_id = await create_order(person_id=person.id, currency="CNY", lines=[
        NewOrderLine(code="P-001", description="Widget", quantity="2", unit_price="100.00", tax_rate="0.13"),
        NewOrderLine(code="P-003", description="Gadget", quantity=3, unit_price="19.99", tax_rate="0.13",
                     discount_percent="10", unit="pc")])
    order = await get_order(order_id)
    assert order is not None and listener.seen == [order_id]
    assert (order.reference, order.state, order.person_id, order.currency) == (
        f"CRM-SO-{order_id}", "confirmed", person.id, "CNY")
    assert [(ln.code, ln.untaxed, ln.tax, ln.total) for ln in order.lines] == [
        ("P-001", Decimal("200.00"), Decimal("26.00"), Decimal("226.00")),
        ("P-003", Decimal("53.97"), Decimal("7.02"), Decimal("60.99"))]  # 59.97 less 10 %, tax on the rounded
    assert (order.untaxed, order.tax, order.total) == (Decimal("253.97"), Decimal("33.02"), Decimal("286.99"))
    assert order_url(order_id) == f"/sales/orders/{order_id}"
    assert runtime.addon("crm_sales").mount == "/sales"
    for bad, field in (([], "lines"), ([NewOrderLine(code="X", description="x", quantity=1, unit_price=1.5)],
                                       "unit_price")):
        with pytest.raises(ValidationError) as refused:
            await create_order(person_id=None, currency="CNY", lines=bad)
        assert field in refused.value.fields
    assert listener.seen == [order_id]
