"""Pages and the board's drag-and-drop through the real app (middleware, CSRF, templates), and the public
acceptance page a customer uses without an account."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from crm_sales import acceptance, quotes
from crm_sales.models import Opportunity, Order, PipelineStage, Quote
from sales_helpers import new_deal

from core.testing import csrf_of, login_client

PAGES = ("/sales/", "/sales/opportunities", "/sales/leads", "/sales/activities", "/sales/quotes", "/sales/orders",
         "/sales/products", "/sales/forecast")


async def _app(crm_client: Any) -> tuple[Any, Any]:
    from sales_helpers import build_org

    from core.runtime import current

    client = await crm_client("crm_sales")
    return client, await build_org(current())


async def _stage(key: str) -> int:
    return int((await PipelineStage.select(PipelineStage.id).where(PipelineStage.key == key).first())["id"])


async def test_pages_render_for_a_rep(crm_client: Any) -> None:
    client, org = await _app(crm_client)
    opp_id = await new_deal(await org.acc("rep1"), "网站改版 Website", email="a@example.com")
    await login_client(client, "rep1")
    for path in PAGES:
        response = await client.get(path)
        assert response.status_code == 200, (path, response.text[:300])
    board = (await client.get("/sales/")).text
    assert "网站改版 Website" in board and 'src="/static/crm_sales/kanban.js"' in board
    assert "<script>" not in board  # CSP: script-src 'self', no inline scripts
    detail = await client.get(f"/sales/opportunities/{opp_id}")
    assert detail.status_code == 200 and "Stage history" in detail.text
    js = await client.get("/static/crm_sales/kanban.js")
    assert js.status_code == 200 and "X-CSRF-Token" in js.text


async def test_board_drop_moves_with_csrf_header_and_rejects_stale_or_foreign(crm_client: Any) -> None:
    client, org = await _app(crm_client)
    opp_id = await new_deal(await org.acc("rep1"), "Drag me")
    other = await new_deal(await org.acc("rep2"), "Not yours")
    await login_client(client, "rep1")
    token = re.search(r'data-csrf="([^"]+)"', (await client.get("/sales/")).text).group(1)
    body = {"stage": await _stage("contacted"), "version": 1}
    refused = await client.post(f"/sales/opportunities/{opp_id}/move", json=body)
    assert refused.status_code == 403  # no CSRF header
    moved = await client.post(f"/sales/opportunities/{opp_id}/move", json=body, headers={"X-CSRF-Token": token})
    assert moved.status_code == 200 and moved.json()["stage"] == body["stage"] and moved.json()["version"] == 2
    stale = await client.post(f"/sales/opportunities/{opp_id}/move", headers={"X-CSRF-Token": token},
                              json={"stage": await _stage("quoted"), "version": 1})
    assert stale.status_code == 409
    lost = await client.post(f"/sales/opportunities/{opp_id}/move", headers={"X-CSRF-Token": token},
                             json={"stage": await _stage("lost"), "version": 2})
    assert lost.status_code == 422  # a lost reason is required
    foreign = await client.post(f"/sales/opportunities/{other}/move", headers={"X-CSRF-Token": token},
                                json={"stage": await _stage("contacted")})
    assert foreign.status_code == 404
    row = await Opportunity.select(Opportunity.stage).where(Opportunity.id == opp_id).first()
    assert row["stage"] == await _stage("contacted")


async def test_lead_form_then_qualify(crm_client: Any) -> None:
    client, org = await _app(crm_client)
    await login_client(client, "rep1")
    csrf = csrf_of((await client.get("/sales/leads")).text)
    created = await client.post("/sales/leads", data={"csrf_token": csrf, "name": "Trade fair lead",
                                                      "contact_name": "张伟", "phone": "13812345678",
                                                      "expected_revenue": "50000"})
    assert created.status_code == 303
    lead_url = created.headers["location"]
    qualified = await client.post(lead_url + "/qualify", data={"csrf_token": csrf})
    assert qualified.status_code == 303 and "/sales/opportunities/" in qualified.headers["location"]
    page = await client.get(qualified.headers["location"])
    assert "张伟" in page.text


async def test_customer_accepts_through_the_public_link(crm_client: Any) -> None:
    client, org = await _app(crm_client)
    rep = await org.acc("rep1")
    opp_id = await new_deal(rep, "Servers", email="buyer@example.com", language="zh_CN")
    quote_id = await quotes.create_quote(rep, opp_id, [{"description": "服务器", "quantity": "1",
                                                        "unit_price": "1000", "tax_rate": "0.13"}])
    url = (await acceptance.send(rep, quote_id))["accept_url"]
    path = url[url.index("/sales/q/"):]
    page = await client.get(path)  # no login
    assert page.status_code == 200 and "服务器" in page.text and "¥1,130.00" in page.text
    pdf = await client.get(path + "/pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    no_csrf = await client.post(path, data={"decision": "accept", "name": "王芳"})
    assert no_csrf.status_code == 403
    bad = await client.get(path[:-3] + "xyz")
    assert bad.status_code == 404
    done = await client.post(path, data={"decision": "accept", "name": "王芳", "csrf_token": csrf_of(page.text)})
    assert done.status_code == 200, done.text[:300]
    order = await Order.select().where(Order.quote == quote_id).first()
    assert order is not None and order["reference"] == f"CRM-SO-{order['id']}"
    assert (await Quote.select(Quote.decided_by).where(Quote.id == quote_id).first())["decided_by"] == "王芳"
    # the customer's copy: the same link still opens the accepted quote, read-only, and its PDF downloads
    again = await client.get(path)
    assert again.status_code == 200 and "服务器" in again.text and 'value="accept"' not in again.text
    assert "已接受" in again.text or "accepted" in again.text
    pdf = await client.get(path + "/pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    twice = await client.post(path, data={"decision": "accept", "name": "王芳", "csrf_token": csrf_of(page.text)})
    assert twice.status_code == 200 and await Order.count().where(Order.quote == quote_id) == 1


async def test_order_page_shows_panels_other_addons_contribute(crm_client: Any) -> None:
    from core.hooks import Panel, hookimpl

    client, org = await _app(crm_client)
    asked: list[tuple[str, int, int]] = []

    class Probe:  # what an addon's hooks.py does (erp_bridge adds its ERP sync panel this way)
        @hookimpl
        async def crm_record_panels(self, access: Any, model: str, record_id: int) -> Any:
            asked.append((model, record_id, access.principal.user_id))
            return Panel(key="probe", title="Probe panel", order=5) if model == "crm_sales.order" else None

    org.runtime.plugins.register(Probe())
    rep = await org.acc("rep1")
    opp_id = await new_deal(rep, "Racks", email="racks@example.com")
    quote_id = await quotes.create_quote(rep, opp_id, [{"description": "Rack", "quantity": "1",
                                                        "unit_price": "500", "tax_rate": "0.13"}])
    await acceptance.send(rep, quote_id)
    order_id = await acceptance.accept(quote_id, by="Li", via="link")
    await login_client(client, "rep1")
    page = await client.get(f"/sales/orders/{order_id}")
    assert page.status_code == 200, page.text[:300]
    assert '<section class="card panel" data-panel="probe">' in page.text and "Probe panel" in page.text
    assert asked == [("crm_sales.order", order_id, org.ids["rep1"])]
    await login_client(client, "rep3")  # another team's rep: the order is out of scope, no panel is asked for
    assert (await client.get(f"/sales/orders/{order_id}")).status_code == 404
    assert len(asked) == 1


async def test_forecast_json_weights_open_deals_by_probability(crm_client: Any) -> None:
    import datetime as dt

    client, org = await _app(crm_client)
    rep = await org.acc("rep1")
    month = dt.date.today().replace(day=15)
    a = await new_deal(rep, "A", revenue="10000")
    b = await new_deal(rep, "B", revenue="5000")
    await Opportunity.update({Opportunity.expected_close: month, Opportunity.probability: 30}).where(
        Opportunity.id == a)
    await Opportunity.update({Opportunity.expected_close: month, Opportunity.probability: 50}).where(
        Opportunity.id == b)
    c = await new_deal(rep, "C", revenue="7000")
    from crm_sales import pipeline

    await pipeline.mark_won(rep, c)
    await login_client(client, "rep1")
    data = (await client.get("/sales/forecast.json")).json()
    row = next(r for r in data["rows"] if r["month"] == month.strftime("%Y-%m"))
    figures = tuple(Decimal(row[k]) for k in ("weighted", "pipeline", "won"))
    assert figures == (Decimal("5500.00"), Decimal(15000), Decimal(7000)) and row["deals"] == 2


async def test_contact_360_page_shows_the_sales_panel(crm_client: Any) -> None:
    client, org = await _app(crm_client)
    opp_id = await new_deal(await org.acc("rep1"), "机房扩容 Datacenter", email="dc@example.com")
    person = (await Opportunity.select(Opportunity.person).where(Opportunity.id == opp_id).first())["person"]
    await login_client(client, "rep1")
    page = await client.get(f"/contacts/people/{person}")
    assert page.status_code == 200, page.text[:300]
    assert 'data-panel="crm_sales"' in page.text and "机房扩容 Datacenter" in page.text
    assert f"/sales/opportunities/{opp_id}" in page.text


async def test_my_activities_hide_a_deal_outside_my_record_rules(crm_client: Any) -> None:
    import datetime as dt

    from crm_sales import activities

    client, org = await _app(crm_client)
    secret = await new_deal(await org.acc("rep1"), "Secret deal of team A")
    due = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    await activities.create_activity(await org.acc("manager"), {
        "subject": "Call about it", "due_at": due, "opportunity": secret, "owner": org.ids["rep3"]})
    await login_client(client, "rep3")
    page = await client.get("/sales/activities")
    assert page.status_code == 200 and "Call about it" in page.text
    assert "Secret deal of team A" not in page.text and f"/sales/opportunities/{secret}" not in page.text
    assert (await client.get(f"/sales/opportunities/{secret}")).status_code == 404


async def test_deal_page_links_its_customer_only_where_contact_rules_allow(crm_client: Any) -> None:
    client, org = await _app(crm_client)
    opp_id = await new_deal(await org.acc("rep1"), "Shared customer deal", contact="Zhao Min")
    await Opportunity.update({Opportunity.owner: org.ids["rep3"], Opportunity.team: org.team_b}).where(
        Opportunity.id == opp_id)
    person = (await Opportunity.select(Opportunity.person).where(Opportunity.id == opp_id).first())["person"]
    await login_client(client, "rep3")
    page = await client.get(f"/sales/opportunities/{opp_id}")
    assert page.status_code == 200 and "Zhao Min" in page.text
    assert f'href="/contacts/people/{person}"' not in page.text
    client.cookies.clear()
    await login_client(client, "rep1")
    mine = await client.get(f"/sales/opportunities/{opp_id}")
    assert mine.status_code == 404  # the deal moved to team B


async def test_manager_configures_rules_stages_and_products_on_settings_pages(crm_client: Any) -> None:
    from crm_sales.models import AssignmentMember, AssignmentRule

    client, org = await _app(crm_client)
    await login_client(client, "manager")
    index = await client.get("/settings")
    for path in ("stages", "assignment-rules", "assignment-members", "price-lists", "price-list-items", "products"):
        assert f'href="/settings/sales/{path}"' in index.text, path
        assert (await client.get(f"/settings/sales/{path}")).status_code == 200, path
    form = await client.get("/settings/sales/assignment-rules/new")
    token = csrf_of(form.text)
    bad = await client.post("/settings/sales/assignment-rules/new", data={
        "csrf_token": token, "name": "South China", "strategy": "random", "team": str(org.team_a)})
    assert bad.status_code == 422 and "must be round_robin or least_loaded" in bad.text
    made = await client.post("/settings/sales/assignment-rules/new", data={
        "csrf_token": token, "name": "South China", "strategy": "least_loaded", "region": "广东",
        "min_value": "5000", "team": str(org.team_a), "is_active": "1", "sequence": "5"})
    assert made.status_code == 303
    rule = await AssignmentRule.select().where(AssignmentRule.name == "South China").first()
    assert rule["strategy"] == "least_loaded" and rule["min_value"] == Decimal("5000") and rule["is_active"]
    member = await client.post("/settings/sales/assignment-members/new", data={
        "csrf_token": token, "rule": str(rule["id"]), "user": str(org.ids["rep2"]), "capacity": "3"})
    assert member.status_code == 303
    assert await AssignmentMember.count().where(AssignmentMember.rule == rule["id"]) == 1
    client.cookies.clear()
    await login_client(client, "rep1")
    assert (await client.get("/settings/sales/assignment-rules")).status_code == 200  # reps may read the rules
    assert (await client.get("/settings/sales/assignment-rules/new")).status_code == 403
