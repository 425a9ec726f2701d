"""The scheduled jobs read deals in keyset batches: with a batch of 7 they give what reading everything gave.

The reference figures are computed here the way the jobs did before batching (every row loaded at once),
over a few hundred deals with random stages, ages, features and activities.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import Any

from crm_sales import activities, scoring, win
from crm_sales.models import Activity, Opportunity, PipelineStage, StageHistory
from crm_sales.notify import now

DEALS = 200


async def _seed(org: Any) -> dt.datetime:
    rnd = random.Random(7)
    at = now()
    stages = list(await PipelineStage.select().where(PipelineStage.team.is_null()))
    open_ = [s for s in stages if not s["is_won"] and not s["is_lost"]]
    await PipelineStage.update({PipelineStage.stall_hours: 0}).where(PipelineStage.id == open_[0]["id"])
    owner = org.ids["rep1"]
    deals = []
    for i in range(DEALS):
        stage = rnd.choice(stages)
        state = "won" if stage["is_won"] else ("lost" if stage["is_lost"] else "open")
        deals.append(Opportunity(name=f"D{i}", stage=stage["id"], state=state, owner=owner,
                                 team=rnd.choice([None, org.team_a]), source=rnd.choice(["", "web", "referral"]),
                                 region=rnd.choice(["north", "south"]), industry=rnd.choice(["", "retail"]),
                                 expected_revenue=Decimal(rnd.choice([500, 50_000, 2_000_000])),
                                 stage_entered_at=at - dt.timedelta(hours=rnd.randint(0, 200)),
                                 is_archived=rnd.random() < 0.05, is_probability_manual=rnd.random() < 0.1,
                                 probability=33))
    ids = [r["id"] for r in await Opportunity.insert(*deals).returning(Opportunity.id)]
    history, acts = [], []
    for opp_id in ids:
        for _ in range(rnd.randint(0, 3)):
            history.append(StageHistory(opportunity=opp_id, stage=rnd.choice(stages)["id"]))
        for _ in range(rnd.choice([0, 0, 1, 2, 4, 7])):
            created = at - dt.timedelta(hours=rnd.randint(0, 200))
            done = created + dt.timedelta(hours=rnd.randint(1, 100)) if rnd.random() < 0.3 else None
            acts.append(Activity(kind="call", subject="x", due_at=created, owner=owner, opportunity=opp_id,
                                 created_at=created, done_at=done, reminded_at=at))
    await StageHistory.insert(*history)
    await Activity.insert(*acts)
    return at


async def _reference_model() -> scoring.Model:
    """Training as it was: every closed deal, its activities and stage history loaded at once."""
    keys = {s["id"]: s["key"] for s in await PipelineStage.select().where(
        (PipelineStage.is_won == False) & (PipelineStage.is_lost == False))}  # noqa: E712
    closed = list(await Opportunity.select(*win._COLS).where(Opportunity.state.is_in(["won", "lost"])))
    counts: dict[int, int] = {}
    for row in await Activity.select(Activity.opportunity):
        counts[row["opportunity"]] = counts.get(row["opportunity"], 0) + 1
    last: dict[int, str] = {}
    for row in await StageHistory.select().order_by(StageHistory.id):
        if row["stage"] in keys:
            last[row["opportunity"]] = keys[row["stage"]]
    return scoring.train((win.features(c, last.get(c["id"], ""), counts.get(c["id"], 0)), c["state"] == "won")
                         for c in closed)


async def _scores() -> dict[int, tuple[int, Any]]:
    return {r["id"]: (r["probability"], r["score_explanation"]) for r in await Opportunity.select(
        Opportunity.id, Opportunity.probability, Opportunity.score_explanation).where(Opportunity.state == "open")}


async def test_win_model_and_scores_are_the_same_in_small_batches(org: Any) -> None:
    await _seed(org)
    reference = await _reference_model()
    assert reference.n_won > 10 and reference.n_lost > 10
    model = await win.train(batch=7)
    assert model == reference
    opened = await Opportunity.count().where(Opportunity.state == "open")
    assert await win.rescore(model, batch=100_000) == opened
    whole = await _scores()
    await Opportunity.update({Opportunity.probability: 33, Opportunity.score_explanation: "{}"}).where(
        Opportunity.id > 0)
    assert await win.rescore(model, batch=7) == opened
    assert await _scores() == whole
    manual = await Opportunity.select(Opportunity.probability).where(
        (Opportunity.state == "open") & (Opportunity.is_probability_manual == True))  # noqa: E712
    assert manual and {r["probability"] for r in manual} == {33}  # a manual figure is never overwritten
    assert len({p for p, _ in whole.values()}) > 3  # the deals' features made a difference


async def test_stalled_deals_are_the_same_in_small_batches(org: Any) -> None:
    at = await _seed(org)
    limits = {s["id"]: s["stall_hours"] for s in await PipelineStage.select()}
    touched: dict[int, dt.datetime] = {}
    for row in await Activity.select(Activity.opportunity, Activity.created_at, Activity.done_at):
        for t in (row["created_at"], row["done_at"]):
            if t is not None and t > touched.get(row["opportunity"], t - dt.timedelta(1)):
                touched[row["opportunity"]] = t
    expected = sorted(o["id"] for o in await Opportunity.select().where(
        (Opportunity.state == "open") & (Opportunity.is_archived == False))  # noqa: E712
        if limits[o["stage"]] > 0 and at - max(o["stage_entered_at"], touched.get(o["id"], o["stage_entered_at"]))
        > dt.timedelta(hours=limits[o["stage"]]))
    assert 10 < len(expected) < DEALS // 2
    assert await activities.flag_stalled(at, batch=7) == expected
    assert await activities.flag_stalled(at, batch=7) == []
