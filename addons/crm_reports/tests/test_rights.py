"""Rights apply to every figure: for each role, a report's totals equal the sum of the rows the same role can
list; a report shared with a role computes as each viewer (never as its author)."""

from __future__ import annotations

from decimal import Decimal

from reports_helpers import DEALS, Org

from core import datasets
from core.datasets import Query


async def _each_roles_totals_equal_the_rows_it_can_list(org: Org) -> None:
    seen = {}
    for login in ("rep1", "rep2", "rep3", "manager", "fin", "boss"):
        acc = await org.acc(login)
        ds = await datasets.dataset(DEALS, acc)
        listed = await (await acc.select(ds.table, ds.model, ds.table.id, ds.table.state,
                                         ds.table.expected_revenue)).limit(10_000)
        result = await datasets.run(acc, Query(DEALS, ("state",), ("count", "expected_revenue"), totals=True))
        grand = next(t for t in result.totals if t["_level"] == 0)
        assert grand["count"] == len(listed) == sum(r["count"] for r in result.rows), login
        assert grand["expected_revenue"] == sum((r["expected_revenue"] for r in listed), Decimal(0)), login
        by_state = {r["state"]: r["count"] for r in result.rows}
        assert by_state == {s: sum(1 for r in listed if r["state"] == s) for s in {r["state"] for r in listed}}
        seen[login] = len(listed)
    # the scopes differ, so the comparison above is not vacuous: own < team < all
    assert seen["rep1"] == sum(1 for d in org.deals if d["owner"] == org.ids["rep1"]) > 0
    assert seen["rep1"] < seen["manager"] < seen["boss"] == len(org.deals) == seen["fin"]


async def _a_shared_report_computes_as_each_viewer(org: Org) -> None:
    from crm_reports import reports

    manager = await org.acc("manager")
    report_id = await reports.save(manager, {"name": "Pipeline", "dataset": DEALS, "chart": "bar",
                                             "spec": {"dimensions": ["owner"], "measures": ["count"]},
                                             "shared_roles": ["sales_rep"]})
    rep3 = await org.acc("rep3")
    report = await reports.get(rep3, report_id)
    rows = (await reports.result(rep3, report)).rows
    assert [r["owner"] for r in rows] == [org.ids["rep3"]]
    assert rows[0]["count"] == sum(1 for d in org.deals if d["owner"] == org.ids["rep3"])
    # a role it is not shared with does not see it (404, not a leak)
    from core.errors import NotFound

    try:
        await reports.get(await org.acc("fin"), report_id)
        raise AssertionError("finance opened a report not shared with it")
    except NotFound:
        pass
    assert report_id not in [r["id"] for r in await reports.visible(await org.acc("fin"))]
    assert report_id in [r["id"] for r in await reports.visible(rep3)]


async def test_rights_apply_to_every_figure(org: Org) -> None:
    """Both checks on one organisation (one database per backend)."""
    await _each_roles_totals_equal_the_rows_it_can_list(org)
    await _a_shared_report_computes_as_each_viewer(org)
