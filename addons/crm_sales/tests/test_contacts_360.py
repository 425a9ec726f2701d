"""What crm_sales contributes to the contact's 360° page, and merges re-pointing this addon's records."""

from __future__ import annotations

from typing import Any

from crm_contacts.api import PERSON_MODEL
from crm_sales import acceptance, activities, notify, quotes
from crm_sales.models import Activity, Opportunity, Order
from sales_helpers import new_deal

from core import hooks


async def test_panel_and_timeline_show_deals_quotes_orders_and_activities(org: Any) -> None:
    rep = await org.acc("rep1")
    opp_id = await new_deal(rep, "Servers", email="p@example.com")
    person = (await Opportunity.select(Opportunity.person).where(Opportunity.id == opp_id).first())["person"]
    await activities.create_activity(rep, {"subject": "Call", "opportunity": opp_id, "due_at": notify.now()})
    quote_id = await quotes.create_quote(rep, opp_id, [{"description": "x", "quantity": "1", "unit_price": "5"}])
    await acceptance.send(rep, quote_id)
    await acceptance.accept(quote_id, by="P", via="link")
    panels = await hooks.collect(org.runtime.plugins, "crm_record_panels", model=PERSON_MODEL, record_id=person,
                                   access=rep)
    panel = next(p for p in panels if p.key == "crm_sales")
    assert panel.count == 1 and len(panel.context["quotes"]) == 1 and len(panel.context["orders"]) == 1
    entries = await hooks.collect(org.runtime.plugins, "crm_timeline_entries", model=PERSON_MODEL,
                                    record_id=person, access=rep)
    kinds = {e.kind for e in entries if e.source == "crm_sales"}
    assert {"deal", "deal_won", "quote", "order", "activity_todo"} <= kinds
    # another rep sees nothing of rep1's deals on the same contact page
    other = await org.acc("rep3")
    hidden = await hooks.collect(org.runtime.plugins, "crm_record_panels", model=PERSON_MODEL,
                                   record_id=person, access=other)
    assert next(p for p in hidden if p.key == "crm_sales").count == 0


async def test_merge_repoints_deals_orders_and_activities(org: Any) -> None:
    rep = await org.acc("rep1")
    keep = await new_deal(rep, "Keep", email="keep@example.com", contact="Keep Person")
    lose = await new_deal(rep, "Lose", email="lose@example.com", contact="Other Person")
    survivor = (await Opportunity.select(Opportunity.person).where(Opportunity.id == keep).first())["person"]
    loser = (await Opportunity.select(Opportunity.person).where(Opportunity.id == lose).first())["person"]
    assert survivor != loser
    await activities.create_activity(rep, {"subject": "Meet", "opportunity": lose, "due_at": notify.now(),
                                           "person": loser})
    quote_id = await quotes.create_quote(rep, lose, [{"description": "x", "quantity": "1", "unit_price": "5"}])
    await acceptance.send(rep, quote_id)
    order_id = await acceptance.accept(quote_id, by="P", via="link")
    await hooks.collect(org.runtime.plugins, "crm_merge_records", model=PERSON_MODEL, survivor_id=survivor,
                          loser_ids=[loser])
    assert (await Opportunity.select(Opportunity.person).where(Opportunity.id == lose).first())["person"] == survivor
    assert (await Order.select(Order.person).where(Order.id == order_id).first())["person"] == survivor
    assert await Activity.count().where(Activity.person == loser) == 0
