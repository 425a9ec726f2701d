"""Win probability from history: train ``scoring.py``'s naive Bayes on closed deals, score the open ones.

Features of a closed deal are taken as they were while it was open: its stage is the last open stage it was
in (from the stage history), so "reached negotiation" is learned, not "is in Won". The trained counts are
kept in :class:`WinModel` so a page can explain a score without retraining. A manual probability is never
overwritten: the model's figure is still stored in the explanation, and the page says which is shown.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

from piccolo.custom_types import Combinable
from piccolo.query.functions.aggregate import Count

from core import bulk, db, i18n
from core.i18n import N_
from crm_sales import batching, scoring
from crm_sales.models import Activity, Opportunity, PipelineStage, StageHistory, WinModel


async def _activity_counts(opp_ids: list[int]) -> dict[int, int]:
    # counted by the database: one row per deal of the batch, not one per activity
    out = dict.fromkeys(opp_ids, 0)
    if opp_ids:
        for row in await Activity.select(Activity.opportunity, Count(alias="n")).where(
                bulk.any_of(Activity.opportunity, opp_ids)).group_by(Activity.opportunity):
            out[row["opportunity"]] = row["n"]
    return out


async def _open_stage_keys() -> dict[int, str]:
    return {s["id"]: s["key"] for s in await PipelineStage.select(PipelineStage.id, PipelineStage.key).where(
        (PipelineStage.is_won == False) & (PipelineStage.is_lost == False))}  # noqa: E712


async def _last_open_stage(opp_ids: list[int], keys: dict[int, str]) -> dict[int, str]:
    """The last open stage (``keys``: open stage id -> key) each deal was in, from its stage history."""
    out: dict[int, str] = {}
    if opp_ids and keys:
        for row in await StageHistory.select(StageHistory.opportunity, StageHistory.stage).where(
                bulk.any_of(StageHistory.opportunity, opp_ids) & StageHistory.stage.is_in(list(keys))).order_by(
                StageHistory.id):
            out[row["opportunity"]] = keys[row["stage"]]
    return out


def features(opp: dict[str, Any], stage_key: str, activities: int) -> dict[str, str]:
    out = {"stage": stage_key, "team": str(opp["team"] or ""), "source": opp["source"], "region": opp["region"],
           "industry": opp["industry"], "value_band": scoring.value_band(Decimal(opp["expected_revenue"] or 0)),
           "activity_band": scoring.activity_band(activities)}
    return {k: v for k, v in out.items() if v}  # a blank feature is missing, not a value


_COLS = (Opportunity.id, Opportunity.team, Opportunity.source, Opportunity.region, Opportunity.industry,
         Opportunity.expected_revenue, Opportunity.state, Opportunity.is_probability_manual,
         Opportunity.stage.key)


async def train(batch: int | None = None) -> scoring.Model:
    """Learn from closed deals, ``batch`` deals at a time (see :mod:`crm_sales.batching`)."""
    keys, tally = await _open_stage_keys(), scoring.Tally()
    async for closed in batching.batches(Opportunity, _COLS, Opportunity.state.is_in(["won", "lost"]), batch):
        ids = [c["id"] for c in closed]
        stages, counts = await _last_open_stage(ids, keys), await _activity_counts(ids)
        for c in closed:
            tally.add(features(c, stages.get(c["id"], ""), counts[c["id"]]), c["state"] == "won")
    model = tally.model()
    await WinModel.delete().where(WinModel.id > 0)
    await WinModel.insert(WinModel(n_won=model.n_won, n_lost=model.n_lost,
                                   counts={f: {v: list(c) for v, c in vals.items()}
                                           for f, vals in model.counts.items()},
                                   rows_with={f: list(c) for f, c in model.rows_with.items()}))
    return model


async def load() -> scoring.Model | None:
    row = await WinModel.select().order_by(WinModel.id, ascending=False).first()
    if row is None:
        return None
    counts = row["counts"] if isinstance(row["counts"], dict) else json.loads(row["counts"])
    rows_with = row["rows_with"] if isinstance(row["rows_with"], dict) else json.loads(row["rows_with"])
    return scoring.Model(n_won=row["n_won"], n_lost=row["n_lost"],
                         counts={f: {v: (c[0], c[1]) for v, c in vals.items()} for f, vals in counts.items()},
                         rows_with={f: (c[0], c[1]) for f, c in rows_with.items()})


def explain(prediction: scoring.Prediction, n: int) -> dict[str, Any]:
    p = prediction.probability
    return {"model_probability": round(p * 100),
            "base_probability": round(prediction.base_probability * 100), "samples": n,
            "factors": [{"feature": f.feature, "value": f.value, "effect": round(f.effect, 3),
                         "points": _points(p, f.effect), "direction": f.direction, "seen": f.is_seen}
                        for f in prediction.factors]}


def _points(probability: float, effect: float) -> int:
    """What one factor adds to the probability, in percentage points: the probability with it minus the
    probability the same deal would have without it (its log-odds taken out)."""
    p = min(max(probability, 1e-9), 1 - 1e-9)
    without = scoring.sigmoid(math.log(p / (1 - p)) - effect)
    return round((probability - without) * 100)


# what a feature's value means, in the reader's words (the model's keys are bands and ids)
_ACTIVITY_WORDS = {"0": N_("no activity yet"), "1-2": N_("1 or 2 activities logged"),
                   "3-5": N_("3 to 5 activities logged"), "6-10": N_("6 to 10 activities logged"),
                   "11+": N_("more than 10 activities logged")}
_VALUE_WORDS = {"<10k": N_("a deal under 10,000"), "10k-100k": N_("a deal of 10,000 to 100,000"),
                "100k-1M": N_("a deal of 100,000 to 1,000,000"), ">=1M": N_("a deal of 1,000,000 or more")}
_FEATURE_WORDS = {"stage": N_("in stage %(value)s"), "team": N_("team %(value)s"),
                  "source": N_("source: %(value)s"), "region": N_("region: %(value)s"),
                  "industry": N_("industry: %(value)s")}


def reasons(explanation: dict[str, Any], names: dict[str, str]) -> list[dict[str, Any]]:
    """The factors of a stored explanation as sentences in the reader's language — "no activity yet: −8 %" —
    with ``names`` giving a stage's or a team's name for ``feature=value`` (else the value as stored)."""
    probability = float(explanation.get("model_probability", 50)) / 100
    out: list[dict[str, Any]] = []
    for f in explanation.get("factors", []):
        feature, value = str(f.get("feature", "")), str(f.get("value", ""))
        if feature == "activity_band" and value in _ACTIVITY_WORDS:
            what = i18n.gettext(_ACTIVITY_WORDS[value])
        elif feature == "value_band" and value in _VALUE_WORDS:
            what = i18n.gettext(_VALUE_WORDS[value])
        else:
            shown = names.get(f"{feature}={value}", value)
            what = i18n.gettext(_FEATURE_WORDS.get(feature, "%(value)s")) % {"value": shown}
        if not f.get("seen", True):
            out.append({"text": i18n.gettext("%(what)s: not seen in closed deals yet, no effect") % {"what": what},
                        "direction": "neutral", "points": 0})
            continue
        points = f["points"] if isinstance(f.get("points"), int) else _points(probability, float(f.get("effect", 0)))
        sign = "+" if points > 0 else ("−" if points < 0 else "±")
        out.append({"text": i18n.gettext("%(what)s: %(points)s") % {"what": what, "points": f"{sign}{abs(points)} %"},
                    "direction": f.get("direction", "neutral"), "points": points})
    return out


async def rescore(model: scoring.Model, opp_ids: list[int] | None = None, *, batch: int | None = None) -> int:
    """Score open deals (all, or ``opp_ids``); manual probabilities keep their value, the model's is noted.

    ``batch`` deals at a time; deals of a batch that get the same figures are written by one UPDATE (deals
    share few feature combinations), and a batch's writes are one transaction (on SQLite, one sync, not one
    a deal).
    """
    where: Combinable = Opportunity.state == "open"
    if opp_ids is not None:
        where = where & Opportunity.id.is_in(opp_ids or [0])
    done = 0
    async for rows in batching.batches(Opportunity, _COLS, where, batch):
        counts = await _activity_counts([r["id"] for r in rows])
        same: dict[tuple[str, bool], tuple[dict[Any, Any], list[int]]] = {}
        for row in rows:
            prediction = model.predict(features(row, row["stage.key"], counts[row["id"]]))
            values: dict[Any, Any] = {Opportunity.score_explanation: explain(prediction, model.n_samples)}
            if not row["is_probability_manual"]:
                values[Opportunity.probability] = round(prediction.probability * 100)
            key = (json.dumps(values[Opportunity.score_explanation], sort_keys=True), row["is_probability_manual"])
            same.setdefault(key, (values, []))[1].append(row["id"])
        async with db.atomic():
            for values, ids in same.values():
                await Opportunity.update(values).where(bulk.any_of(Opportunity.id, ids))
        done += len(rows)
    return done
