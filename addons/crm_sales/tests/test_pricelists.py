"""Price lists: customer group before general, validity dates, volume tiers, currency; list price otherwise."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from crm_sales import quotes
from crm_sales.models import PriceList, PriceListItem, Product, QuoteLine
from crm_sales.pricelists import price_for
from sales_helpers import new_deal

TODAY = dt.date(2026, 6, 15)


async def _list(name: str, group: str = "", currency: str = "CNY", **kw: Any) -> int:
    rows = await PriceList.insert(PriceList(name=name, customer_group=group, currency=currency, **kw)).returning(
        PriceList.id)
    return int(rows[0]["id"])


async def _item(plist: int, product: int, price: str, min_qty: str = "1") -> None:
    await PriceListItem.insert(PriceListItem(price_list=plist, product=product, price=Decimal(price),
                                             min_quantity=Decimal(min_qty)))


async def test_price_resolution_order(org: Any) -> None:
    rows = await Product.insert(Product(code="P1", name="Widget", list_price=Decimal("100.00"))).returning(Product.id)
    product = int(rows[0]["id"])
    assert await price_for(product, on=TODAY) == Decimal("100.00")
    general = await _list("General")
    await _item(general, product, "95.00")
    await _item(general, product, "90.00", min_qty="10")
    vip = await _list("VIP 2026", group="vip", valid_from=dt.date(2026, 1, 1), valid_to=dt.date(2026, 6, 30))
    await _item(vip, product, "80.00")
    usd = await _list("USD", currency="USD")
    await _item(usd, product, "14.00")
    assert await price_for(product, on=TODAY) == Decimal("95.00")
    assert await price_for(product, on=TODAY, quantity=Decimal(12)) == Decimal("90.00")
    assert await price_for(product, customer_group="vip", on=TODAY) == Decimal("80.00")
    assert await price_for(product, customer_group="vip", on=dt.date(2026, 7, 1)) == Decimal("95.00")  # expired
    assert await price_for(product, customer_group="other", on=TODAY) == Decimal("95.00")
    assert await price_for(product, on=TODAY, currency="USD") == Decimal("14.00")
    await PriceList.update({PriceList.is_active: False}).where(PriceList.id == general)
    assert await price_for(product, on=TODAY) == Decimal("100.00")


async def test_quote_line_takes_the_group_price(org: Any) -> None:
    rows = await Product.insert(Product(code="P2", name="Gadget", list_price=Decimal("50.00"),
                                        tax_rate=Decimal("0.13"))).returning(Product.id)
    vip = await _list("VIP", group="vip")
    await _item(vip, int(rows[0]["id"]), "40.00")
    rep = await org.acc("rep1")
    opp_id = await new_deal(rep, "Gadgets")
    quote_id = await quotes.create_quote(rep, opp_id, [{"product": rows[0]["id"], "quantity": "2"}],
                                         customer_group="vip")
    line = await QuoteLine.select().where(QuoteLine.quote == quote_id).first()
    assert Decimal(line["unit_price"]) == Decimal("40.00") and Decimal(line["total"]) == Decimal("90.40")
