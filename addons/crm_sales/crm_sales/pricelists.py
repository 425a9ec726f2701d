"""Which unit price a quote line gets: the customer group's price list, else the general one, else list price.

A price list applies when it is active, in the quote's currency and valid on the quote date (``valid_from``
/ ``valid_to`` inclusive, either open). Within a list, the item with the largest ``min_quantity`` not above
the line's quantity wins (volume tiers). A list for the customer's group beats a general list (group ``""``);
between two lists of the same rank the one starting later wins (a new campaign overrides the standing list).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from crm_sales.models import PriceList, PriceListItem, Product


def _valid(row: dict[str, Any], on: dt.date) -> bool:
    return (row["valid_from"] is None or row["valid_from"] <= on) and (row["valid_to"] is None or on <= row["valid_to"])


async def price_for(product_id: int, *, customer_group: str = "", on: dt.date | None = None,
                    quantity: Decimal = Decimal(1), currency: str = "CNY") -> Decimal:
    on = on or dt.date.today()
    groups = [customer_group, ""] if customer_group else [""]
    lists = [r for r in await PriceList.select().where(
        (PriceList.is_active == True) & (PriceList.currency == currency)  # noqa: E712
        & PriceList.customer_group.is_in(groups)) if _valid(r, on)]
    lists.sort(key=lambda r: (r["customer_group"] == "", -(r["valid_from"] or dt.date.min).toordinal()))
    for plist in lists:
        items = await PriceListItem.select(PriceListItem.price, PriceListItem.min_quantity).where(
            (PriceListItem.price_list == plist["id"]) & (PriceListItem.product == product_id))
        tiers = [i for i in items if Decimal(i["min_quantity"]) <= quantity]
        if tiers:
            return Decimal(max(tiers, key=lambda i: Decimal(i["min_quantity"]))["price"])
    product = await Product.select(Product.list_price).where(Product.id == product_id).first()
    return Decimal(product["list_price"]) if product else Decimal(0)
