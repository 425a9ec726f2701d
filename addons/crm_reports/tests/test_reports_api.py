"""The JSON API: datasets (with the builder's choices), reports (create with 422/403 naming the field, list),
a report's result with its chart spec, ad hoc queries, dashboards; every call as the signed-in user."""

from __future__ import annotations

from typing import Any

from reports_helpers import DEALS, Org, build_org

from core.testing import csrf_of, login_client


async def datasets_reports_results_and_dashboards(client: Any, org: Org) -> None:
    """(Run by test_exports.test_pages_exports_and_api: one app and one organisation for the HTTP tests.)"""
    await login_client(client, "rep1")
    token = csrf_of((await client.get("/reports/reports")).text)
    headers = {"X-CSRF-Token": token}
    found = (await client.get("/reports/api/datasets")).json()["datasets"]
    deals = next(d for d in found if d["key"] == DEALS)
    assert {"closed_at:month", "stage"} <= {d["name"] for d in deals["dimensions"]}
    assert {"count", "distinct:owner", "avg:expected_revenue"} <= {m["name"] for m in deals["measures"]}
    bad = await client.post("/reports/api/reports", headers=headers, json={
        "name": "x", "dataset": DEALS, "chart": "bar", "spec": {"dimensions": ["stage"], "measures": ["sum:nope"]}})
    assert bad.status_code == 422 and "nope" in bad.json()["message"]
    bad = await client.post("/reports/api/reports", headers=headers, json={
        "name": "x", "dataset": DEALS, "chart": "radar", "spec": {"dimensions": ["stage"]}})
    assert bad.status_code == 422 and bad.json()["fields"] == {"chart": "unknown chart type 'radar'"}
    made = await client.post("/reports/api/reports", headers=headers, json={
        "name": "Mine by state", "dataset": DEALS, "chart": "pie",
        "spec": {"dimensions": ["state"], "measures": ["count", "expected_revenue"]}})
    assert made.status_code == 201, made.text
    report_id = made.json()["id"]
    assert report_id in [r["id"] for r in (await client.get("/reports/api/reports")).json()["reports"]]
    result = (await client.get(f"/reports/api/reports/{report_id}/result")).json()
    mine = [d for d in org.deals if d["owner"] == org.ids["rep1"]]
    assert sum(r["count"] for r in result["rows"]) == len(mine)
    assert result["chart"]["mark"]["type"] == "arc" and len(result["chart"]["data"]["values"]) == len(result["rows"])
    adhoc = await client.post("/reports/api/query", headers=headers, json={
        "dataset": DEALS, "dimensions": ["created_at:year"], "measures": ["count"], "totals": True})
    assert adhoc.status_code == 200 and adhoc.json()["rows"] == [{"created_at__year": "2026", "count": len(mine)}]
    boards = (await client.get("/reports/api/dashboards")).json()["dashboards"]
    assert [b["name"] for b in boards] == ["Sales"] and boards[0]["cards"]
    # another user's private report is out of reach, through the API as on the pages
    await login_client(client, "rep3")
    assert (await client.get(f"/reports/api/reports/{report_id}/result")).status_code == 404
    assert (await client.get(f"/reports/reports/{report_id}")).status_code == 404


async def test_finance_gets_the_erp_dashboard_when_erp_bridge_is_installed(crm_boot: Any) -> None:
    from crm_reports import dashboards

    runtime = await crm_boot("crm_sales", "erp_bridge", "crm_reports")
    org = await build_org(runtime, deals=4)
    await dashboards.refresh_defaults()
    fin = await org.acc("fin")
    board = (await dashboards.visible(fin))[0]
    from crm_reports import reports

    names = [(await reports.get(fin, c["report"]))["name"] for c in (await dashboards.get(fin, board["id"]))["cards"]]
    assert "Synced and unsynced orders" in names and "Invoices paid and unpaid" in names
    for card in (await dashboards.get(fin, board["id"]))["cards"]:  # every card computes for finance
        await reports.result(fin, await reports.get(fin, card["report"]))


