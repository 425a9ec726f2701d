"""Stage moves and history, won / lost / restore, and the record rules on deals (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest
from crm_sales import pipeline
from crm_sales.models import Lead, Opportunity, PipelineStage, StageHistory
from sales_helpers import new_deal

from core.errors import Conflict, NotFound, ValidationError
from core.security.models import AuditLog


async def _stage(key: str) -> int:
    return int((await PipelineStage.select(PipelineStage.id).where(PipelineStage.key == key).first())["id"])


async def test_qualify_links_a_contact_and_starts_in_new(org: Any) -> None:
    rep = await org.acc("rep1")
    opp_id = await new_deal(rep, "Servers", email="buyer@example.com")
    opp = await Opportunity.select().where(Opportunity.id == opp_id).first()
    assert opp["person"] is not None
    assert opp["stage"] == await _stage("new")
    assert opp["owner"] == org.ids["rep1"]
    lead = await Lead.select().where(Lead.opportunity_id == opp_id).first()
    assert lead["state"] == "qualified"
    # the same buyer on a second lead is matched, not duplicated
    second = await new_deal(rep, "More servers", email="buyer@example.com")
    person2 = (await Opportunity.select(Opportunity.person).where(Opportunity.id == second).first())["person"]
    assert person2 == opp["person"]


async def test_moves_keep_history_with_who_and_when(org: Any) -> None:
    rep = await org.acc("rep1")
    opp_id = await new_deal(rep)
    await pipeline.move(rep, opp_id, await _stage("contacted"))
    await pipeline.move(rep, opp_id, await _stage("quoted"))
    rows = await StageHistory.select().where(StageHistory.opportunity == opp_id).order_by(StageHistory.id)
    assert [r["stage"] for r in rows] == [await _stage(k) for k in ("new", "contacted", "quoted")]
    assert all(r["left_at"] is not None for r in rows[:-1]) and rows[-1]["left_at"] is None
    assert rows[1]["by_user"] == org.ids["rep1"]
    assert rows[1]["left_at"] >= rows[1]["entered_at"]
    moves = await AuditLog.count().where((AuditLog.action == "stage_move") & (AuditLog.record_id == str(opp_id)))
    assert moves == 2


async def test_move_rejects_stale_version_and_foreign_stage(org: Any) -> None:
    rep = await org.acc("rep1")
    opp_id = await new_deal(rep)
    opp = await Opportunity.select().where(Opportunity.id == opp_id).first()
    await pipeline.move(rep, opp_id, await _stage("contacted"), expected_version=opp["version"])
    with pytest.raises(Conflict):
        await pipeline.move(rep, opp_id, await _stage("quoted"), expected_version=opp["version"])
    other = await PipelineStage.insert(PipelineStage(key="x", name="Other team", team=org.team_b)).returning(
        PipelineStage.id)
    with pytest.raises(ValidationError):
        await pipeline.move(rep, opp_id, other[0]["id"])


async def test_lost_needs_reason_then_restore_returns_to_last_open_stage(org: Any) -> None:
    rep = await org.acc("rep1")
    opp_id = await new_deal(rep)
    await pipeline.move(rep, opp_id, await _stage("needs_analysis"))
    with pytest.raises(ValidationError):
        await pipeline.move(rep, opp_id, await _stage("lost"))
    lost = await pipeline.mark_lost(rep, opp_id, "Price too high")
    assert (lost["state"], lost["lost_reason"], lost["probability"]) == ("lost", "Price too high", 0)
    with pytest.raises(ValidationError):
        await pipeline.move(rep, opp_id, await _stage("quoted"))
    back = await pipeline.restore(rep, opp_id)
    assert back["state"] == "open" and back["stage"] == await _stage("needs_analysis")
    assert back["lost_reason"] == ""
    won = await pipeline.mark_won(rep, opp_id)
    assert won["state"] == "won" and won["probability"] == 100 and won["closed_at"] is not None


async def test_rep_sees_own_deals_and_manager_the_team(org: Any) -> None:
    own = await new_deal(await org.acc("rep1"), "Rep1 deal")
    mate = await new_deal(await org.acc("rep2"), "Rep2 deal")
    other_team = await new_deal(await org.acc("rep3"), "Rep3 deal")

    async def visible(login: str) -> set[int]:
        acc = await org.acc(login)
        return {r["id"] for r in await (await acc.select(Opportunity, "crm_sales.opportunity", Opportunity.id))}

    assert visible_ok(await visible("rep1"), {own}, {mate, other_team})
    assert visible_ok(await visible("manager"), {own, mate}, {other_team})
    assert {own, mate, other_team} <= await visible("fin")
    rep2 = await org.acc("rep2")
    with pytest.raises(NotFound):
        await pipeline.move(rep2, own, await _stage("contacted"))  # outside scope: 404, not 403
    with pytest.raises(Exception) as denied:
        await pipeline.move(await org.acc("fin"), own, await _stage("contacted"))
    assert getattr(denied.value, "status", None) == 403


def visible_ok(seen: set[int], must: set[int], must_not: set[int]) -> bool:
    return must <= seen and not (must_not & seen)
