"""Opportunities through the pipeline: qualify a lead, move between stages (with history), won / lost / restore.

Every move is validated here, on the server: the target stage must belong to the deal's pipeline (its team's
stages, else the default ones), a closed deal moves only through :func:`restore`, and a lost deal needs a
reason. Moves are audited and leave a :class:`StageHistory` row (entered at, left at, by whom).
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from piccolo.columns import Column

from core import db, hooks
from core.automation import record_changed
from core.errors import Conflict, NotFound, ValidationError
from core.i18n import N_
from core.security import audit
from core.security.access import Access
from crm_sales.manifest import LEAD, OPPORTUNITY
from crm_sales.models import Lead, Opportunity, PipelineStage, StageHistory
from crm_sales.notify import now


def as_dict(raw: Any) -> dict[str, Any]:
    """A JSON column's value as a dict (SQLite hands back text, PostgreSQL may too)."""
    if isinstance(raw, str):
        raw = json.loads(raw or "{}")
    return raw if isinstance(raw, dict) else {}


async def stages_for(team_id: int | None) -> list[dict[str, Any]]:
    """The pipeline of ``team_id``: its own stages if it has any, else the default (team-less) ones."""
    if team_id is not None:
        own = await PipelineStage.select().where(PipelineStage.team == team_id).order_by(PipelineStage.sequence)
        if own:
            return list(own)
    return list(await PipelineStage.select().where(PipelineStage.team.is_null()).order_by(PipelineStage.sequence))


async def _stage(team_id: int | None, stage_id: int) -> dict[str, Any]:
    for stage in await stages_for(team_id):
        if stage["id"] == stage_id:
            return stage
    raise ValidationError({"stage": N_("is not a stage of this deal's pipeline")})


async def _first_open_stage(team_id: int | None) -> dict[str, Any]:
    for stage in await stages_for(team_id):
        if not stage["is_won"] and not stage["is_lost"]:
            return stage
    raise NotFound(N_("the pipeline has no open stage"))


async def _closing_stage(team_id: int | None, *, won: bool) -> dict[str, Any]:
    for stage in await stages_for(team_id):
        if (won and stage["is_won"]) or (not won and stage["is_lost"]):
            return stage
    raise NotFound("the pipeline has no won stage" if won else "the pipeline has no lost stage")


async def _enter(opp_id: int, stage_id: int, user_id: int | None, at: dt.datetime) -> None:
    await StageHistory.update({StageHistory.left_at: at}).where(
        (StageHistory.opportunity == opp_id) & StageHistory.left_at.is_null())
    await StageHistory.insert(StageHistory(opportunity=opp_id, stage=stage_id, entered_at=at, by_user=user_id))


async def _apply_move(opp: dict[str, Any], stage: dict[str, Any], user_id: int | None, *,
                      lost_reason: str = "", expected_version: int | None = None) -> None:
    """Move ``opp`` into ``stage``: optimistic check on ``version``, history, probability, audit, events."""
    at = now()
    state = "won" if stage["is_won"] else "lost" if stage["is_lost"] else "open"
    values: dict[Any, Any] = {
        Opportunity.stage: stage["id"], Opportunity.stage_entered_at: at, Opportunity.state: state,
        Opportunity.stall_alerted_at: None, Opportunity.version: Opportunity.version + 1,
        Opportunity.closed_at: at if state != "open" else None,
        Opportunity.lost_reason: lost_reason if state == "lost" else "",
    }
    if state != "open":
        values[Opportunity.probability] = 100 if state == "won" else 0
    elif not opp["is_probability_manual"] and not as_dict(opp.get("score_explanation")):
        values[Opportunity.probability] = stage["probability"]
    version = opp["version"] if expected_version is None else expected_version
    moved = await Opportunity.update(values).where(
        (Opportunity.id == opp["id"]) & (Opportunity.version == version)).returning(Opportunity.id)
    if not moved:
        raise Conflict(N_("%(model)s %(id)s was changed by someone else; reload and try again") % {
            "model": OPPORTUNITY, "id": opp["id"]})
    await _enter(opp["id"], stage["id"], user_id, at)
    if state == "open":
        from crm_sales import win

        model = await win.load()
        if model is not None:  # the stage is a feature: the learned probability follows the move
            await win.rescore(model, [int(opp["id"])])
    await audit.record("stage_move", model=OPPORTUNITY, record_id=opp["id"],
                       changes={"stage": [opp["stage"], stage["id"]], "state": [opp["state"], state]},
                       detail=lost_reason)
    await record_changed(OPPORTUNITY, int(opp["id"]), opp, {"stage": stage["id"], "state": state})
    if state == "won":
        await hooks.publish("crm_sales_opportunity_won", opportunity_id=int(opp["id"]))


