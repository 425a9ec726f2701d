"""The kernel's record timeline on the sales pages: a deal's stage moves in words, in the reader's language (the
stage's own Chinese name), and the timeline on the lead, quote and contact pages."""

from __future__ import annotations

import re
from typing import Any

from crm_sales import pipeline, quotes
from crm_sales.models import Lead, Opportunity, PipelineStage
from sales_helpers import build_org, new_deal

from core.security.models import User
from core.testing import login_client


async def _stage(key: str) -> int:
    return int((await PipelineStage.select(PipelineStage.id).where(PipelineStage.key == key).first())["id"])


def _changes(page: str) -> list[str]:
    return re.findall(r'<li data-field="[^"]+">([^<]*)</li>', page)


async def test_deal_stage_moves_read_in_words_and_every_sales_record_page_has_the_timeline(crm_client: Any) -> None:
    from core.runtime import current

    client = await crm_client("crm_sales")
    org = await build_org(current())
    rep = await org.acc("rep1")
    opp_id = await new_deal(rep, "Servers", email="s@example.com")
    await pipeline.move(rep, opp_id, await _stage("quoted"))
    await pipeline.move(rep, opp_id, await _stage("negotiation"))
    await login_client(client, "rep1")
    page = (await client.get(f"/sales/opportunities/{opp_id}")).text
    assert f'data-timeline="crm_sales.opportunity:{opp_id}"' in page
    assert "Stage: Quoted → Negotiation" in _changes(page)
    deal = await Opportunity.select(Opportunity.person).where(Opportunity.id == opp_id).first()
    lead = await Lead.select(Lead.id).where(Lead.opportunity_id == opp_id).first()
    quote_id = await quotes.create_quote(rep, opp_id, [{"description": "x", "quantity": "1", "unit_price": "5"}])
    for path, model, record_id in (
        (f"/sales/leads/{lead['id']}", "crm_sales.lead", lead["id"]),
        (f"/sales/quotes/{quote_id}", "crm_sales.quote", quote_id),
        (f"/contacts/people/{deal['person']}", "crm_contacts.person", deal["person"]),
    ):
        shown = await client.get(path)
        assert shown.status_code == 200 and f'data-timeline="{model}:{record_id}"' in shown.text, path

    # the team's manager reads it in Chinese: the stages by their own Chinese names
    await User.update({User.language: "zh_CN"}).where(User.id == org.ids["manager"])
    client.cookies.clear()
    await login_client(client, "manager")
    page = (await client.get(f"/sales/opportunities/{opp_id}")).text
    assert "阶段: 方案报价 → 谈判签约" in _changes(page)
