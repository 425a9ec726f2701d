"""The JSON API: leads (rules run), opportunities (409), quotes with send/accept actions, orders, idempotency."""

from __future__ import annotations

from typing import Any

from crm_sales.models import AssignmentMember, AssignmentRule, Lead, Order

from core.security.sessions import create_token


async def _api(crm_client: Any) -> tuple[Any, Any, dict[str, dict[str, str]]]:
    from sales_helpers import build_org

    from core.runtime import current

    client = await crm_client("crm_sales")
    org = await build_org(current())
    headers = {}
    for login, role in (("rep1", "sales_rep"), ("rep2", "sales_rep"), ("manager", "sales_manager")):
        secret = await create_token(org.ids[login], "test", roles=[role])
        headers[login] = {"Authorization": f"Bearer {secret}"}
    return client, org, headers


async def test_lead_created_by_api_is_assigned_by_the_rules(crm_client: Any) -> None:
    client, org, h = await _api(crm_client)
    rule = await AssignmentRule.insert(AssignmentRule(name="API leads", source="api")).returning(AssignmentRule.id)
    await AssignmentMember.insert(AssignmentMember(rule=rule[0]["id"], user=org.ids["rep2"]))
    body = {"name": "From the website", "source": "api", "expected_revenue": 1200.5}
    first = await client.post("/api/sales/leads", json=body, headers={**h["manager"], "Idempotency-Key": "k1"})
    assert first.status_code == 201, first.text
    again = await client.post("/api/sales/leads", json=body, headers={**h["manager"], "Idempotency-Key": "k1"})
    assert again.json()["id"] == first.json()["id"] and await Lead.count() == 1
    lead = first.json()
    assert lead["owner"] == org.ids["rep2"] and lead["expected_revenue"] in ("1200.5", "1200.50")
    assert (await client.get(f"/api/sales/leads/{lead['id']}", headers=h["rep1"])).status_code == 404
    qualified = await client.post(f"/api/sales/leads/{lead['id']}/qualify", headers=h["rep2"])
    assert qualified.status_code == 200 and qualified.json()["opportunity_id"]


async def test_quote_send_accept_and_order_through_the_api(crm_client: Any) -> None:
    client, org, h = await _api(crm_client)
    lead = (await client.post("/api/sales/leads", json={"name": "Deal", "contact_name": "Li Lei",
                                                        "email": "li@example.com"}, headers=h["rep1"])).json()
    opp_id = (await client.post(f"/api/sales/leads/{lead['id']}/qualify", headers=h["rep1"])).json()["opportunity_id"]
    opp = (await client.get(f"/api/sales/opportunities/{opp_id}", headers=h["rep1"])).json()
    ok = await client.patch(f"/api/sales/opportunities/{opp_id}", json={"name": "Renamed", "version": opp["version"]},
                            headers=h["rep1"])
    assert ok.status_code == 200
    stale = await client.patch(f"/api/sales/opportunities/{opp_id}", json={"name": "Again", "version": opp["version"]},
                               headers=h["rep1"])
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "conflict"
    quote = await client.post("/api/sales/quotes", headers=h["rep1"], json={
        "opportunity": opp_id, "lines": [{"description": "Licence", "quantity": "3", "unit_price": "99.99",
                                          "tax_rate": "0.06"}]})
    assert quote.status_code == 201, quote.text
    q = quote.json()
    assert q["total"] in ("317.97", "317.9700")  # 299.97 + 18.00
    empty_send = await client.post("/api/sales/quotes", headers=h["rep1"], json={"opportunity": opp_id})
    refused = await client.post(f"/api/sales/quotes/{empty_send.json()['id']}/send", headers=h["rep1"])
    assert refused.status_code == 422  # no lines
    sent = await client.post(f"/api/sales/quotes/{q['id']}/send", headers=h["rep1"])
    assert sent.status_code == 200 and "/sales/q/" in sent.json()["accept_url"]
    edit = await client.patch(f"/api/sales/quotes/{q['id']}", json={"notes": "late", "version": 99}, headers=h["rep1"])
    assert edit.status_code in (409, 422)
    accepted = await client.post(f"/api/sales/quotes/{q['id']}/accept", json={"name": "Li Lei (signed PDF)"},
                                 headers=h["rep1"])
    assert accepted.status_code == 200, accepted.text
    order_id = accepted.json()["order_id"]
    order = (await client.get(f"/api/sales/orders/{order_id}", headers=h["rep1"])).json()
    assert order["reference"] == f"CRM-SO-{order_id}" and order["state"] == "confirmed"
    assert (await client.get(f"/api/sales/opportunities/{opp_id}", headers=h["rep1"])).json()["state"] == "won"
    made = await client.post("/api/sales/orders", json={}, headers=h["manager"])
    assert made.status_code == 405 and await Order.count() == 1  # orders are read-only over the API
    cancel_by_rep = await client.post(f"/api/sales/orders/{order_id}/cancel", headers=h["rep1"])
    assert cancel_by_rep.status_code == 403
    cancel = await client.post(f"/api/sales/orders/{order_id}/cancel", headers=h["manager"])
    assert cancel.status_code == 200


async def test_openapi_lists_the_sales_resources(crm_client: Any) -> None:
    client, _, _ = await _api(crm_client)
    paths = (await client.get("/api/openapi.json")).json()["paths"]
    for path in ("leads", "opportunities", "activities", "products", "quotes", "orders"):
        assert f"/api/sales/{path}" in paths


async def test_manager_configures_a_rule_through_the_api(crm_client: Any) -> None:
    client, org, h = await _api(crm_client)
    rule = await client.post("/api/sales/assignment-rules", headers=h["manager"],
                             json={"name": "North", "region": "北京", "strategy": "least_loaded"})
    assert rule.status_code == 201, rule.text
    bad = await client.post("/api/sales/assignment-rules", headers=h["manager"], json={"name": "x", "strategy": "?"})
    assert bad.status_code == 422
    member = await client.post("/api/sales/assignment-members", headers=h["manager"],
                               json={"rule": rule.json()["id"], "user": org.ids["rep1"], "capacity": 5})
    assert member.status_code == 201, member.text
    mine = await client.post("/api/sales/assignment-rules", headers=h["rep1"], json={"name": "mine"})
    assert mine.status_code == 403
    lead = await client.post("/api/sales/leads", headers=h["manager"], json={"name": "Beijing lead", "region": "北京"})
    assert lead.json()["owner"] == org.ids["rep1"]
