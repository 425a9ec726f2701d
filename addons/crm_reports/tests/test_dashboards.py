"""Dashboards: one per role out of the box from the installed datasets; a user's edits go to their own copy,
survive an upgrade of the addon, and KPI thresholds colour the cards."""

from __future__ import annotations

from typing import Any

from reports_helpers import Org

from core.testing import csrf_of, login_client


async def _defaults_per_role_edits_survive_upgrades(org: Org) -> None:
    from crm_reports import dashboards, reports

    # sales, administration (the kernel's usage dataset) and finance (erp_bridge is not installed: finance gets
    # the cards crm_sales' datasets allow)
    assert await dashboards.refresh_defaults() == 3
    assert await dashboards.refresh_defaults() == 0  # nothing to do: not even looked at again
    assert await dashboards.upgrade() == 0  # idempotent when it does look
    rep = await org.acc("rep1")
    board = await dashboards.home(rep)
    assert board is not None and board["name"] == "Sales" and board["owner"] is None
    full = await dashboards.get(rep, board["id"])
    names = [(await reports.get(rep, c["report"]))["name"] for c in full["cards"]]
    assert "Open pipeline by stage" in names and "Won revenue by month" in names
    fin = await org.acc("fin")
    assert [d["name"] for d in await dashboards.visible(fin)] == ["Finance"]
    # the rep removes a card and moves another: that edits the rep's own copy, not the role's dashboard
    cards = list(full["cards"])
    mine = await dashboards.set_cards(rep, board["id"], [cards[1], cards[0]] + cards[3:])
    assert mine != board["id"]
    assert (await dashboards.get(rep, mine))["cards"][0]["report"] == cards[1]["report"]
    assert len((await dashboards.get(rep, board["id"]))["cards"]) == len(cards)
    # an upgrade refreshes defaults nobody edited; the copy stays as the rep arranged it
    await dashboards.upgrade()
    after = await dashboards.get(rep, mine)
    assert [c["report"] for c in after["cards"]] == [cards[1]["report"], cards[0]["report"]] + [
        c["report"] for c in cards[3:]]
    assert (await dashboards.home(rep) or {}).get("id") == mine
    # an administrator editing the role's dashboard itself marks it edited: upgrades leave it alone too
    boss = await org.acc("boss")
    assert await dashboards.set_cards(boss, board["id"], cards[:2]) == board["id"]
    await dashboards.upgrade()
    assert len((await dashboards.get(rep, board["id"]))["cards"]) == 2


async def kpi_thresholds_colour_and_full_screen_refreshes(client: Any, org: Org) -> None:
    """(Run by test_exports.test_pages_exports_and_api: one app and one organisation for the HTTP tests.)"""
    from crm_reports import dashboards

    assert dashboards.colour(5, {"warn_below": 10}) == "bad"
    assert dashboards.colour(50, {"warn_below": 10, "good_above": 40}) == "good"
    assert dashboards.colour(20, {"warn_below": 10, "good_above": 40}) == ""
    await login_client(client, "manager")
    home = await client.get("/reports/")
    assert home.status_code == 303
    page = await client.get(home.headers["location"])
    assert page.status_code == 200 and "<svg" in page.text and "Open pipeline by stage" in page.text
    assert "class=\"bottleneck\"" in page.text and "Conversion to next" in page.text
    # a phone gets each chart drawn at its width (labels at full size), the wide one hidden by the style sheet
    assert page.text.count('class="report-chart chart-narrow"') == page.text.count('class="report-chart chart-wide"')
    assert page.text.count('class="report-chart chart-narrow"') >= 3
    # a funnel stage opens its open deals on the deal list (the link the dataset provides)
    import html
    import re

    stage_link = re.search(r'href="(/sales/opportunities\?state=open&amp;stage=(\d+))"', page.text)
    assert stage_link is not None
    deals = await client.get(html.unescape(stage_link.group(1)))
    stage = int(stage_link.group(2))
    mine = {org.ids["rep1"], org.ids["rep2"], org.ids["manager"]}
    listed = {d["name"] for d in org.deals if d["stage"] == stage and d["state"] == "open" and d["owner"] in mine}
    others = {d["name"] for d in org.deals if d["stage"] != stage}
    assert deals.status_code == 200 and listed
    assert all(f">{n}<" in deals.text for n in listed) and not any(f">{n}<" in deals.text for n in others)
    # over a period (what a report's date filter passes): both ends included, a date that does not read ignored
    import datetime as dt

    spring = await client.get(html.unescape(stage_link.group(1)) + "&created_at_from=2026-03-01"
                              "&created_at_to=2026-04-30&closed_at_to=nope")
    inside = {d["name"] for d in org.deals if d["name"] in listed
              and dt.date(2026, 3, 1) <= d["created_at"].date() <= dt.date(2026, 4, 30)}
    assert spring.status_code == 200 and inside and inside != listed
    assert all(f">{n}<" in spring.text for n in inside) and not any(
        f">{n}<" in spring.text for n in listed - inside)
    board_url = home.headers["location"]
    # the "Open deals" KPI card: a threshold above the figure colours it red
    open_deals = sum(1 for d in org.deals if d["state"] == "open" and d["owner"] in (
        org.ids["rep1"], org.ids["rep2"], org.ids["manager"]))
    idx = page.text.count('class="dash-card', 0, page.text.index("Open deals<"))
    r = await client.post(f"{board_url}/cards", data={"csrf_token": csrf_of(page.text), "action": "set",
                                                      "index": str(idx - 1), "width": "1",
                                                      "warn_below": str(open_deals + 1), "good_above": ""})
    assert r.status_code == 303
    mine = await client.get(r.headers["location"])
    assert "kpi-bad" in mine.text and f">{open_deals}<" in mine.text
    bad = await client.post(f"{board_url}/cards", data={"csrf_token": csrf_of(page.text), "action": "set",
                                                        "index": "0", "warn_below": "lots"})
    assert bad.status_code == 422 and "warn_below" in bad.text
    full = await client.get(r.headers["location"] + "?fullscreen=1")
    assert 'http-equiv="refresh"' in full.text and "Edit card" not in full.text