async def kernel_api_reports_and_dashboards(client: Any, org: Org) -> None:
    """Reports and dashboards as kernel resources (``/api/reports/...``, in the OpenAPI document): the spec checked
    as the caller on create and update (422 naming the field), versions (409 when stale), a private definition
    out of reach of another rep (404 on read, result and list) until shared, figures computed as each caller,
    a card refused when it names a report the caller may not open. (Run by test_exports.)"""
    async def as_user(login: str) -> dict[str, str]:
        await login_client(client, login)
        return {"X-CSRF-Token": csrf_of((await client.get("/reports/reports")).text)}

    doc = (await client.get("/api/openapi.json")).json()
    assert {"/api/reports/reports", "/api/reports/reports/{id}/result", "/api/reports/dashboards/{id}"} <= set(
        doc["paths"])
    h = await as_user("rep1")
    spec = {"dimensions": ["state"], "measures": ["count"]}
    bad = await client.post("/api/reports/reports", headers=h, json={"name": "x", "dataset": DEALS,
                                                                     "spec": {"dimensions": ["colour"]}})
    assert bad.status_code == 422 and "dimensions" in bad.json()["error"]["fields"], bad.text
    bad = await client.post("/api/reports/reports", headers=h, json={"name": "x", "dataset": "crm_nope.things",
                                                                     "chart": "table"})
    assert bad.status_code == 422 and "dataset" in bad.json()["error"]["fields"], bad.text
    made = await client.post("/api/reports/reports", headers=h, json={"name": " By state ", "dataset": DEALS,
                                                                      "chart": "pie", "spec": spec})
    assert made.status_code == 201, made.text
    report = made.json()
    assert report["owner"] == org.ids["rep1"] and report["name"] == "By state"
    rid = report["id"]
    result = (await client.post(f"/api/reports/reports/{rid}/result", headers=h)).json()
    assert sum(r["count"] for r in result["rows"]) == sum(1 for d in org.deals if d["owner"] == org.ids["rep1"])
    stale = await client.patch(f"/api/reports/reports/{rid}", headers=h, json={"name": "Old", "version": 0})
    assert stale.status_code == 409
    wrong = await client.patch(f"/api/reports/reports/{rid}", headers=h,
                               json={"spec": {"dimensions": ["state"], "measures": ["sum:nope"]},
                                     "version": report["version"]})
    assert wrong.status_code == 422 and "measures" in wrong.json()["error"]["fields"]
    h3 = await as_user("rep3")
    assert (await client.get(f"/api/reports/reports/{rid}", headers=h3)).status_code == 404
    assert (await client.post(f"/api/reports/reports/{rid}/result", headers=h3)).status_code == 404
    assert rid not in [r["id"] for r in (await client.get("/api/reports/reports?limit=200", headers=h3)).json()[
        "items"]]
    card = await client.post("/api/reports/dashboards", headers=h3, json={"name": "Mine", "cards": [{"report": rid}]})
    assert card.status_code == 422 and "cards[0].report" in card.json()["error"]["fields"]
    h = await as_user("rep1")
    shared = await client.patch(f"/api/reports/reports/{rid}", headers=h,
                                json={"shared_users": [org.ids["rep3"]], "version": report["version"]})
    assert shared.status_code == 200 and shared.json()["version"] == report["version"] + 1, shared.text
    h3 = await as_user("rep3")
    assert (await client.get(f"/api/reports/reports/{rid}", headers=h3)).json()["name"] == "By state"
    board = await client.post("/api/reports/dashboards", headers=h3, json={"name": "Mine", "cards": [
        {"report": rid, "width": 2, "warn_below": 1}]})
    assert board.status_code == 201 and board.json()["owner"] == org.ids["rep3"], board.text
    figures = (await client.post(f"/api/reports/dashboards/{board.json()['id']}/result", headers=h3)).json()
    # the shared report computes as rep3: their own deals, never rep1's
    assert sum(r["count"] for r in figures["cards"][0]["rows"]) == sum(
        1 for d in org.deals if d["owner"] == org.ids["rep3"])
    assert (await client.patch(f"/api/reports/reports/{rid}", headers=h3,
                               json={"name": "Taken", "version": report["version"] + 1})).status_code == 404
