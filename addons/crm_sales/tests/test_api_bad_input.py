"""No input makes a 500 on the sales API (issue 11 §2): the probe's cases, each a 4xx naming the field, and
records other rows still use refused for deletion (409) instead of breaking or silently unlinking them."""

from __future__ import annotations

import asyncio
from typing import Any

from crm_sales.models import Opportunity, PipelineStage, Product, QuoteLine

from core.security.sessions import create_token

HUGE = 2**63


async def _api(crm_client: Any) -> tuple[Any, Any, dict[str, dict[str, str]]]:
    from sales_helpers import build_org

    from core.runtime import current

    client = await crm_client("crm_sales")
    org = await build_org(current())
    headers = {}
    for login, role in (("rep1", "sales_rep"), ("manager", "sales_manager")):
        secret = await create_token(org.ids[login], "test", roles=[role])
        headers[login] = {"Authorization": f"Bearer {secret}"}
    admin = await _admin()
    headers["admin"] = {"Authorization": f"Bearer {await create_token(admin, 'test', roles=['admin'])}"}
    return client, org, headers


async def _admin() -> int:
    from core.testing import make_user

    return await make_user("boss", "admin")


def _refused(response: Any, field: str, status: int = 422) -> None:
    assert response.status_code == status, response.text
    assert field in response.json()["error"]["fields"], response.json()


async def test_numbers_past_their_column_and_not_numbers(crm_client: Any) -> None:
    client, _, h = await _api(crm_client)
    rep = h["rep1"]
    _refused(await client.get(f"/api/sales/opportunities?stage={HUGE}", headers=rep), "stage")
    _refused(await client.get(f"/api/sales/opportunities/{HUGE}", headers=rep), "id")
    _refused(await client.post(f"/api/sales/opportunities/{HUGE}/won", headers=rep), "id")
    _refused(await client.post("/api/sales/opportunities", json={"name": "d", "person": HUGE}, headers=rep), "person")
    for revenue in ("NaN", "Infinity", "-Infinity", "1e400", "lots", [1], True):
        _refused(await client.post("/api/sales/opportunities", json={"name": "d", "expected_revenue": revenue},
                                   headers=rep), "expected_revenue")
        _refused(await client.post("/api/sales/leads", json={"name": "l", "expected_revenue": revenue},
                                   headers=rep), "expected_revenue")
    assert await Opportunity.count() == 0
    ok = await client.post("/api/sales/opportunities", json={"name": "d", "expected_revenue": "12.5"}, headers=rep)
    assert ok.status_code == 201 and ok.json()["expected_revenue"] in ("12.5", "12.50")
    assert "T" in ok.json()["stage_entered_at"]  # RFC 3339
    assert (await client.get("/api/sales/opportunities", headers=rep)).status_code == 200


async def test_activity_reminders_and_links_must_be_whole_numbers(crm_client: Any) -> None:
    client, _, h = await _api(crm_client)
    base = {"subject": "Call", "due_at": "2026-12-01T09:00:00Z"}
    for name, value in (("remind_minutes", "abc"), ("remind_minutes", 1.5), ("remind_minutes", HUGE),
                        ("opportunity", "abc"), ("opportunity", HUGE), ("opportunity", {"id": 1}),
                        ("lead", [1])):
        _refused(await client.post("/api/sales/activities", json={**base, name: value}, headers=h["rep1"]), name)
    _refused(await client.post("/api/sales/activities", json={**base, "due_at": "soon"}, headers=h["rep1"]), "due_at")