async def move(acc: Access, opp_id: int, stage_id: int, *, expected_version: int | None = None,
               lost_reason: str = "") -> dict[str, Any]:
    """Move a deal the user may update to ``stage_id`` (the kanban drop, the detail page, the API)."""
    async with db.atomic():
        opp = await acc.get(Opportunity, OPPORTUNITY, opp_id, action="update")
        if opp["state"] != "open":
            raise ValidationError({"stage": N_("the deal is closed: restore it first")})
        stage = await _stage(opp["team"], stage_id)
        if stage["is_lost"] and not lost_reason.strip():
            raise ValidationError({"lost_reason": N_("is required to mark a deal lost")})
        if stage["id"] != opp["stage"]:
            await _apply_move(opp, stage, acc.principal.user_id if acc.principal else None,
                              lost_reason=lost_reason.strip()[:300], expected_version=expected_version)
    return await acc.get(Opportunity, OPPORTUNITY, opp_id)


async def mark_won(acc: Access, opp_id: int) -> dict[str, Any]:
    opp = await acc.get(Opportunity, OPPORTUNITY, opp_id, action="update")
    return await move(acc, opp_id, (await _closing_stage(opp["team"], won=True))["id"])


async def mark_lost(acc: Access, opp_id: int, reason: str) -> dict[str, Any]:
    opp = await acc.get(Opportunity, OPPORTUNITY, opp_id, action="update")
    return await move(acc, opp_id, (await _closing_stage(opp["team"], won=False))["id"], lost_reason=reason)


async def win_as_system(opp_id: int) -> None:
    """Move a deal to Won on the customer's behalf (quote acceptance): no user, same history and events."""
    opp = await Opportunity.select().where(Opportunity.id == opp_id).first()
    if opp is None or opp["state"] == "won":
        return
    await _apply_move(dict(opp), await _closing_stage(opp["team"], won=True), None)


async def restore(acc: Access, opp_id: int) -> dict[str, Any]:
    """Reopen a won or lost deal in the last open stage it was in (the first stage if none)."""
    async with db.atomic():
        opp = await acc.get(Opportunity, OPPORTUNITY, opp_id, action="update")
        if opp["state"] == "open":
            raise ValidationError({"state": N_("the deal is already open")})
        stages = {s["id"]: s for s in await stages_for(opp["team"])}
        past = await StageHistory.select(StageHistory.stage).where(
            StageHistory.opportunity == opp_id).order_by(StageHistory.id, ascending=False)
        target = next((stages[p["stage"]] for p in past if p["stage"] in stages
                       and not stages[p["stage"]]["is_won"] and not stages[p["stage"]]["is_lost"]), None)
        await _apply_move(opp, target or await _first_open_stage(opp["team"]),
                          acc.principal.user_id if acc.principal else None)
    return await acc.get(Opportunity, OPPORTUNITY, opp_id)


async def create_opportunity(values: dict[str, Any], *, user_id: int | None) -> int:
    """Insert a deal in the first open stage of its team's pipeline (system level: check access first)."""
    stage = await _first_open_stage(values.get("team"))
    at = now()
    values = {"stage": stage["id"], "probability": stage["probability"], "stage_entered_at": at, **values}
    if values.get("expected_revenue") is not None:
        values["expected_revenue"] = Decimal(str(values["expected_revenue"]))
    async with db.atomic():
        row = Opportunity(_data={Opportunity._meta.get_column_by_name(k): v for k, v in values.items()})
        await row.save()
        opp_id = int(row.id)
        await StageHistory.insert(StageHistory(opportunity=opp_id, stage=values["stage"], entered_at=at,
                                               by_user=user_id))
        await audit.record("create", model=OPPORTUNITY, record_id=opp_id, changes=audit.diff(None, values))
        await record_changed(OPPORTUNITY, opp_id, None, values)
    return opp_id


