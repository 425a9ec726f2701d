"""Global search and reporting datasets of crm_sales and crm_contacts, seen by reps of two teams and a
role that sees phones masked."""

from __future__ import annotations

from typing import Any

from sales_helpers import Org, new_deal

from core import datasets
from core.search import search


async def test_search_finds_only_what_the_user_may_read(org: Org) -> None:
    rep1, rep3 = await org.acc("rep1"), await org.acc("rep3")
    await new_deal(rep1, "Turbine upgrade", contact="Wang Turbine", phone="+86 138 0013 8000")
    await new_deal(rep3, "Turbine spares", contact="Li Spares")
    kinds = {g.kind: [h.title for h in g.hits] for g in await search(rep1, "turbine")}
    assert kinds["deals"] == ["Turbine upgrade"] and kinds["people"] == ["Wang Turbine"]
    assert kinds["leads"] == ["Turbine upgrade"]
    assert {g.kind: [h.title for h in g.hits] for g in await search(rep3, "turbine")}["deals"] == ["Turbine spares"]
    # finance sees phones masked: a fragment of the number finds nobody; the whole number (which the searcher
    # already has) and the name still do
    fin = await org.acc("fin")
    assert "people" not in {g.kind for g in await search(fin, "0013800")}
    assert [h.title for g in await search(fin, "13800138000") if g.kind == "people" for h in g.hits] == [
        "Wang Turbine"]
    assert [h.title for g in await search(fin, "Wang") if g.kind == "people" for h in g.hits] == ["Wang Turbine"]
    # rep1 sees their own customer's phone in clear and may find them by it
    assert [h.title for g in await search(rep1, "13800138000") if g.kind == "people" for h in g.hits] == [
        "Wang Turbine"]


async def test_deal_dataset_counts_rows_in_the_users_scope(org: Org) -> None:
    rep1, rep2, manager = await org.acc("rep1"), await org.acc("rep2"), await org.acc("manager")
    await new_deal(rep1, "A", revenue="100")
    await new_deal(rep1, "B", revenue="250.50")
    await new_deal(rep2, "C", revenue="1000")
    mine: list[dict[str, Any]] = await datasets.aggregate(rep1, "crm_sales.opportunities", ["state"],
                                                          ["count", "expected_revenue"])
    assert [(r["state"], r["count"], str(r["expected_revenue"])) for r in mine] == [("open", 2, "350.50")]
    team = await datasets.aggregate(manager, "crm_sales.opportunities", ["owner"], ["count"])
    assert {r["owner"]: r["count"] for r in team} == {org.ids["rep1"]: 2, org.ids["rep2"]: 1}
