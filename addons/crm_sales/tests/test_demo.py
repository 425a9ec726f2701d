"""The demo data installs, and is rich enough for the scoring model and the forecast to show something real."""

from __future__ import annotations

from typing import Any

from crm_sales import forecast, win
from crm_sales.models import Opportunity, Order, OrderLine, Product, Quote, QuoteLine, StageHistory

from core import data, lifecycle
from core.discovery import discover
from core.security.models import User
from core.security.users import create_user


async def test_demo_pipeline_trains_the_model_and_feeds_the_forecast(crm_boot: Any) -> None:
    await crm_boot()  # kernel only: demo users first, as `crm demo` does
    for role in ("sales_rep", "sales_manager"):
        user_id = await create_user(role, role.title(), "Demo-Pass-2026!", roles=[role])
        await data.bind("core", f"user_{role}", User, user_id)
    await lifecycle.install(["crm_sales"], discover(), demo=True)
    await crm_boot()
    assert await Product.count() == 8
    won = await Opportunity.count().where(Opportunity.state == "won")
    lost = await Opportunity.count().where(Opportunity.state == "lost")
    assert won >= 20 and lost >= 20
    assert await StageHistory.count() > await Opportunity.count()
    quote = await Quote.select().where(Quote.state == "sent").first()
    lines = await QuoteLine.select(QuoteLine.total).where(QuoteLine.quote == quote["id"])
    assert sum(line["total"] for line in lines) == quote["total"]
    # the demo portal customer's accepted quote is their order, lines and totals copied
    order = await Order.select(Order.id, Order.quote, Order.person, Order.total, Order.opportunity.person).where(
        Order.reference == "CRM-SO-DEMO-1").first()
    assert order["person"] == order["opportunity.person"]
    assert order["total"] == (await Quote.select(Quote.total).where(Quote.id == order["quote"]).first())["total"]
    assert await OrderLine.count().where(OrderLine.order == order["id"]) == await QuoteLine.count().where(
        QuoteLine.quote == order["quote"])
    # every won deal was ordered, on the day it was won: "orders by month" has months to show
    assert await Order.count().where(Order.opportunity.state == "won") == won
    assert await Quote.exists().where((Quote.state == "sent") & (Quote.opportunity.person == order["person"]))
    model = await win.train()
    assert model.n_samples == won + lost
    assert await win.rescore(model) == await Opportunity.count().where(Opportunity.state == "open")
    referral = model.effect("source", "referral")
    cold = model.effect("source", "cold call")
    assert referral is not None and cold is not None and referral > 0 > cold
    from core.security import access, principal

    manager = await User.select(User.id).where(User.login == "sales_manager").first()
    who = await principal.load(manager["id"], implied=access.policy().implied)
    result = await forecast.forecast(access.Access(who), months=6)
    assert any(cell.weighted > 0 for cell in result.cells.values())