async def qualify(acc: Access, lead_id: int) -> int:
    """Turn a lead into an opportunity linked to a contact (matched through crm_contacts' duplicate check)."""
    from crm_contacts.api import find_or_create_person

    async with db.atomic():
        lead = await acc.get(Lead, LEAD, lead_id, action="update")
        if lead["state"] == "qualified" and lead["opportunity_id"]:
            return int(lead["opportunity_id"])  # a double click qualifies once
        if lead["state"] != "new":
            raise ValidationError({"state": N_("a %(state)s lead cannot be qualified") % {"state": lead["state"]}})
        await acc.require(OPPORTUNITY, "create")
        owner = lead["owner"] or (acc.principal.user_id if acc.principal else None)
        contact, _ = await find_or_create_person(
            name=lead["contact_name"] or lead["name"], email=lead["email"], phone=lead["phone"],
            language=lead["language"], source=lead["source"], owner_id=owner, access=acc)
        title = lead["name"] if not lead["company_name"] else f"{lead['company_name']} – {lead['name']}"
        opp_id = await create_opportunity({
            "name": title[:200], "person": contact.id, "lead_id": lead_id, "owner": owner, "team": lead["team"],
            "expected_revenue": lead["expected_revenue"], "currency": lead["currency"], "source": lead["source"],
            "region": lead["region"], "industry": lead["industry"],
            "products_of_interest": lead["product_interest"]}, user_id=acc.principal.user_id if acc.principal else None)
        await Lead.update({Lead.state: "qualified", Lead.opportunity_id: opp_id, Lead.version: Lead.version + 1}).where(
            Lead.id == lead_id)
        await audit.record("qualify", model=LEAD, record_id=lead_id, changes={"opportunity_id": [None, opp_id]})
        await record_changed(LEAD, lead_id, lead, {"state": "qualified", "opportunity_id": opp_id})
    return opp_id


async def history(opp_id: int) -> list[dict[str, Any]]:
    return list(await StageHistory.select(
        StageHistory.id, StageHistory.stage, StageHistory.stage.name, StageHistory.stage.name_zh,
        StageHistory.entered_at, StageHistory.left_at, StageHistory.by_user.name).where(
        StageHistory.opportunity == opp_id).order_by(StageHistory.id))


async def set_probability(acc: Access, opp_id: int, value: int | None) -> dict[str, Any]:
    """Override the probability by hand (``None``: follow the model / the stage again). Audited."""
    async with db.atomic():
        opp = await acc.get(Opportunity, OPPORTUNITY, opp_id, action="update")
        changes: dict[Column | str, Any]
        if value is None:
            model = as_dict(opp.get("score_explanation")).get("model_probability")
            if model is None:
                stage = await PipelineStage.select(PipelineStage.probability).where(
                    PipelineStage.id == opp["stage"]).first()
                model = stage["probability"] if stage else opp["probability"]
            changes = {Opportunity.probability: int(model), Opportunity.is_probability_manual: False}
        else:
            changes = {Opportunity.probability: value, Opportunity.is_probability_manual: True}
        changes[Opportunity.version] = Opportunity.version + 1
        await Opportunity.update(changes).where(Opportunity.id == opp_id)
        await audit.record("update", model=OPPORTUNITY, record_id=opp_id,
                           changes={"probability": [opp["probability"], changes[Opportunity.probability]],
                                    "is_probability_manual": [opp["is_probability_manual"], value is not None]})
        await record_changed(OPPORTUNITY, opp_id, opp, {"probability": changes[Opportunity.probability]})
    return await acc.get(Opportunity, OPPORTUNITY, opp_id)
