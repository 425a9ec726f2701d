"""No input makes a 500 (issue 11 §2): every bad value gets a 4xx with ``{"error": {code, message, fields}}``
naming the field, on SQLite and PostgreSQL. Found by a probe; one test per class, fixed in the kernel."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import decimal
import functools
import json
from typing import Any

import pytest

from core.discovery import Discovered
from core.testing import login_client, make_user

NOTES = "/api/testbase/notes"
HUGE = 2**63


async def _client(crm_client: Any, found: Discovered, role: str = "admin") -> Any:
    client = await crm_client("crm_testbase", found=found)
    await make_user("api", role)
    await login_client(client, "api")
    page = await client.get("/")
    client.headers["X-CSRF-Token"] = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    return client


def _refused(response: Any, field: str, status: int = 422) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    error = response.json()["error"]
    assert {"code", "message", "fields"} <= set(error) and field in error["fields"], error
    return dict(error)


async def test_ids_past_the_column_in_paths_versions_and_etags(crm_client, found: Discovered) -> None:
    client = await _client(crm_client, found)
    note = (await client.post(NOTES, json={"title": "n"})).json()
    for big in (HUGE, 2**64, 2**31):  # SQLite stops at 64 bits, PostgreSQL's integer at 32
        _refused(await client.get(f"{NOTES}/{big}"), "id")
        _refused(await client.patch(f"{NOTES}/{big}", json={"title": "x", "version": 1}), "id")
        _refused(await client.delete(f"{NOTES}/{big}"), "id")
        _refused(await client.post(f"{NOTES}/{big}/reveal/phone"), "id")
        _refused(await client.patch(f"{NOTES}/{note['id']}", json={"title": "x", "version": big}), "version")
    _refused(await client.patch(f"{NOTES}/{note['id']}", json={"title": "x"},
                                headers={"If-Match": f'W/"{HUGE}"'}), "If-Match")
    _refused(await client.patch(f"{NOTES}/{note['id']}", json={"title": "x"}, headers={"If-Match": "*"}),
             "If-Match")
    for version in ("1", {"v": 1}, [1], True, 1.5):
        _refused(await client.patch(f"{NOTES}/{note['id']}", json={"title": "x", "version": version}), "version")
    assert (await client.get(f"{NOTES}/{note['id']}")).json()["title"] == "n"


async def test_values_of_the_wrong_type_size_or_text(crm_client, found: Discovered) -> None:
    client = await _client(crm_client, found)
    for title in (5, {"a": 1}, ["x"], True, "x" * 201, "nul\x00byte"):
        _refused(await client.post(NOTES, json={"title": title}), "title")
    _refused(await client.post(NOTES, json={"title": None}), "title")
    # a lone surrogate is valid JSON text but no database stores it
    raw = b'{"title": "\\ud800"}'
    _refused(await client.post(NOTES, content=raw, headers={"content-type": "application/json"}), "title")
    _refused(await client.post(NOTES, content=b'{"title": ', headers={"content-type": "application/json"}), "body")
    _refused(await client.post(NOTES, json=["title"]), "body")
    titles = [n["title"] for n in (await client.get(NOTES)).json()["items"]]
    assert all(isinstance(t, str) and "\x00" not in t for t in titles), titles


async def test_query_strings_and_cursors(crm_client, found: Discovered) -> None:
    client = await _client(crm_client, found)
    for i in range(3):
        await client.post(NOTES, json={"title": f"n{i}"})
    _refused(await client.get(f"{NOTES}?limit=500"), "limit")  # the documented maximum, not a silent cap
    _refused(await client.get(f"{NOTES}?limit=0"), "limit")
    _refused(await client.get(f"{NOTES}?limit=²"), "limit")
    _refused(await client.get(f"{NOTES}?title={'x' * 300}"), "title")
    for cursor in ([{"a": 1}, 1], [1, {"a": 2}], ["n1", HUGE], {"a": 1}, "NaN"):
        after = base64.urlsafe_b64encode(json.dumps(cursor).encode()).decode()
        _refused(await client.get(f"{NOTES}?sort=title&after={after}"), "after")
        _refused(await client.get(f"{NOTES}?after={after}"), "after")
    page = (await client.get(f"{NOTES}?limit=2&sort=title")).json()
    assert len(page["items"]) == 2 and (await client.get(f"{NOTES}?sort=title&after={page['next']}")).status_code == 200


async def test_routing_and_authentication_answers_are_json(crm_client, found: Discovered) -> None:
    client = await _client(crm_client, found)
    missing = await client.get("/api/no-such-thing")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong = await client.put(NOTES, json={})
    assert wrong.status_code == 405 and set(wrong.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    assert wrong.json()["error"]["code"] == "method_not_allowed"
    # an API call with neither token nor session: a JSON 401, not the pages' CSRF refusal
    import httpx

    anonymous = httpx.AsyncClient(transport=client._transport, base_url="http://testserver")
    for method in ("POST", "PATCH", "DELETE"):
        r = await anonymous.request(method, NOTES if method == "POST" else f"{NOTES}/1", json={"title": "x"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "not_authenticated", r.text
    await anonymous.aclose()


async def test_idempotency_key_taken_once_by_concurrent_requests(crm_client, found: Discovered) -> None:
    from crm_testbase.models import Note

    client = await _client(crm_client, found)
    before = await Note.count()
    headers = {"Idempotency-Key": "six-at-once"}
    answers = await asyncio.gather(*[client.post(NOTES, json={"title": "once"}, headers=headers) for _ in range(6)])
    assert all(a.status_code in (201, 409) for a in answers), [a.text for a in answers]
    assert await Note.count() == before + 1, [(a.status_code, a.headers.get("idempotent-replayed")) for a in answers]
    created = [a.json()["id"] for a in answers if a.status_code == 201]
    assert len(set(created)) == 1
    assert sum(a.status_code == 201 and a.headers.get("idempotent-replayed") != "true" for a in answers) == 1
    _refused(await client.post(NOTES, json={"title": "x"}, headers={"Idempotency-Key": "has space"}),
             "Idempotency-Key")
    _refused(await client.post(NOTES, json={"title": "x"}, headers={"Idempotency-Key": "k" * 201}),
             "Idempotency-Key")
    other = await client.post(NOTES, json={"title": "other"}, headers=headers)
    _refused(other, "Idempotency-Key", status=409)


async def test_a_failed_request_releases_its_idempotency_key(crm_client, found: Discovered) -> None:
    client = await _client(crm_client, found)
    headers = {"Idempotency-Key": "retry-me"}
    _refused(await client.post(NOTES, json={"title": 5}, headers=headers), "title")
    # the same body again is refused again (not a replay of a half-made answer)…
    _refused(await client.post(NOTES, json={"title": 5}, headers=headers), "title")
    # …and a corrected request may use the key
    assert (await client.post(NOTES, json={"title": "ok"}, headers=headers)).status_code == 201


@pytest.mark.parametrize(("column", "value", "expected"), [
    ("int", 5, 5), ("int", 5.0, 5), ("bigint", 2**62, 2**62), ("bool", False, False),
    ("numeric", "12.50", decimal.Decimal("12.50")), ("numeric", 0.1, decimal.Decimal("0.1")),
    ("tstz", "2026-12-01T09:30:00Z", dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)),
    ("date", "2026-12-01", dt.date(2026, 12, 1)), ("varchar", "ok", "ok"), ("json", {"a": [1]}, {"a": [1]}),
])
def test_values_check_accepts(column: str, value: Any, expected: Any) -> None:
    from core import values

    assert values.check(_COLUMNS()[column], value, "f") == expected


@pytest.mark.parametrize(("column", "value"), [
    ("int", 2**31), ("int", -(2**31) - 1), ("bigint", HUGE), ("int", "5"), ("int", True), ("int", 1.5),
    ("int", None), ("bool", "true"), ("numeric", "NaN"), ("numeric", "Infinity"), ("numeric", "-inf"),
    ("numeric", float("nan")), ("numeric", "1e400"), ("numeric", "10000000000"), ("numeric", "abc"),
    ("numeric", {"a": 1}), ("numeric", True), ("tstz", "tomorrow"), ("tstz", 5), ("date", "2026-13-01"),
    ("varchar", 5), ("varchar", "x" * 11), ("varchar", "a\x00b"), ("varchar", "\ud800"), ("json", {"k": "\x00"}),
])
def test_values_check_refuses_naming_the_field(column: str, value: Any) -> None:
    from core import values
    from core.errors import ValidationError

    with pytest.raises(ValidationError) as caught:
        values.check(_COLUMNS()[column], value, "f")
    assert [f.split(".")[0] for f in caught.value.fields] == ["f"]


@functools.cache
def _COLUMNS() -> dict[str, Any]:  # noqa: N802 - a constant, built lazily
    from piccolo.columns import JSON, BigInt, Boolean, Date, Integer, Numeric, Timestamptz, Varchar
    from piccolo.table import Table

    class Probe(Table, tablename="values_probe"):
        int = Integer()
        bigint = BigInt()
        bool = Boolean()
        numeric = Numeric(digits=(12, 2))
        tstz = Timestamptz()
        date = Date()
        varchar = Varchar(length=10)
        json = JSON()

    return {c._meta.name: c for c in Probe._meta.columns}