async def test_a_stage_in_use_is_not_deleted(crm_client: Any) -> None:
    client, _, h = await _api(crm_client)
    stage = (await client.post("/api/sales/stages", json={"key": "extra", "name": "Extra"}, headers=h["admin"])).json()
    deal = (await client.post("/api/sales/opportunities", json={"name": "d"}, headers=h["admin"])).json()
    moved = await client.post(f"/api/sales/opportunities/{deal['id']}/move",
                              json={"stage": stage["id"], "version": deal["version"]}, headers=h["admin"])
    assert moved.status_code == 200, moved.text
    refused = await client.delete(f"/api/sales/stages/{stage['id']}", headers=h["admin"])
    _refused(refused, "id", status=409)
    assert "crm_sales_opportunity" in refused.json()["error"]["message"]
    assert await PipelineStage.exists().where(PipelineStage.id == stage["id"])
    unused = (await client.post("/api/sales/stages", json={"key": "spare", "name": "Spare"}, headers=h["admin"])).json()
    assert (await client.delete(f"/api/sales/stages/{unused['id']}", headers=h["admin"])).status_code == 204


async def test_a_product_on_quote_lines_is_not_deleted(crm_client: Any) -> None:
    client, _, h = await _api(crm_client)
    admin = h["admin"]
    product = (await client.post("/api/sales/products", headers=admin,
                                 json={"code": "LIC", "name": "Licence", "list_price": "99.00"})).json()
    deal = (await client.post("/api/sales/opportunities", json={"name": "d"}, headers=admin)).json()
    quote = await client.post("/api/sales/quotes", headers=admin, json={
        "opportunity": deal["id"], "lines": [{"product": product["id"], "quantity": "2"} for _ in range(4)]})
    assert quote.status_code == 201, quote.text
    refused = await client.delete(f"/api/sales/products/{product['id']}", headers=admin)
    _refused(refused, "id", status=409)
    assert "4 crm_sales_quote_line" in refused.json()["error"]["message"]
    assert await QuoteLine.count().where(QuoteLine.product == product["id"]) == 4  # nothing unlinked
    assert await Product.exists().where(Product.id == product["id"])
    # deactivating is the way out
    off = await client.patch(f"/api/sales/products/{product['id']}", headers=admin,
                             json={"is_active": False, "version": product["version"]})
    assert off.status_code == 200 and off.json()["is_active"] is False


async def test_a_duplicate_in_a_unique_column_is_a_conflict(crm_client: Any) -> None:
    client, _, h = await _api(crm_client)
    body = {"code": "DUP", "name": "Twice"}
    assert (await client.post("/api/sales/products", json=body, headers=h["admin"])).status_code == 201
    # the database's unique index answers: a 409 naming the column, not a 500 (nor an exception re-raised)
    _refused(await client.post("/api/sales/products", json=body, headers=h["admin"]), "code", status=409)


async def test_quote_lines_with_bad_values(crm_client: Any) -> None:
    client, _, h = await _api(crm_client)
    admin = h["admin"]
    deal = (await client.post("/api/sales/opportunities", json={"name": "d"}, headers=admin)).json()
    for line, field in (({"product": HUGE}, "product"), ({"product": "abc"}, "product"),
                        ({"description": "x", "quantity": "NaN"}, "quantity"),
                        ({"description": "x", "unit_price": "Infinity"}, "unit_price"),
                        ({"description": "x", "quantity": {"n": 1}}, "quantity"),
                        ({"description": "\x00"}, "lines[0].description")):
        _refused(await client.post("/api/sales/quotes", headers=admin,
                                   json={"opportunity": deal["id"], "lines": [line]}), field)


async def test_six_concurrent_creates_with_one_idempotency_key_make_one_deal(crm_client: Any) -> None:
    client, _, h = await _api(crm_client)
    headers = {**h["rep1"], "Idempotency-Key": "deal-6"}
    answers = await asyncio.gather(*[client.post("/api/sales/opportunities", json={"name": "Once"}, headers=headers)
                                     for _ in range(6)])
    assert all(a.status_code in (201, 409) for a in answers), [a.text for a in answers]
    assert await Opportunity.count() == 1
    assert len({a.json()["id"] for a in answers if a.status_code == 201}) == 1
