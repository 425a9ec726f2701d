"""crm_marketing with crm_sales installed: a campaign's revenue is the confirmed orders, in its currency, of
people who clicked it (counted clicks) in the 30 days before ordering, read through the kernel's dataset
``crm_sales.orders`` with the viewer's rights (crm_marketing never imports crm_sales). The figure is checked
against a sum computed here from the rows, and a role that may not read orders gets no revenue, not a loss."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from crm_contacts.models import Person
from crm_marketing import campaigns, roi
from crm_marketing.models import Campaign, CampaignEvent, CampaignRecipient
from crm_sales.api import NewOrderLine, create_order
from crm_sales.models import Order

from core.security.access import Access, policy
from core.security.principal import load
from core.testing import make_user


async def _person(name: str) -> int:
    row = Person(name=name, email=f"{name}@example.cn", email_key=f"{name}@example.cn")
    await row.save()
    return int(row.id)


async def _order(person: int, amount: str, at: dt.datetime, currency: str = "CNY", state: str = "confirmed") -> int:
    order_id = await create_order(person_id=person, currency=currency, lines=[NewOrderLine("X", "x", 1, amount)])
    await Order.update({Order.confirmed_at: at, Order.state: state}).where(Order.id == order_id)
    return order_id


async def test_revenue_and_roi_follow_the_orders_of_people_who_clicked(crm_boot: Any) -> None:
    await crm_boot("crm_marketing", "crm_sales")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    clicker, late, opener = await _person("clicker"), await _person("late"), await _person("opener")
    campaign = int((await Campaign.insert(Campaign(name="C", cost=Decimal("1000"), state="sent")))[0]["id"])
    recipients = {}
    for person in (clicker, late, opener):
        rows = await CampaignRecipient.insert(
            CampaignRecipient(
                campaign=campaign,
                person=person,
                email="x@example.cn",
                state="sent",
                sent_at=now - dt.timedelta(days=40),
            )
        )
        recipients[person] = int(rows[0]["id"])
    clicks = {clicker: now - dt.timedelta(days=20), late: now - dt.timedelta(days=35)}
    for person, at in clicks.items():
        await CampaignEvent.insert(CampaignEvent(campaign=campaign, recipient=recipients[person], kind="click", at=at))
    await CampaignEvent.insert(
        CampaignEvent(
            campaign=campaign,
            recipient=recipients[opener],
            kind="click",
            at=now - dt.timedelta(days=20),
            is_scanner=True,
        )
    )  # not counted
    await _order(clicker, "1500", now - dt.timedelta(days=10))  # counted
    await _order(clicker, "700", now - dt.timedelta(days=25))  # before the click
    await _order(clicker, "90", now - dt.timedelta(days=5), "USD")  # another currency
    await _order(clicker, "300", now - dt.timedelta(days=9), state="cancelled")
    await _order(late, "400", now - dt.timedelta(days=1))  # 34 days after the click
    await _order(opener, "800", now - dt.timedelta(days=10))  # only a scanner clicked

    # the same rule, computed here from the rows
    expected = Decimal(0)
    for order in await Order.select().where(Order.state == "confirmed"):
        at = clicks.get(order["person"])
        if at is not None and order["currency"] == "CNY" and at <= order["confirmed_at"] < at + dt.timedelta(days=30):
            expected += order["total"]
    assert expected == Decimal("1500")

    admin = Access(await load(await make_user("boss", "admin"), implied=policy().implied))
    figures = await roi.figures(campaign, admin)
    assert figures["revenue"] == expected and figures["roi"] == Decimal("0.5")
    marketing = Access(await load(await make_user("mk", "marketing"), implied=policy().implied))
    mine = await roi.figures(campaign, marketing)
    assert mine["revenue"] is None and mine["roi"] is None and mine["clicks"] == 2

    # the ROI dataset crm_marketing contributes (the marketing dashboard's card) agrees with the page, as each
    # viewer: the administrator's figures, a rep's over the orders they own, none for a role without orders
    from crm_marketing import returns

    from core import datasets
    from core.errors import NotFound

    await returns.refresh()
    query = datasets.Query(returns.DATASET, ("campaign",), ("revenue", "cost", "roi", "orders"))
    [row] = (await datasets.run(admin, query)).rows
    assert (row["campaign"], row["revenue"], row["cost"], row["roi"], row["orders"]) == (
        campaign, figures["revenue"], figures["cost"], figures["roi"].quantize(Decimal("0.0001")), 1)
    rep_id = await make_user("rep", "sales_rep")
    rep = Access(await load(rep_id, implied=policy().implied))
    assert (await datasets.run(rep, query)).rows == [] and (await roi.figures(campaign, rep))["revenue"] == 0
    await Order.update({Order.owner: rep_id}).where(Order.total == Decimal("1500"))
    await returns.refresh([campaign])
    [row] = (await datasets.run(rep, query)).rows
    assert row["revenue"] == (await roi.figures(campaign, rep))["revenue"] == Decimal("1500")
    with pytest.raises(NotFound):
        await datasets.run(marketing, query)
    # a new cost reaches the rows at once (the page reads it live)
    await campaigns.save(admin, {"name": "C", "subject_en": "Hi", "cost": "3000", "currency": "CNY"}, campaign)
    [row] = (await datasets.run(admin, query)).rows
    assert row["cost"] == Decimal("3000.00") and row["roi"] == Decimal("-0.5000")
