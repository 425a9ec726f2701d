"""JSON API: standardization on write, 422 naming the field, 409 on stale versions, idempotent replays."""

from __future__ import annotations

from typing import Any

PEOPLE = "/api/contacts/people"


async def test_create_standardizes_every_field(api: Any) -> None:
    client, token_for = api
    h = await token_for("rep", "sales_rep")
    r = await client.post(PEOPLE, headers=h, json={
        "name": "  JOHN  SMITH ", "email": "John.Smith@EXAMPLE.COM", "phone": "１３８ ００１３ ８０００",
        "region": "广东省深圳市", "language": "zh-CN"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["name"] == "John Smith"
    assert body["email"] == "John.Smith@example.com"
    assert body["phone"] == "+8613800138000"
    assert body["phone_original"] == "１３８ ００１３ ８０００"
    assert (body["province"], body["city"]) == ("广东", "深圳")
    assert body["language"] == "zh_CN"
    assert body["owner"] == int(h["X-User-Id"])


async def test_bad_values_answer_422_naming_the_field(api: Any) -> None:
    client, token_for = api
    h = await token_for("rep", "sales_rep")
    for payload, field in (({"name": "A", "phone": "12345"}, "phone"), ({"name": "A", "email": "no-at"}, "email"),
                           ({"name": "A", "region": "Atlantis"}, "region"), ({"name": "   "}, "name"),
                           ({"name": "A", "stage": "nonsense"}, "stage"), ({"name": "x" * 300}, "name"),
                           ({"name": "A", "nickname": "y"}, "nickname"),
                           ({"name": "A", "organization": 999}, "organization")):
        r = await client.post(PEOPLE, headers=h, json=payload)
        assert r.status_code == 422, (payload, r.text)
        assert field in r.json()["error"]["fields"], r.json()
    assert (await client.get(PEOPLE, headers=h)).json()["items"] == []


async def test_update_with_stale_version_is_409_and_update_restandardizes(api: Any) -> None:
    client, token_for = api
    h = await token_for("rep", "sales_rep")
    pid = (await client.post(PEOPLE, headers=h, json={"name": "Li Lei"})).json()["id"]
    ok = await client.patch(f"{PEOPLE}/{pid}", headers=h, json={"version": 1, "phone": "010 6552 9988"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["phone"] == "+861065529988" and ok.json()["version"] == 2
    stale = await client.patch(f"{PEOPLE}/{pid}", headers=h, json={"version": 1, "name": "Han Meimei"})
    assert stale.status_code == 409
    assert (await client.get(f"{PEOPLE}/{pid}", headers=h)).json()["name"] == "Li Lei"
    bad = await client.patch(f"{PEOPLE}/{pid}", headers=h, json={"version": 2, "email": "bad@"})
    assert bad.status_code == 422 and "email" in bad.json()["error"]["fields"]


async def test_idempotency_key_replays_and_refuses_a_different_body(api: Any) -> None:
    client, token_for = api
    h = await token_for("rep", "sales_rep")
    first = await client.post(PEOPLE, headers={**h, "Idempotency-Key": "k1"}, json={"name": "Wang Fang"})
    again = await client.post(PEOPLE, headers={**h, "Idempotency-Key": "k1"}, json={"name": "Wang Fang"})
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again.headers.get("idempotent-replayed") == "true"
    other = await client.post(PEOPLE, headers={**h, "Idempotency-Key": "k1"}, json={"name": "Other"})
    assert other.status_code == 409
    assert len((await client.get(PEOPLE, headers=h)).json()["items"]) == 1


async def test_keyset_pages_and_filters(api: Any) -> None:
    client, token_for = api
    h = await token_for("mgr", "sales_manager")
    for i in range(5):
        await client.post(PEOPLE, headers=h, json={"name": f"Person {i}", "stage": "customer" if i % 2 else "lead"})
    page = (await client.get(PEOPLE + "?limit=2&sort=name", headers=h)).json()
    names = [p["name"] for p in page["items"]]
    while page["next"]:
        page = (await client.get(f"{PEOPLE}?limit=2&sort=name&after={page['next']}", headers=h)).json()
        names += [p["name"] for p in page["items"]]
    assert names == [f"Person {i}" for i in range(5)]
    customers = (await client.get(PEOPLE + "?stage=customer", headers=h)).json()["items"]
    assert sorted(p["name"] for p in customers) == ["Person 1", "Person 3"]


async def test_organizations_and_tags(api: Any) -> None:
    client, token_for = api
    h = await token_for("mgr", "sales_manager")
    r = await client.post("/api/contacts/organizations", headers=h,
                          json={"name": "ACME 有限公司", "tax_id": "91 4403-00 MA5F ABCD 1X", "region": "Shenzhen"})
    assert r.status_code == 201, r.text
    assert r.json()["tax_id"] == "91440300MA5FABCD1X" and r.json()["province"] == "广东"
    t = await client.post("/api/contacts/tags", headers=h, json={"name": "ＶＩＰ"})
    assert t.status_code == 201 and t.json()["name"] == "VIP"
    dup = await client.post("/api/contacts/tags", headers=h, json={"name": "VIP"})
    assert dup.status_code == 422 and "name" in dup.json()["error"]["fields"]
    pid = (await client.post(PEOPLE, headers=h, json={"name": "Zhao Lei"})).json()["id"]
    tagged = await client.post(f"{PEOPLE}/{pid}/tags", headers=h, json={"add": ["VIP", "Beijing"]})
    assert tagged.json()["tags"] == ["Beijing", "VIP"]
    doc = (await client.get("/api/openapi.json", headers=h)).json()
    assert any(p.startswith("/api/contacts/people") for p in doc["paths"])


async def test_idempotent_replay_is_keyed_by_the_token_roles_and_audited(api: Any) -> None:
    """A reveal replayed by a marketing-only token of the same user used to hand it the clear phone."""
    from core.security.models import AuditLog
    from core.security.sessions import create_token

    client, token_for = api
    full = await token_for("svc", "service_agent", "marketing")
    user_id = int(full["X-User-Id"])
    rep = await token_for("owner", "sales_rep")
    pid = (await client.post(PEOPLE, headers=rep, json={"name": "Li Lei", "phone": "13800138000"})).json()["id"]
    reveal = {"field": "phone"}
    first = await client.post(f"{PEOPLE}/{pid}/reveal", headers={**full, "Idempotency-Key": "r1"}, json=reveal)
    assert first.status_code == 200 and first.json()["value"] == "+8613800138000", first.text
    narrow = {"Authorization": f"Bearer {await create_token(user_id, 'mkt', roles=['marketing'])}"}
    replay = await client.post(f"{PEOPLE}/{pid}/reveal", headers={**narrow, "Idempotency-Key": "r1"}, json=reveal)
    assert replay.status_code == 403 and "Idempotent-Replayed" not in replay.headers
    again = await client.post(f"{PEOPLE}/{pid}/reveal", headers={**full, "Idempotency-Key": "r1"}, json=reveal)
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json() == first.json()
    assert await AuditLog.count().where((AuditLog.action == "idempotent_replay") & (AuditLog.user_id == user_id)) == 1
