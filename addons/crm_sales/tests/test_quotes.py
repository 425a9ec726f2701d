"""Quotes: totals, revisions, the acceptance link (expiry, tampering, revocation), acceptance → order → event."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from crm_sales import acceptance, quotes
from crm_sales.models import Opportunity, Order, OrderLine, Product, Quote, QuoteLine
from sales_helpers import new_deal

from core.errors import Conflict, NotFound, ValidationError
from core.hooks import hookimpl

LINES = [{"description": "机架式服务器 Rack server", "quantity": "2", "unit_price": "48500.00",
          "discount_percent": "5", "tax_rate": "0.13"},
         {"description": "Installation", "quantity": "1", "unit_price": "999.99", "tax_rate": "0.06"}]


async def _quote(org: Any, lines: list[dict[str, Any]] = LINES) -> tuple[Any, int, int]:
    rep = await org.acc("rep1")
    opp_id = await new_deal(rep, "Servers", email="buyer@example.com", language="en")
    return rep, opp_id, await quotes.create_quote(rep, opp_id, lines)


async def test_totals_are_stored_rounded_per_line(org: Any) -> None:
    _, _, quote_id = await _quote(org)
    quote = await Quote.select().where(Quote.id == quote_id).first()
    # 2 × 48500 × 0.95 = 92150.00, tax 11979.50; 999.99, tax 60.00 (59.9994 rounded per line)
    assert Decimal(quote["untaxed"]) == Decimal("93149.99")
    assert Decimal(quote["tax"]) == Decimal("12039.50")
    assert Decimal(quote["total"]) == Decimal("105189.49")
    assert quote["number"] == f"Q{quote_id:05d}" and quote["language"] == "en"


async def test_product_fills_line_and_bad_input_is_refused(org: Any) -> None:
    rows = await Product.insert(Product(code="SRV-1", name="Server", unit="台", list_price=Decimal("100.00"),
                                        tax_rate=Decimal("0.13"))).returning(Product.id)
    _, _, quote_id = await _quote(org, [{"product": rows[0]["id"], "quantity": "3"}])
    line = await QuoteLine.select().where(QuoteLine.quote == quote_id).first()
    assert (line["code"], line["unit"], Decimal(line["total"])) == ("SRV-1", "台", Decimal("339.00"))
    rep = await org.acc("rep1")
    with pytest.raises(ValidationError):
        await quotes.update_draft(rep, quote_id, [{"description": "x", "quantity": "-1", "unit_price": "1"}])


async def test_revising_a_sent_quote_keeps_v1_and_kills_its_link(org: Any) -> None:
    rep, _, quote_id = await _quote(org)
    sent = await acceptance.send(rep, quote_id)
    token = sent["accept_url"].rsplit("/", 1)[1]
    assert (await acceptance.quote_for_token(token))["id"] == quote_id
    with pytest.raises(ValidationError):
        await quotes.update_draft(rep, quote_id, notes="edit after sending")
    v2 = await quotes.revise(rep, quote_id)
    old = await Quote.select().where(Quote.id == quote_id).first()
    new = await Quote.select().where(Quote.id == v2).first()
    assert (old["revision"], new["revision"], new["number"]) == (1, 2, old["number"])
    assert old["state"] == "sent" and old["is_superseded"] and new["state"] == "draft"
    assert await QuoteLine.count().where(QuoteLine.quote == v2) == 2
    with pytest.raises(NotFound):
        await acceptance.quote_for_token(token)


async def test_tampered_and_expired_tokens_are_refused(org: Any) -> None:
    rep, _, quote_id = await _quote(org)
    token = (await acceptance.send(rep, quote_id))["accept_url"].rsplit("/", 1)[1]
    payload, _, signature = token.rpartition(".")
    forged = payload + "." + ("A" if signature[0] != "A" else "B") + signature[1:]
    for bad in (forged, token[:-2], "garbage", token + "x"):
        with pytest.raises(NotFound):
            await acceptance.quote_for_token(bad)
    # a correctly signed token for another quote id is still refused: its hash is not the quote's
    other = acceptance.make_token(quote_id + 1000, dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    with pytest.raises(NotFound):
        await acceptance.quote_for_token(other)
    expired = acceptance.make_token(quote_id, dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    await Quote.update({Quote.token_hash: acceptance._hash(expired)}).where(Quote.id == quote_id)
    with pytest.raises(NotFound, match="expired"):
        await acceptance.quote_for_token(expired)


class Listener:
    """A real event listener, registered like an addon's hooks module would be."""

    def __init__(self, fail: bool = False) -> None:
        self.seen: list[tuple[int, int]] = []
        self.fail = fail

    @hookimpl(optionalhook=True)
    async def crm_sales_order_confirmed(self, order_id: int) -> None:
        # inside the publisher's transaction: the order is visible to the listener
        count = await OrderLine.count().where(OrderLine.order == order_id)
        self.seen.append((order_id, count))
        if self.fail:
            raise RuntimeError("listener refused")