async def _a_falling_trend_warns_the_owner_once_with_the_rule_and_figures(org: Org) -> None:
    import datetime as dt

    from crm_reports import reports, warnings

    from core import datasets
    from core.bulk import insert_rows
    from core.models import Notification

    # 华南's new deals fall four months in a row (6, 4, 3, 1 in 2027-01..04); North's rise
    table = (await datasets.dataset("crm_sales.opportunities", await org.acc("boss"))).table
    stage = next(iter(org.stages))
    rows = []
    for month, (south, north) in enumerate(((6, 1), (4, 2), (3, 3), (1, 5)), start=1):
        for region, n in (("华南", south), ("North", north)):
            rows += [{"name": f"{region} {month} {i}", "stage": stage, "owner": org.ids["manager"],
                      "region": region, "created_at": dt.datetime(2027, month, 3, tzinfo=dt.UTC)} for i in range(n)]
    await insert_rows(table, rows)
    manager = await org.acc("manager")
    cond = {"field": "created_at", "op": "gte", "value": "2027-01-01T00:00:00+00:00"}
    values = {"name": "New deals by region", "dataset": "crm_sales.opportunities", "chart": "line",
              "spec": {"dimensions": ["created_at:month", "region"], "measures": ["count"], "condition": cond,
                       "warn_falls": 3}}
    report_id = await reports.save(manager, values)
    assert await warnings.check([report_id]) == 1
    assert await warnings.check([report_id]) == 0  # flagged once
    told = await Notification.select().where((Notification.user_id == org.ids["manager"])
                                             & Notification.title.like("New deals by region%"))
    assert len(told) == 1 and "华南" in told[0]["title"]
    assert "2027-01: 6, 2027-02: 4, 2027-03: 3, 2027-04: 1" in told[0]["body"] and "3" in told[0]["body"]
    import pytest

    from core.errors import ValidationError

    with pytest.raises(ValidationError, match="warn_falls"):
        await reports.save(manager, {**values, "spec": {**values["spec"], "dimensions": ["region"]}})


async def test_defaults_copies_and_trend_warnings(org: Org) -> None:
    """Defaults, trend and churn warnings on one organisation (one database per backend)."""
    await _defaults_per_role_edits_survive_upgrades(org)
    await _a_falling_trend_warns_the_owner_once_with_the_rule_and_figures(org)
    await _a_lapsed_customer_is_flagged_once_per_lapse(org)


async def _a_lapsed_customer_is_flagged_once_per_lapse(org: Org) -> None:
    import datetime as dt

    from crm_reports import reports, warnings

    from core import datasets
    from core.bulk import insert_rows
    from core.models import Notification

    boss = await org.acc("boss")
    orders = (await datasets.dataset("crm_sales.orders", boss)).table
    people = orders._meta.get_column_by_name("person")._foreign_key_meta.resolved_references
    wang, li = await insert_rows(people, [{"name": "王伟"}, {"name": "Li Na"}])

    def order(person: int, day: dt.date) -> dict[str, object]:
        return {"person": person, "state": "confirmed", "owner": org.ids["rep1"],
                "confirmed_at": dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)}

    await insert_rows(orders, [order(wang, dt.date(2026, 1, 10)), order(li, dt.date(2026, 3, 1)),
                               order(li, dt.date(2026, 5, 1))])
    report_id = await reports.save(boss, {
        "name": "Last order per customer", "dataset": "crm_sales.orders", "chart": "table",
        "spec": {"dimensions": ["person"], "measures": ["max:confirmed_at", "count"], "stale_days": 60}})
    june = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    assert await warnings.check([report_id], now=june) == 1  # 王伟: 142 days; Li Na: 31 days
    assert await warnings.check([report_id], now=june + dt.timedelta(days=1)) == 0  # flagged once
    told = await Notification.select().where(Notification.url == f"/reports/reports/{report_id}")
    assert len(told) == 1 and "王伟" in told[0]["title"] and "142" in told[0]["title"]
    assert "60" in told[0]["body"] and "2026" in told[0]["body"]
    # 王伟 orders again, then both lapse: each is flagged for this lapse
    await insert_rows(orders, [order(wang, dt.date(2026, 6, 5))])
    assert await warnings.check([report_id], now=dt.datetime(2026, 9, 1, tzinfo=dt.UTC)) == 2


def test_phone_charts_lay_bars_sideways_with_readable_labels() -> None:
    from crm_reports import charts

    from core.datasets import Result, ResultColumn

    result = Result([ResultColumn("owner", "Owner", "dimension"), ResultColumn("count", "Deals", "measure")],
                    [{"owner": f"销售代表 {i} 号", "count": i} for i in range(1, 9)])
    wide = charts.spec(result, "bar")
    phone = charts.narrow(wide)
    assert wide is not None and phone is not None
    assert phone["encoding"]["y"]["field"] == "d0" and phone["encoding"]["x"]["field"] == "v"  # categories down
    assert phone["config"]["axis"]["labelFontSize"] >= 12 and phone["config"]["font"] == wide["config"]["font"]
    svg = charts.svg_sync(phone, width=charts.NARROW, lang="zh_CN")
    assert "销售代表 8 号" in svg and 'font-size="13px"' in svg
