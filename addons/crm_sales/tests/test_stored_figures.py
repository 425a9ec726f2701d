"""Issue 17 §3: what a quote or an order stores is what its figures were computed from — a value with more
decimals than its column keeps is refused (422 naming the field), so a stored line always recomputes to its
stored figures, and the order keeps the quote's."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from crm_sales import acceptance, quotes
from crm_sales.api import get_order
from crm_sales.models import QuoteLine
from crm_sales.pricing import QuoteLineInput, line_totals
from sales_helpers import new_deal

from core.errors import ValidationError
from core.security.sessions import create_token

ISSUE_LINE = {"description": "Cable", "quantity": "1000", "unit_price": "0.9999", "tax_rate": "0.13"}


async def test_a_discount_with_more_decimals_than_stored_is_refused(org: Any) -> None:
    rep = await org.acc("rep1")
    opp = await new_deal(rep, "Cables", email="buyer@example.com")
    with pytest.raises(ValidationError) as info:
        await quotes.create_quote(rep, opp, [{**ISSUE_LINE, "discount_percent": "12.345"}])
    assert set(info.value.fields) == {"discount_percent"}
    quote_id = await quotes.create_quote(rep, opp, [{**ISSUE_LINE, "discount_percent": "12.35"}])
    (line,) = await QuoteLine.select().where(QuoteLine.quote == quote_id)
    assert (Decimal(line["untaxed"]), Decimal(line["tax"])) == (Decimal("876.40"), Decimal("113.93"))
    again = line_totals(QuoteLineInput(line["quantity"], line["unit_price"], line["discount_percent"],
                                       line["tax_rate"]), "CNY")
    assert (again.untaxed, again.tax, again.total) == (line["untaxed"], line["tax"], line["total"])
    await acceptance.send(rep, quote_id)
    order = await get_order(await acceptance.accept(quote_id, by="Buyer", via="test"))
    assert order is not None
    (ordered,) = order.lines
    assert ordered.net_unit_price == Decimal("0.8764") and ordered.untaxed == Decimal("876.40")
    assert (order.untaxed, order.tax, order.total) == (Decimal("876.40"), Decimal("113.93"), Decimal("990.33"))


async def test_the_api_names_the_field_with_too_many_decimals(crm_client: Any) -> None:
    from sales_helpers import build_org

    from core.runtime import current

    client = await crm_client("crm_sales")
    org = await build_org(current())
    headers = {"Authorization": f"Bearer {await create_token(org.ids['rep1'], 'test', roles=['sales_rep'])}"}
    opp = await new_deal(await org.acc("rep1"), "Cables", email="buyer@example.com")
    for field, value in (("discount_percent", "12.345"), ("quantity", "1.00001"), ("unit_price", "0.99999"),
                         ("tax_rate", "0.12345")):
        answer = await client.post("/api/sales/quotes", headers=headers, json={
            "opportunity": opp, "lines": [{**ISSUE_LINE, field: value}]})
        assert answer.status_code == 422, answer.text
        assert list(answer.json()["error"]["fields"]) == [field] and "decimal places" in answer.text