async def test_acceptance_creates_order_wins_deal_and_publishes_once(org: Any) -> None:
    listener = Listener()
    org.runtime.plugins.register(listener)
    rep, opp_id, quote_id = await _quote(org)
    token = (await acceptance.send(rep, quote_id))["accept_url"].rsplit("/", 1)[1]
    quote = await acceptance.quote_for_token(token)
    order_id = await acceptance.accept(quote["id"], by="Li Lei", via="link")
    order = await Order.select().where(Order.id == order_id).first()
    assert order["reference"] == f"CRM-SO-{order_id}" and order["state"] == "confirmed"
    assert Decimal(order["total"]) == Decimal("105189.49")
    lines = await OrderLine.select().where(OrderLine.order == order_id).order_by(OrderLine.sequence)
    assert [ln["description"] for ln in lines] == [ln["description"] for ln in LINES]
    opp = await Opportunity.select(Opportunity.state, Opportunity.probability).where(Opportunity.id == opp_id).first()
    assert (opp["state"], opp["probability"]) == ("won", 100)
    assert listener.seen == [(order_id, 2)]
    assert await acceptance.accept(quote_id, by="Li Lei", via="link") == order_id  # replay: same order
    assert listener.seen == [(order_id, 2)]
    # the customer's copy of what they accepted: the link still opens it (the page and the PDF), read-only
    assert (await acceptance.quote_for_token(token))["state"] == "accepted"
    with pytest.raises(Conflict):
        await acceptance.decline(quote_id, by="Li Lei")


async def test_a_failing_listener_rolls_the_acceptance_back(org: Any) -> None:
    org.runtime.plugins.register(Listener(fail=True))
    rep, opp_id, quote_id = await _quote(org)
    await acceptance.send(rep, quote_id)
    with pytest.raises(RuntimeError):
        await acceptance.accept(quote_id, by="Han Meimei", via="link")
    assert await Order.count() == 0
    assert (await Quote.select(Quote.state).where(Quote.id == quote_id).first())["state"] == "sent"
    assert (await Opportunity.select(Opportunity.state).where(Opportunity.id == opp_id).first())["state"] == "open"


async def test_decline_and_expiry(org: Any) -> None:
    rep, _, quote_id = await _quote(org)
    await acceptance.send(rep, quote_id)
    await acceptance.decline(quote_id, by="Buyer", reason="budget")
    assert (await Quote.select(Quote.state).where(Quote.id == quote_id).first())["state"] == "declined"
    _, _, other = await _quote(org)
    await acceptance.send(rep, other)
    await Quote.update({Quote.valid_until: dt.date.today() - dt.timedelta(days=1)}).where(Quote.id == other)
    with pytest.raises(Conflict):
        await acceptance.accept(other, by="Late buyer", via="link")
    assert (await Quote.select(Quote.state).where(Quote.id == other).first())["state"] == "expired"


async def test_public_api_order_ref_and_cancel_event(org: Any) -> None:
    from crm_sales import api

    from core.hooks import hookimpl as impl

    cancelled: list[int] = []

    class CancelListener:
        @impl(optionalhook=True)
        def crm_sales_order_cancelled(self, order_id: int) -> None:
            cancelled.append(order_id)

    org.runtime.plugins.register(CancelListener())
    rep, opp_id, quote_id = await _quote(org)
    await acceptance.send(rep, quote_id)
    order_id = await acceptance.accept(quote_id, by="Li", via="link")
    ref = await api.get_order(order_id)
    assert ref is not None and ref.reference == f"CRM-SO-{order_id}" and len(ref.lines) == 2
    assert sum(line.total for line in ref.lines) == ref.total == Decimal("105189.49")
    assert (await api.orders_by_reference([ref.reference, "CRM-SO-0"])).keys() == {ref.reference}
    await acceptance.cancel_order(await org.acc("manager"), order_id)
    assert cancelled == [order_id]
    assert (await api.get_order(order_id)).state == "cancelled"
