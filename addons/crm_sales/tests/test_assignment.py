"""Assignment rules: matching order, round robin, least loaded, capacity, audit, notification, catch-up."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from crm_sales import assignment, leads
from crm_sales.models import AssignmentMember, AssignmentRule, Lead, Notification

from core.security.models import AuditLog


async def _rule(name: str, members: list[tuple[int, int]], seq: int = 10, **criteria: Any) -> int:
    rows = await AssignmentRule.insert(AssignmentRule(name=name, sequence=seq, **criteria)).returning(
        AssignmentRule.id)
    rule_id = int(rows[0]["id"])
    for user, capacity in members:
        await AssignmentMember.insert(AssignmentMember(rule=rule_id, user=user, capacity=capacity))
    return rule_id


async def _owner(lead_id: int) -> int | None:
    return (await Lead.select(Lead.owner).where(Lead.id == lead_id).first())["owner"]


async def test_first_matching_rule_by_sequence_wins(org: Any) -> None:
    ids = org.ids
    await _rule("Big deals", [(ids["rep2"], 0)], seq=5, min_value=Decimal(100_000))
    await _rule("East", [(ids["rep1"], 0)], seq=10, region="Shanghai", team=org.team_a)
    await _rule("Software", [(ids["rep3"], 0)], seq=20, product="ERP")
    manager = await org.acc("manager")
    east = await leads.create_lead(manager, {"name": "A", "region": "shanghai", "expected_revenue": "500"})
    big = await leads.create_lead(manager, {"name": "B", "region": "Shanghai", "expected_revenue": "250000"})
    soft = await leads.create_lead(manager, {"name": "C", "region": "Beijing", "product_interest": "ERP"})
    none = await leads.create_lead(manager, {"name": "D", "region": "Beijing"})
    assert [await _owner(x) for x in (east, big, soft, none)] == [ids["rep1"], ids["rep2"], ids["rep3"], None]
    audit = await AuditLog.select(AuditLog.detail).where(
        (AuditLog.action == "assign") & (AuditLog.record_id == str(east))).first()
    assert "East" in audit["detail"]
    note = await Notification.select().where(Notification.owner == ids["rep1"]).first()
    assert note["kind"] == "assignment" and "A" in note["title"]


async def test_round_robin_rotates_and_respects_capacity(org: Any) -> None:
    ids = org.ids
    await _rule("RR", [(ids["rep1"], 2), (ids["rep2"], 0)], strategy="round_robin")
    manager = await org.acc("manager")
    owners = [await _owner(await leads.create_lead(manager, {"name": f"L{i}"})) for i in range(6)]
    assert owners[:4] == [ids["rep1"], ids["rep2"], ids["rep1"], ids["rep2"]]
    assert owners[4:] == [ids["rep2"], ids["rep2"]]  # rep1 is full at 2 open leads
    assert owners.count(ids["rep1"]) == 2


async def test_least_loaded_prefers_the_emptiest_and_full_rules_fall_through(org: Any) -> None:
    ids = org.ids
    rep = await org.acc("rep1")
    for i in range(3):  # rep1 already holds three open leads of their own
        await leads.create_lead(rep, {"name": f"own {i}"})
    await _rule("LL", [(ids["rep1"], 0), (ids["rep2"], 2)], seq=1, strategy="least_loaded")
    await _rule("Overflow", [(ids["rep3"], 0)], seq=2)
    manager = await org.acc("manager")
    owners = [await _owner(await leads.create_lead(manager, {"name": f"N{i}"})) for i in range(4)]
    # rep2 (0 open) takes two until full at 2; then rep1 (3 open) vs nothing else in LL → rep1
    assert owners[:2] == [ids["rep2"], ids["rep2"]]
    assert owners[2] == ids["rep1"]
    assert await assignment.load_of([ids["rep2"]]) == {ids["rep2"]: 2}


async def test_catch_up_assigns_leads_left_unassigned(org: Any) -> None:
    manager = await org.acc("manager")
    waiting = await leads.create_lead(manager, {"name": "Waiting", "source": "webform"})
    assert await _owner(waiting) is None
    await _rule("Web", [(org.ids["rep3"], 0)], source="webform")
    assert await assignment.assign_pending() == 1
    assert await _owner(waiting) == org.ids["rep3"]
    assert await assignment.assign_pending() == 0  # idempotent


async def test_rep_keeps_own_lead_when_no_rule_matches(org: Any) -> None:
    rep = await org.acc("rep2")
    lead_id = await leads.create_lead(rep, {"name": "Mine"})
    assert await _owner(lead_id) == org.ids["rep2"]


async def test_import_runs_the_rules(org: Any) -> None:
    await _rule("Retail", [(org.ids["rep1"], 0)], industry="retail")
    manager = await org.acc("manager")
    created, errors = await leads.import_csv(
        manager, "name,industry,expected_revenue\nShop,Retail,100\n,Retail,1\nBank,Finance,x\n")
    assert len(created) == 1 and set(errors) == {3, 4}
    assert await _owner(created[0]) == org.ids["rep1"]
