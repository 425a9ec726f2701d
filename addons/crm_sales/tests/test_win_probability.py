"""Win probability learned from the database's closed deals, its explanation, and the manual override."""

from __future__ import annotations

from typing import Any

from crm_sales import pipeline, win
from crm_sales.models import Opportunity
from sales_helpers import new_deal

from core import i18n, jobs, outbox


async def test_model_learns_from_history_and_override_is_kept(org: Any) -> None:
    rep = await org.acc("rep1")
    for i in range(6):
        won = await new_deal(rep, f"W{i}", source="referral", email=f"w{i}@example.com")
        await pipeline.mark_won(rep, won)
        lost = await new_deal(rep, f"L{i}", source="cold_call", email=f"l{i}@example.com")
        await pipeline.mark_lost(rep, lost, "no budget")
    hot = await new_deal(rep, "Hot", source="referral", email="hot@example.com")
    cold = await new_deal(rep, "Cold", source="cold_call", email="cold@example.com")
    manual = await new_deal(rep, "Manual", source="cold_call", email="m@example.com")
    await pipeline.set_probability(rep, manual, 90)
    job = await jobs.enqueue("crm_sales.train_win_model")
    await outbox.run_job(jobs.spec("crm_sales.train_win_model"), job)
    rows = {r["id"]: r for r in await Opportunity.select().where(Opportunity.id.is_in([hot, cold, manual]))}
    assert rows[hot]["probability"] > 80 and rows[cold]["probability"] < 20
    explanation = pipeline.as_dict(rows[hot]["score_explanation"])
    top = explanation["factors"][0]
    assert (top["feature"], top["value"], top["direction"]) == ("source", "referral", "raises")
    assert explanation["samples"] == 12 and explanation["base_probability"] == 50
    # in words, in the reader's language: what the factor is and what it adds, in percentage points
    said = [r["text"] for r in win.reasons(explanation, {})]
    assert said[0].startswith("source: referral: +") and said[0].endswith(" %")
    assert any(t.startswith("no activity yet: ") for t in said) and not any("activity_band" in t for t in said)
    points = explanation["factors"][0]["points"]
    assert 0 < points < 100 and said[0] == f"source: referral: +{points} %"
    i18n.load(["core", "crm_sales"])
    i18n.set_language("zh_CN")
    try:
        assert "还没有活动：" in " ".join(r["text"] for r in win.reasons(explanation, {}))
    finally:
        i18n.set_language("en")
    assert rows[manual]["probability"] == 90 and rows[manual]["is_probability_manual"]
    assert pipeline.as_dict(rows[manual]["score_explanation"])["model_probability"] < 20
    back = await pipeline.set_probability(rep, manual, None)  # follow the model again
    assert back["probability"] < 20 and not back["is_probability_manual"]
