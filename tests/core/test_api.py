"""The generic REST API on the test addon's notes: pages, filters, writes, concurrency, idempotency, OpenAPI."""

from __future__ import annotations

from core.discovery import Discovered
from core.testing import login_client, make_user


async def _client(crm_client, found: Discovered, role: str = "tb_manager"):
    client = await crm_client("crm_testbase", found=found)
    await make_user("api", role)
    await login_client(client, "api")
    page = await client.get("/")
    client.headers["X-CSRF-Token"] = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    return client


async def test_keyset_pages_sorting_and_filters(crm_client, found: Discovered) -> None:
    client = await _client(crm_client, found)
    for i in range(7):
        assert (await client.post("/api/testbase/notes", json={"title": f"n{i % 3}"})).status_code == 201
    seen, after = [], None
    while True:
        url = "/api/testbase/notes?limit=3&sort=-title" + (f"&after={after}" if after else "")
        page = (await client.get(url)).json()
        seen += [(item["title"], item["id"]) for item in page["items"]]
        after = page["next"]
        if not after:
            break
    assert len(seen) == 7 and seen == sorted(seen, key=lambda t: (t[0], t[1]), reverse=True)
    assert [i["title"] for i in (await client.get("/api/testbase/notes?title=n1")).json()["items"]] == ["n1", "n1"]
    bad = await client.get("/api/testbase/notes?sort=phone")
    assert bad.status_code == 422 and "sort" in bad.json()["error"]["fields"]
    bad = await client.get("/api/testbase/notes?after=garbage")
    assert bad.status_code == 422 and "after" in bad.json()["error"]["fields"]
    bad = await client.get("/api/testbase/notes?limit=many")
    assert bad.status_code == 422 and bad.json()["error"]["fields"] == {"limit": "must be a whole number"}


async def test_writes_validate_and_detect_conflicts(crm_client, found: Discovered) -> None:
    client = await _client(crm_client, found, role="admin")
    missing = await client.post("/api/testbase/notes", json={"phone": "1"})
    assert missing.status_code == 422 and missing.json()["error"]["fields"] == {"title": "is required"}
    mass = await client.post("/api/testbase/notes", json={"title": "x", "owner": 1, "is_archived": True})
    assert mass.status_code == 422
    assert set(mass.json()["error"]["fields"]) == {"owner", "is_archived"}
    created = (await client.post("/api/testbase/notes", json={"title": "draft"})).json()
    url = f"/api/testbase/notes/{created['id']}"
    assert (await client.patch(url, json={"title": "v2"})).status_code == 422  # no version given
    ok = await client.patch(url, json={"title": "v2", "version": created["version"]})
    assert ok.status_code == 200 and ok.json()["title"] == "v2" and ok.json()["version"] == created["version"] + 1
    stale = await client.patch(url, json={"title": "v3", "version": created["version"]})
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "conflict"
    etag = (await client.get(url)).headers["etag"]
    via_header = await client.patch(url, json={"title": "v3"}, headers={"If-Match": etag})
    assert via_header.status_code == 200 and via_header.json()["title"] == "v3"
    assert (await client.delete(url)).status_code == 204
    assert (await client.get(url)).status_code == 404
    assert (await client.get("/api/testbase/notes/abc")).status_code == 404


async def test_idempotency_key_replays_and_refuses_a_different_body(crm_client, found: Discovered) -> None:
    from crm_testbase.models import Note

    client = await _client(crm_client, found)
    before = await Note.count()
    headers = {"Idempotency-Key": "order-77"}
    first = await client.post("/api/testbase/notes", json={"title": "once"}, headers=headers)
    again = await client.post("/api/testbase/notes", json={"title": "once"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert await Note.count() == before + 1
    other = await client.post("/api/testbase/notes", json={"title": "twice"}, headers=headers)
    assert other.status_code == 409


async def test_openapi_document_lists_every_resource(crm_client, found: Discovered) -> None:
    client = await _client(crm_client, found)
    doc = (await client.get("/api/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    assert {"get", "post"} <= set(doc["paths"]["/api/testbase/notes"])
    assert {"get", "patch", "delete"} <= set(doc["paths"]["/api/testbase/notes/{id}"])
    schemas = doc["components"]["schemas"]
    read = schemas["crm_testbase_note"]["properties"]
    assert read["version"]["type"] == "integer" and read["title"] == {"type": "string"}
    assert read["owner"]["type"] == ["integer", "null"]  # nullable foreign key
    create, update = schemas["crm_testbase_note_create"], schemas["crm_testbase_note_update"]
    assert set(create["properties"]) == {"title", "phone", "internal", "custom"} and create["required"] == ["title"]
    assert create["properties"]["custom"]["type"] == "object"  # custom fields (none defined here)
    assert create["properties"]["title"]["maxLength"] == 200 and not create["additionalProperties"]
    assert update["required"] == ["version"] and "id" not in update["properties"]
    limit = next(p for p in doc["paths"]["/api/testbase/notes"]["get"]["parameters"] if p["name"] == "limit")
    assert limit["schema"]["maximum"] == 200
