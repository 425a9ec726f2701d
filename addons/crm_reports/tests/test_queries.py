"""Report queries against a Python reference over generated deals: group-bys, date grains, every aggregate,
filters in the kernel's condition language, sort, subtotals and totals; bad names are 422/403 naming them; on
PostgreSQL a query past its time limit is cancelled with a clear message."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest
from reports_helpers import Org

from core import datasets
from core.datasets import Query
from core.errors import NotFound, PermissionDenied, ValidationError

DEALS = "crm_sales.opportunities"


def _sum(rows: list[dict[str, Any]], key: str = "expected_revenue") -> Decimal:
    return sum((r[key] for r in rows), Decimal(0))


async def _figures_match_a_python_reference(org: Org) -> None:
    boss = await org.acc("boss")
    deals = org.deals
    # by stage: count, sum, avg, min, max, distinct owners; the stage's name comes along for labels
    result = await datasets.run(boss, Query(DEALS, ("stage",), ("count", "expected_revenue", "avg:expected_revenue",
                                                               "min:expected_revenue", "max:expected_revenue",
                                                               "distinct:owner")))
    by_stage: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for d in deals:
        by_stage[d["stage"]].append(d)
    assert {r["stage"] for r in result.rows} == set(by_stage)
    for r in result.rows:
        mine = by_stage[r["stage"]]
        assert r["stage__label"] == org.stages[r["stage"]]
        assert r["count"] == len(mine) and r["expected_revenue"] == _sum(mine)
        assert r["min__expected_revenue"] == min(d["expected_revenue"] for d in mine)
        assert r["max__expected_revenue"] == max(d["expected_revenue"] for d in mine)
        assert abs(r["avg__expected_revenue"] - _sum(mine) / len(mine)) <= Decimal("0.01")
        assert r["distinct__owner"] == len({d["owner"] for d in mine})
    # largest first by default, money as Decimal at the column's scale
    sums = [r["count"] for r in result.rows]
    assert sums == sorted(sums, reverse=True)
    assert all(isinstance(r["expected_revenue"], Decimal) for r in result.rows)


async def _date_grains_filters_sort_and_totals(org: Org) -> None:
    boss = await org.acc("boss")
    won = [d for d in org.deals if d["state"] == "won"]
    cond = {"all": [{"field": "state", "op": "eq", "value": "won"}]}
    months = await datasets.run(boss, Query(DEALS, ("closed_at:month",), ("expected_revenue",), cond,
                                            sort="closed_at__month"))
    ref: dict[str, Decimal] = defaultdict(Decimal)
    for d in won:
        ref[d["closed_at"].strftime("%Y-%m")] += d["expected_revenue"]
    assert [(r["closed_at__month"], r["expected_revenue"]) for r in months.rows] == sorted(ref.items())
    quarters = await datasets.run(boss, Query(DEALS, ("created_at:quarter",), ("count",), sort="created_at__quarter"))
    ref_q: dict[str, int] = defaultdict(int)
    for d in org.deals:
        ref_q[f"{d['created_at'].year}-Q{(d['created_at'].month + 2) // 3}"] += 1
    assert [(r["created_at__quarter"], r["count"]) for r in quarters.rows] == sorted(ref_q.items())
    weeks = await datasets.run(boss, Query(DEALS, ("created_at:week",), ("count",)))
    ref_w: dict[str, int] = defaultdict(int)
    for d in org.deals:
        monday = d["created_at"].date().toordinal() - d["created_at"].weekday()
        ref_w[str(type(d["created_at"].date()).fromordinal(monday))] += 1
    assert {r["created_at__week"]: r["count"] for r in weeks.rows} == ref_w
    # two dimensions with subtotals per region and the grand total, computed by the database
    pivot = await datasets.run(boss, Query(DEALS, ("region", "state"), ("count", "expected_revenue"), totals=True))
    assert sum(r["count"] for r in pivot.rows) == len(org.deals)
    grand = [t for t in pivot.totals if t["_level"] == 0]
    assert len(grand) == 1 and grand[0]["count"] == len(org.deals) and grand[0]["expected_revenue"] == _sum(org.deals)
    subtotals = {t["region"]: t["count"] for t in pivot.totals if t["_level"] == 1}
    assert subtotals == {reg: sum(1 for d in org.deals if d["region"] == reg) for reg in {d["region"] for d in
                                                                                          org.deals}}
    # the subtotals worked out from every group (PostgreSQL: one scan) equal the database's ROLLUP, which runs
    # when the groups are cut short by the limit; with a reference (labels) and min/max
    spec = (DEALS, ("owner", "state"), ("count", "max:expected_revenue", "min:created_at"))
    whole = await datasets.run(boss, Query(*spec, totals=True))
    cut = await datasets.run(boss, Query(*spec, totals=True, limit=len(whole.rows)))
    assert len(whole.totals) == 1 + len({d["owner"] for d in org.deals})
    assert sorted(map(repr, whole.totals)) == sorted(map(repr, cut.totals))
    # a filter with "in" and a comparison, sorted ascending by a measure, limited
    cond2 = {"all": [{"field": "region", "op": "in", "value": ["华东", "North"]},
                     {"field": "expected_revenue", "op": "gte", "value": "100"}]}
    rows = (await datasets.run(boss, Query(DEALS, ("owner",), ("count",), cond2, sort="count", limit=2))).rows
    ref_o: dict[int, int] = defaultdict(int)
    for d in org.deals:
        if d["region"] in ("华东", "North") and d["expected_revenue"] >= 100:
            ref_o[d["owner"]] += 1
    assert [r["count"] for r in rows] == sorted(ref_o.values())[:2]


async def _unknown_names_are_422_and_unreadable_fields_403(org: Org) -> None:
    from core.customfields import admin
    from core.security.principal import load

    rep = await org.acc("rep1")
    with pytest.raises(NotFound, match="no dataset 'nope'"):
        await datasets.run(rep, Query("nope"))
    with pytest.raises(ValidationError, match="no dimension 'colour'"):
        await datasets.run(rep, Query(DEALS, ("colour",)))
    with pytest.raises(ValidationError, match="no measure 'median:expected_revenue'"):
        await datasets.run(rep, Query(DEALS, (), ("median:expected_revenue",)))
    with pytest.raises(ValidationError, match="no column 'name'"):
        await datasets.run(rep, Query(DEALS, (), ("sum:name",)))
    with pytest.raises(ValidationError, match="cannot sort by 'name'"):
        await datasets.run(rep, Query(DEALS, ("state",), ("count",), sort="name"))
    with pytest.raises(ValidationError, match="grain"):
        await datasets.run(rep, Query(DEALS, ("state:month",)))
    with pytest.raises(ValidationError, match="condition"):
        await datasets.run(rep, Query(DEALS, ("state",), condition={"field": "nope", "op": "eq", "value": 1}))
    # a custom field hidden from reps: neither groupable nor filterable by them, fine for a manager
    await admin.create(await load(org.ids["boss"]), {"model": "crm_sales.opportunity", "key": "margin",
                                                     "kind": "text", "label_en": "Margin",
                                                     "rules": {"sales_rep": "hidden"}})
    rep = await org.acc("rep1")
    with pytest.raises(PermissionDenied) as denied:
        await datasets.run(rep, Query(DEALS, ("cf_margin",)))
    assert "margin" in str(denied.value)
    with pytest.raises(PermissionDenied, match="margin"):
        await datasets.run(rep, Query(DEALS, ("state",), condition={"field": "custom.margin", "op": "eq",
                                                                    "value": "x"}))
    finance = await org.acc("fin")
    assert (await datasets.run(finance, Query(DEALS, ("cf_margin",)))).rows[0]["count"] == len(org.deals)


async def _a_slow_query_is_cancelled_on_postgres(org: Org) -> None:
    from core import db
    from core.datasets import QueryTimeout, limited

    if not db.is_postgres():
        # SQLite runs in-process with no statement timeout: the query runs, as the docstring of run() says
        assert (await datasets.run(await org.acc("boss"), Query(DEALS), timeout=0.001)).rows
        return
    Opportunity = (await datasets.dataset(DEALS, await org.acc("boss"))).table  # noqa: N806

    async def slow() -> Any:
        return await Opportunity.raw("SELECT pg_sleep(2)")

    with pytest.raises(QueryTimeout, match="cancelled"):
        await limited(Opportunity, slow, 0.05)
    # the connection is usable afterwards and the same session's next report runs
    assert (await datasets.run(await org.acc("boss"), Query(DEALS))).rows[0]["count"] == len(org.deals)


async def _funnel_conversion_and_bottleneck_against_a_reference(org: Org) -> None:
    from crm_reports import charts

    boss = await org.acc("boss")
    table = (await datasets.dataset(DEALS, boss)).table
    stage_table = table._meta.get_column_by_name("stage")._foreign_key_meta.resolved_references
    sequence = {r["id"]: r["sequence"] for r in await stage_table.select(stage_table.id, stage_table.sequence)}
    result = await datasets.run(boss, Query(DEALS, ("stage",), ("count",)))
    got = charts.funnel(result)
    counts: dict[int, int] = defaultdict(int)
    for d in org.deals:
        counts[d["stage"]] += 1
    order = sorted(counts, key=lambda s: sequence[s])
    reached = [sum(counts[s] for s in order[i:]) for i in range(len(order))]
    rates = [Decimal(reached[i + 1]) / reached[i] for i in range(len(order) - 1)]
    assert [g["key"] for g in got] == order
    assert [g["rate"] for g in got[:-1]] == rates and got[-1]["rate"] is None
    assert [g["bottleneck"] for g in got].index(True) == rates.index(min(rates))
    assert sum(g["bottleneck"] for g in got) == 1


async def _deal_cycle_by_industry_and_owner_and_funnel_links(org: Org) -> None:
    import datetime as dt

    from crm_reports import drill

    boss = await org.acc("boss")
    ds = await datasets.dataset(DEALS, boss)
    table = ds.table
    # cycles of 20 days (the generated ones) and of 20 + id % 7 days, in two industries
    for d in org.deals:
        if d["state"] == "won" and d["id"] % 2:
            d["closed_at"] = d["created_at"] + dt.timedelta(days=20 + d["id"] % 7, hours=12)
            await table.update({table._meta.get_column_by_name("closed_at"): d["closed_at"]}).where(
                table._meta.primary_key == d["id"])
        d["industry"] = ("制造", "零售")[d["id"] % 3 == 0]
    for industry in ("制造", "零售"):
        await table.update({table._meta.get_column_by_name("industry"): industry}).where(
            table._meta.primary_key.is_in([d["id"] for d in org.deals if d["industry"] == industry]))
    won = {"field": "state", "op": "eq", "value": "won"}
    for dim in ("industry", "owner"):
        got = await datasets.run(boss, Query(DEALS, (dim,), ("cycle_days",), won))
        ref: dict[Any, list[float]] = defaultdict(list)
        for d in org.deals:
            if d["state"] == "won":
                ref[d[dim]].append((d["closed_at"] - d["created_at"]).total_seconds() / 86400)
        assert {r[dim]: r["cycle_days"] for r in got.rows} == {
            k: Decimal(str(sum(v) / len(v))).quantize(Decimal("0.1")) for k, v in ref.items()}
    # a funnel stage links to the deals of that stage over the report's period, on the page the dataset names
    period = {"all": [{"field": "state", "op": "eq", "value": "open"},
                      {"field": "created_at", "op": "gte", "value": "2026-02-01T00:00:00+00:00"},
                      {"field": "created_at", "op": "lte", "value": "2026-06-30"},
                      {"any": [{"field": "region", "op": "eq", "value": "North"}]}]}
    url = drill.link(ds, period, "stage", 7)
    assert url == "/sales/opportunities?state=open&created_at_from=2026-02-01&created_at_to=2026-06-30&stage=7"
    assert drill.link(ds, period, "created_at:month", "2026-02") == ""


async def test_figures_grains_totals_and_funnel(org: Org) -> None:
    """One generated organisation, several questions (one database per backend: the budget)."""
    await _figures_match_a_python_reference(org)
    await _date_grains_filters_sort_and_totals(org)
    await _funnel_conversion_and_bottleneck_against_a_reference(org)
    await _deal_cycle_by_industry_and_owner_and_funnel_links(org)


async def test_bad_names_rights_and_time_limit(org: Org) -> None:
    """Refusals: 422 and 403 naming the field; the statement timeout."""
    await _unknown_names_are_422_and_unreadable_fields_403(org)
    await _a_slow_query_is_cancelled_on_postgres(org)
