"""Role dashboards out of the box from the datasets crm_marketing, crm_service and the kernel contribute; churn
per customer tier: the tiers come from a dataset with ``person`` and ``tier`` (crm_marketing's value
tiers, installed here), each tier its own days, other customers the report's; a flagged customer is flagged once,
the report's owner is told the rule and the figures, and the customer's owner gets an activity (crm_sales'
automation action)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from core.errors import ValidationError


async def test_churn_days_per_tier_flag_once_and_give_the_owner_an_activity(crm_boot: Any) -> None:
    from crm_reports import reports, warnings

    from core import datasets
    from core.bulk import insert_rows
    from core.models import Notification
    from core.security import access, principal
    from core.security.models import AuditLog
    from core.testing import make_user

    await crm_boot("crm_sales", "crm_marketing", "crm_service", "crm_reports")
    boss_id, rep_id = await make_user("boss", "admin"), await make_user("rep", "sales_rep")
    boss = access.Access(await principal.load(boss_id, implied=access.policy().implied))
    orders = (await datasets.dataset("crm_sales.orders", boss)).table
    tiers = (await datasets.dataset("crm_marketing.tiers", boss)).table
    people = orders._meta.get_column_by_name("person")._foreign_key_meta.resolved_references
    wang, li, zhao = await insert_rows(people, [{"name": "王伟", "owner": rep_id}, {"name": "Li Na"},
                                                {"name": "赵敏", "owner": rep_id}])
    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)

    def ago(days: int) -> dt.datetime:
        return now - dt.timedelta(days=days)

    await insert_rows(orders, [{"person": p, "state": "confirmed", "owner": boss_id, "confirmed_at": ago(d)}
                               for p, d in ((wang, 40), (li, 40), (zhao, 100))])
    await insert_rows(tiers, [{"person": wang, "tier": "gold", "last_order_at": ago(40)},
                              {"person": zhao, "tier": "silver", "last_order_at": ago(100)}])
    spec = {"dimensions": ["person"], "measures": ["max:confirmed_at"], "stale_days": 90}
    with pytest.raises(ValidationError, match="stale_days_by_tier"):
        await reports.save(boss, {"name": "x", "dataset": "crm_sales.orders", "chart": "table",
                                  "spec": {**spec, "stale_days_by_tier": "gold=soon"}})
    report_id = await reports.save(boss, {"name": "Lapsed customers", "dataset": "crm_sales.orders",
                                          "chart": "table", "spec": {**spec, "stale_days_by_tier": "gold=30"}})
    assert (await reports.get(boss, report_id))["spec"]["stale_days_by_tier"] == {"gold": 30}
    # 王伟 (gold: 30 days) after 40 days; 赵敏 (silver: the report's 90) after 100; Li Na (no tier) not yet
    assert await warnings.check([report_id], now=now) == 2
    assert await warnings.check([report_id], now=now + dt.timedelta(days=1)) == 0  # flagged once
    told = {n["title"]: n["body"] for n in await Notification.select().where(
        Notification.url == f"/reports/reports/{report_id}")}
    assert len(told) == 2
    gold = next(b for t, b in told.items() if "王伟" in t and "40" in t)
    assert "gold" in gold and "30" in gold and "2026" in gold
    silver = next(b for t, b in told.items() if "赵敏" in t and "100" in t)
    assert "90" in silver and "gold" not in silver
    # each flagged customer's owner has a call to make (an activity on the person, by crm_sales' action)
    made = await AuditLog.select().where((AuditLog.model == "crm_sales.activity") & (AuditLog.action == "create"))
    assert len(made) == 2 and all("Lapsed customers" in m["detail"] for m in made)
    changes = [m["changes"] if isinstance(m["changes"], dict) else json.loads(m["changes"]) for m in made]
    assert sorted(c["person"][1] for c in changes) == sorted([wang, zhao])
    assert all(c["owner"][1] == rep_id for c in changes)
    await _role_dashboards_from_the_installed_datasets(boss_id, report_id)


async def _role_dashboards_from_the_installed_datasets(boss_id: int, report_id: int) -> None:
    """Marketing (segment sizes, tiers, campaigns), service (backlog, SLA, CSAT) and admin (usage from the audit
    log) get a dashboard each; their figures are the datasets' (tiers inserted above; the report saved above)."""
    from crm_reports import dashboards, reports

    from core import datasets
    from core.security import access, principal
    from core.testing import make_user

    assert await dashboards.refresh_defaults() == 5  # sales, marketing, service, administration, finance

    async def board(login: str, role: str) -> dict[str, Any]:
        acc = access.Access(await principal.load(await make_user(login, role), implied=access.policy().implied))
        found = await dashboards.home(acc)
        assert found is not None
        cards = [await reports.get(acc, c["report"]) for c in (await dashboards.get(acc, found["id"]))["cards"]]
        readable = {d.key for d in await datasets.datasets(acc)}  # as the page shows them
        return {"name": found["name"], "cards": {c["name"]: await reports.result(acc, c) for c in cards
                                                 if c["dataset"] in readable}}

    marketing = await board("mk", "marketing")
    assert marketing["name"] == "Marketing" and "Segment sizes" in marketing["cards"]
    assert {r["tier"]: r["count"] for r in marketing["cards"]["Customers by value tier"].rows} == {
        "gold": 1, "silver": 1}
    # campaign ROI comes from crm_marketing's dataset under the orders' rights: not for a role without orders
    assert "Campaign ROI" not in marketing["cards"]
    service = await board("agent", "service_agent")
    assert service["name"] == "Service" and {"Backlog by priority", "Resolution SLA breached",
                                             "Customer rating (CSAT)"} <= set(service["cards"])
    assert service["cards"]["Open tickets"].rows[0]["count"] == 0
    boss = access.Access(await principal.load(boss_id, implied=access.policy().implied))
    market = next(b for b in await dashboards.visible(boss) if b["name"] == "Marketing")
    roi_card = next(c for c in [await reports.get(boss, c["report"]) for c in (await dashboards.get(
        boss, market["id"]))["cards"]] if c["name"] == "Campaign ROI")
    assert [c.key for c in (await reports.result(boss, roi_card)).columns] == ["campaign", "roi", "revenue", "cost"]
    admin = next(b for b in await dashboards.visible(boss) if b["name"] == "Administration")
    cards = [await reports.get(boss, c["report"]) for c in (await dashboards.get(boss, admin["id"]))["cards"]]
    by_model = next(c for c in cards if c["name"] == "Changes by model")
    counted = {r["model"]: r["count"] for r in (await reports.result(boss, by_model)).rows}
    assert counted.get("crm_reports.report", 0) >= 1  # the churn report saved above, audited
