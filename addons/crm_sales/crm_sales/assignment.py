"""Lead assignment rules: the first matching rule with a member who has room gets the lead.

Rules are tried by ``sequence``; an empty criterion matches anything, ``product`` is compared with the lead's
product of interest, ``min_value``/``max_value`` bound its expected revenue. Strategies:

- ``round_robin``: the member assigned longest ago (never first), among those under capacity;
- ``least_loaded``: the member holding the fewest open leads + open deals, ties by round robin.

Capacity counts open leads and open opportunities a member owns (0 = no limit). A member is taken with a
compare-and-set on ``last_assigned_at``, so two workers assigning at once never both pick the same slot.
The lead itself is claimed with ``owner IS NULL``: the periodic catch-up and a web request can race safely.
Every assignment is audited with the rule that fired, and the assignee is notified.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from piccolo.query.functions.aggregate import Count

from core import db
from core.security import audit
from crm_sales.manifest import LEAD
from crm_sales.models import AssignmentMember, AssignmentRule, Lead, Opportunity
from crm_sales.notify import notify, now


@dataclass(frozen=True)
class Assignment:
    lead_id: int
    user_id: int
    rule_id: int
    rule_name: str


def matches(rule: dict[str, Any], lead: dict[str, Any]) -> bool:
    """Does ``rule`` apply to ``lead``? (Text criteria compare case-insensitively; a region in any spelling,
    standardized like the lead's: a rule for "Shanghai" takes a lead from "上海市".)"""
    from crm_contacts.api import standardize_fields

    pairs = (("region", "region"), ("industry", "industry"), ("source", "source"), ("product", "product_interest"))
    for criterion, field in pairs:
        wanted = (rule[criterion] or "").strip()
        if criterion == "region" and wanted:
            wanted = standardize_fields({"region": wanted})["region"]
        wanted = wanted.lower()
        if wanted and wanted != (lead.get(field) or "").strip().lower():
            return False
    value = Decimal(str(lead.get("expected_revenue") or 0))
    if rule["min_value"] is not None and value < Decimal(str(rule["min_value"])):
        return False
    return not (rule["max_value"] is not None and value > Decimal(str(rule["max_value"])))


async def load_of(user_ids: list[int]) -> dict[int, int]:
    """Open leads + open opportunities each user owns."""
    out = dict.fromkeys(user_ids, 0)
    if not user_ids:
        return out
    # counted by the database: a member may own millions of deals, and this runs for every lead assigned
    for table, open_state in ((Lead, Lead.state == "new"), (Opportunity, Opportunity.state == "open")):
        for row in await table.select(table.owner, Count(alias="n")).where(
                table.owner.is_in(user_ids) & open_state & (table.is_archived == False)).group_by(  # noqa: E712
                table.owner):
            out[row["owner"]] += row["n"]
    return out


def _order(members: list[dict[str, Any]], loads: dict[int, int], strategy: str) -> list[dict[str, Any]]:
    def rr(m: dict[str, Any]) -> tuple[int, str, int]:
        at = m["last_assigned_at"]
        return (0 if at is None else 1, at.isoformat() if at else "", m["id"])

    if strategy == "least_loaded":
        return sorted(members, key=lambda m: (loads[m["user"]], *rr(m)))
    return sorted(members, key=rr)


async def _take_member(rule: dict[str, Any]) -> int | None:
    for _ in range(5):  # compare-and-set: retry when another worker took the slot we picked
        # a deactivated user takes no new leads (their records were handed over when they left)
        members = list(await AssignmentMember.select().where(
            (AssignmentMember.rule == rule["id"]) & (AssignmentMember.user.is_active == True)))  # noqa: E712
        loads = await load_of([m["user"] for m in members])
        free = [m for m in members if m["capacity"] <= 0 or loads[m["user"]] < m["capacity"]]
        if not free:
            return None
        pick = _order(free, loads, rule["strategy"])[0]
        last = AssignmentMember.last_assigned_at
        guard = last.is_null() if pick["last_assigned_at"] is None else last == pick["last_assigned_at"]
        taken = await AssignmentMember.update({last: now()}).where(
            (AssignmentMember.id == pick["id"]) & guard).returning(AssignmentMember.id)
        if taken:
            return int(pick["user"])
    return None


async def assign_lead(lead_id: int, *, fallback_owner: int | None = None) -> Assignment | None:
    """Assign an unowned lead by the rules; with no rule (or no room), give it to ``fallback_owner`` if any."""
    async with db.atomic():
        lead = await Lead.select().where(Lead.id == lead_id).first()
        if lead is None or lead["owner"] is not None or lead["state"] != "new":
            return None
        rules = await AssignmentRule.select().where(AssignmentRule.is_active == True).order_by(  # noqa: E712
            AssignmentRule.sequence).order_by(AssignmentRule.id)
        for rule in rules:
            if not matches(rule, lead):
                continue
            user_id = await _take_member(rule)
            if user_id is None:
                continue  # everyone in this rule is at capacity: the next rule may place it
            values: dict[Any, Any] = {Lead.owner: user_id, Lead.assignment_rule_id: rule["id"],
                                      Lead.assigned_at: now(), Lead.version: Lead.version + 1}
            if rule["team"] is not None:
                values[Lead.team] = rule["team"]
            claimed = await Lead.update(values).where((Lead.id == lead_id) & Lead.owner.is_null()).returning(Lead.id)
            if not claimed:
                return None
            await audit.record("assign", model=LEAD, record_id=lead_id, changes={"owner": [None, user_id]},
                               detail=f"rule #{rule['id']} {rule['name']} ({rule['strategy']})")
            await notify(user_id, "assignment", f"New lead assigned to you: {lead['name']}",
                         url=f"/sales/leads/{lead_id}", dedup_key=f"assign:lead:{lead_id}:{user_id}")
            return Assignment(lead_id, user_id, int(rule["id"]), rule["name"])
        if fallback_owner is not None:
            await Lead.update({Lead.owner: fallback_owner, Lead.assigned_at: now()}).where(
                (Lead.id == lead_id) & Lead.owner.is_null())
            await audit.record("assign", model=LEAD, record_id=lead_id, changes={"owner": [None, fallback_owner]},
                               detail="no rule matched: kept by its creator")
    return None


async def assign_pending(limit: int = 500) -> int:
    """The periodic catch-up: try again every unowned new lead (rules or capacity may have changed)."""
    rows = await Lead.select(Lead.id).where(
        Lead.owner.is_null() & (Lead.state == "new") & (Lead.is_archived == False)).order_by(  # noqa: E712
        Lead.id).limit(limit)
    done = 0
    for row in rows:
        if await assign_lead(int(row["id"])):
            done += 1
    return done
