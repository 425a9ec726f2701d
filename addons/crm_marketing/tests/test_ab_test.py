"""A/B test of subjects: a share of the segment split in SQL between subject A and B and sent; the rest held
until the wait is over; the winner (opens, then clicks; scanner hits excluded) chosen once by the scheduled actor
and sent to the rest — a retried decision mails nobody twice."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from crm_marketing import ab_test, campaigns, roi
from crm_marketing.models import Campaign, CampaignEvent, CampaignRecipient
from marketing_helpers import Sink, add_person, campaign_for, run_send_jobs

from core.errors import ValidationError


async def test_share_split_sent_then_the_winner_goes_to_the_rest_once(world: Any, sink: tuple[Sink, int]) -> None:
    handler, port = sink
    for i in range(16):
        await add_person(f"客户{i}", f"c{i}@example.cn", tags=("abtest",))
    campaign_id = await campaign_for(world, port, {"field": "tags", "op": "contains", "value": "abtest"})
    mk = await world.acc("mk")
    values = {"name": "双十二", "segment": (await campaigns.get(mk, campaign_id))["segment"],
              "subject_zh": "原标题 A", "body_zh": "<p>{{ contact.name }}</p>", "cost": "0", "ab_share": "50"}
    with pytest.raises(ValidationError) as refused:  # a test needs a subject B
        await campaigns.save(mk, values, campaign_id)
    assert "subject_b_en" in refused.value.fields
    with pytest.raises(ValidationError) as refused:
        await campaigns.save(mk, {**values, "subject_b_zh": "新标题 B", "ab_share": "95"}, campaign_id)
    assert "ab_share" in refused.value.fields
    await campaigns.save(mk, {**values, "subject_b_zh": "新标题 B", "ab_wait_hours": "2"}, campaign_id)

    assert await campaigns.send(mk, campaign_id) == 8  # half of 16 tested now
    variants = {r["id"]: r for r in await CampaignRecipient.select().where(CampaignRecipient.campaign == campaign_id)}
    by = {v: [r for r in variants.values() if r["variant"] == v] for v in ("a", "b", "rest")}
    assert (len(by["a"]), len(by["b"]), len(by["rest"])) == (4, 4, 8)
    assert {r["state"] for r in by["rest"]} == {"held"}
    await run_send_jobs()
    subjects = sorted(str(m["Subject"]) for m in handler.messages)
    assert subjects == ["原标题 A"] * 4 + ["新标题 B"] * 4
    camp = await Campaign.select().where(Campaign.id == campaign_id).first()
    assert (camp["state"], camp["ab_state"]) == ("sending", "testing")  # the rest still waits
    figures = await roi.figures(campaign_id)
    assert (figures["recipients"], figures["delivered"], figures["queued"]) == (16, 8, 8)

    # B opened by 2 of 4 and A by 1 of 4; a scanner's opens of A do not count
    now = dt.datetime.now(dt.UTC)
    for row, scanner in ((by["b"][0], False), (by["b"][1], False), (by["a"][0], False), (by["a"][1], True),
                         (by["a"][2], True), (by["a"][3], True)):
        await CampaignEvent.insert(CampaignEvent(campaign=campaign_id, recipient=row["id"], kind="open", at=now,
                                                 is_scanner=scanner))
    assert await ab_test.results(campaign_id) == {"a": {"recipients": 4, "opens": 1, "clicks": 0},
                                                  "b": {"recipients": 4, "opens": 2, "clicks": 0}}
    assert await ab_test.decide_due() == 0  # the wait is not over
    await Campaign.update({Campaign.sent_at: now - dt.timedelta(hours=2, minutes=1)}).where(Campaign.id == campaign_id)
    assert await ab_test.decide_due() == 1
    assert await ab_test.decide(campaign_id) is None  # a retried run finds it decided
    assert await ab_test.decide_due() == 0
    await run_send_jobs()
    await run_send_jobs()
    rest = [m for m in handler.messages[8:]]
    assert len(rest) == 8 and {str(m["Subject"]) for m in rest} == {"新标题 B"}
    assert len({m["To"] for m in handler.messages}) == 16  # everyone once
    camp = await Campaign.select().where(Campaign.id == campaign_id).first()
    assert (camp["state"], camp["ab_state"], camp["ab_winner"]) == ("sent", "decided", "b")


def test_winner_is_opens_then_clicks_then_a() -> None:
    a = {"recipients": 10, "opens": 3, "clicks": 1}
    assert ab_test.winner({"a": a, "b": {"recipients": 5, "opens": 2, "clicks": 0}}) == "b"  # 40 % > 30 %
    assert ab_test.winner({"a": a, "b": {"recipients": 10, "opens": 3, "clicks": 2}}) == "b"  # tie, more clicks
    assert ab_test.winner({"a": a, "b": dict(a)}) == "a"
