"""core.customfields on the test addon's notes (an extensible settings resource): the admin's definitions and
their checks, archive / restore / purge, expression indexes, the settings forms, report datasets, another
worker's changes, and admins only — on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from core.discovery import Discovered
from core.testing import csrf_of, login_client, make_user

FIELDS = "/api/admin/custom-fields"
NOTES = "/api/testbase/notes"
MODEL = "crm_testbase.note"


async def _client(crm_client: Any, found: Discovered, login: str = "root", *roles: str) -> Any:
    client = await crm_client("crm_testbase", "crm_testext", found=found)
    await make_user(login, *(roles or ("admin",)))
    await login_client(client, login)
    client.headers["X-CSRF-Token"] = csrf_of((await client.get("/")).text)
    return client


async def _add(client: Any, **kw: Any) -> dict[str, Any]:
    r = await client.post(FIELDS, json={"model": MODEL, "label_en": kw.get("key", "x"), **kw})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _stored(note_id: int) -> dict[str, Any]:
    import json

    from crm_testbase.models import Note

    row = await Note.select(Note.custom).where(Note.id == note_id).first()
    assert row is not None
    value = row["custom"]
    return dict(json.loads(value) if isinstance(value, str) else value)


async def test_definitions_are_checked_and_admins_only(crm_client: Any, found: Discovered) -> None:
    client = await _client(crm_client, found)
    for body, field in (({"key": "Bad Key", "kind": "text"}, "key"), ({"key": "a", "kind": "blob"}, "kind"),
                        ({"key": "a", "kind": "text", "model": "crm_testbase.nothing"}, "model"),
                        ({"key": "a", "kind": "choice"}, "options"),
                        ({"key": "a", "kind": "number", "default": "many"}, "default"),
                        ({"key": "a", "kind": "text", "pattern": "(unclosed"}, "pattern"),
                        ({"key": "a", "kind": "text", "rules": {"tb_user": "secret"}}, "rules"),
                        ({"key": "a", "kind": "text", "rules": {"nobody": "hidden"}}, "rules"),
                        ({"key": "a", "kind": "long_text", "is_filterable": True}, "is_filterable"),
                        ({"key": "a", "kind": "link", "target": "crm_testbase.nothing"}, "target"),
                        ({"key": "a", "kind": "text", "label_en": ""}, "label_en")):
        r = await client.post(FIELDS, json={"model": MODEL, "label_en": "A", **body})
        assert r.status_code == 422, (body, r.text)
        assert field in r.json()["error"]["fields"], (body, r.json())
    made = await _add(client, key="colour", kind="choice", options=[{"key": "red", "en": "Red", "zh": "红"}])
    assert (await client.post(FIELDS, json={"model": MODEL, "key": "colour", "kind": "text",
                                            "label_en": "again"})).status_code == 409
    fixed = await client.patch(f"{FIELDS}/{made['id']}", json={"version": made["version"], "kind": "text"})
    assert fixed.status_code == 422 and "kind" in fixed.json()["error"]["fields"]
    stale = await client.patch(f"{FIELDS}/{made['id']}", json={"version": 99, "label_zh": "颜色"})
    assert stale.status_code == 409
    ok = await client.patch(f"{FIELDS}/{made['id']}", json={"version": made["version"], "label_zh": "颜色"})
    assert ok.status_code == 200 and ok.json()["label_zh"] == "颜色" and ok.json()["version"] == 2
    page = await client.get(f"/admin/fields/{made['id']}")
    assert page.status_code == 200 and "red | Red | 红" in page.text
    edited = await client.post(f"/admin/fields/{made['id']}", data={
        "csrf_token": csrf_of(page.text), "version": "2", "label_en": "Colour", "label_zh": "颜色",
        "options": "red | Red | 红\nblue | Blue | 蓝", "default": "Blue", "rule_tb_user": "readonly"})
    assert edited.status_code == 303, edited.text[:2000]
    again = (await client.get(f"{FIELDS}/{made['id']}")).json()
    assert again["default"] == "blue" and again["rules"] == {"tb_user": "readonly"} and len(again["options"]) == 2
    listed = (await client.get(FIELDS)).json()
    assert [f["key"] for f in listed["items"]] == ["colour"] and MODEL in [m["model"] for m in listed["models"]]
    from core.security.models import AuditLog

    audited = await AuditLog.select(AuditLog.action).where(AuditLog.model == "core.custom_field")
    assert [r["action"] for r in audited] == ["create", "update", "update"]
    user = await _client(crm_client, found, "plain", "tb_manager")
    assert (await user.get(FIELDS)).status_code == 403
    assert (await user.post(FIELDS, json={"model": MODEL, "key": "b", "kind": "text"})).status_code == 403
    assert (await user.get("/admin/fields")).status_code == 403


async def test_archive_keeps_values_restore_brings_them_back_purge_deletes_them(
        crm_client: Any, found: Discovered) -> None:
    client = await _client(crm_client, found)
    field = await _add(client, key="score", kind="number", is_filterable=True)
    note = (await client.post(NOTES, json={"title": "a", "custom": {"score": 7}})).json()
    assert note["custom"] == {"score": 7}
    archived = (await client.post(f"{FIELDS}/{field['id']}/archive")).json()
    assert archived["is_archived"] is True
    assert (await client.get(f"{NOTES}/{note['id']}")).json()["custom"] == {}
    refused = await client.patch(f"{NOTES}/{note['id']}", json={"version": 1, "custom": {"score": 8}})
    assert refused.status_code == 422 and "custom.score" in refused.json()["error"]["fields"]
    edited = await client.patch(f"{NOTES}/{note['id']}", json={"version": 1, "title": "b"})
    assert edited.status_code == 200
    assert await _stored(note["id"]) == {"score": 7}, "archived values are kept, also through other edits"
    assert (await client.post(f"{FIELDS}/{field['id']}/restore")).json()["is_archived"] is False
    not_yet = await client.post(f"{FIELDS}/{field['id']}/purge", json={"confirm": "score"})
    assert not_yet.status_code == 409, "only an archived field's data can be deleted"
    assert (await client.get(f"{NOTES}/{note['id']}")).json()["custom"] == {"score": 7}
    await client.post(f"{FIELDS}/{field['id']}/archive")
    wrong = await client.post(f"{FIELDS}/{field['id']}/purge", json={"confirm": "nope"})
    assert wrong.status_code == 422 and "confirm" in wrong.json()["error"]["fields"]
    purged = await client.post(f"{FIELDS}/{field['id']}/purge", json={"confirm": "score"})
    assert purged.status_code == 200 and purged.json()["records"] == 1
    assert await _stored(note["id"]) == {}
    assert (await client.get(f"{FIELDS}/{field['id']}")).status_code == 404
    again = await _add(client, key="score", kind="text")  # the key is free again
    assert again["kind"] == "text"
    from core.security.models import AuditLog

    actions = [r["action"] for r in await AuditLog.select(AuditLog.action).where(
        AuditLog.model == "core.custom_field").order_by(AuditLog.id)]
    assert actions == ["create", "archive", "restore", "archive", "purge", "create"]


async def _indexes(table: str) -> set[str]:
    from core import db
    from core.models import CustomField

    if db.is_postgres():
        rows = await CustomField.raw("SELECT indexname AS name FROM pg_indexes WHERE tablename = {}", table)
    else:
        rows = await CustomField.raw("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = {}", table)
    return {r["name"] for r in rows if r["name"].startswith("cf_")}


async def test_a_filterable_field_has_an_expression_index_the_filter_uses(crm_client: Any, found: Discovered) -> None:
    from core import db

    client = await _client(crm_client, found)
    field = await _add(client, key="code", kind="text", is_filterable=True)
    await _add(client, key="tags", kind="choices", is_filterable=True, options=[{"key": "a"}, {"key": "b"}])
    indexes = await _indexes("crm_testbase_note")
    assert any(n.endswith("_code") for n in indexes)
    assert any(n.endswith("_tags") for n in indexes) == db.is_postgres()  # GIN on PostgreSQL only
    for i in range(30):
        await client.post(NOTES, json={"title": f"n{i}", "custom": {"code": f"C{i}", "tags": ["a"] if i % 2 else []}})
    found_rows = (await client.get(f"{NOTES}?cf_code=C7")).json()["items"]
    assert [r["title"] for r in found_rows] == ["n7"]
    assert len((await client.get(f"{NOTES}?cf_tags=a&limit=100")).json()["items"]) == 15
    if db.is_postgres():
        from crm_testbase.models import Note

        from core.customfields import registry, storage

        fd = registry.definition(MODEL, "code")
        assert fd is not None
        import asyncpg

        conn = await asyncpg.connect(db.current().config["dsn"])  # one connection: the SET holds for the EXPLAIN
        try:
            await conn.execute("SET enable_seqscan = off")
            plan = await conn.fetch(f'EXPLAIN SELECT id FROM "crm_testbase_note" '
                                    f"WHERE {storage.expression(Note, fd)} = $1", "C7")
        finally:
            await conn.close()
        assert storage.index_name(Note, fd) in " ".join(r[0] for r in plan)
    off = await client.patch(f"{FIELDS}/{field['id']}", json={"version": 1, "is_filterable": False})
    assert off.status_code == 200
    assert not any(n.endswith("_code") for n in await _indexes("crm_testbase_note"))
    assert (await client.get(f"{NOTES}?cf_code=C7")).json()["items"] != []  # no filter any more: every note


async def test_settings_forms_and_list_show_custom_fields(crm_client: Any, found: Discovered) -> None:
    client = await _client(crm_client, found)
    await _add(client, key="colour", kind="choice", is_listed=True, is_required=True,
               options=[{"key": "red", "en": "Red", "zh": "红色"}, {"key": "blue", "en": "Blue", "zh": "蓝色"}])
    await _add(client, key="due", kind="date", min_value="2026-01-01")
    page = await client.get("/settings/testbase/notes/new")
    assert 'name="custom.colour"' in page.text and 'name="custom.due"' in page.text
    token = csrf_of(page.text)
    bad = await client.post("/settings/testbase/notes/new", data={"csrf_token": token, "title": "t",
                                                                  "custom.due": "2025-05-05"})
    assert bad.status_code == 422 and 'data-field="custom.due"' in bad.text
    ok = await client.post("/settings/testbase/notes/new", data={"csrf_token": token, "title": "t",
                                                                 "custom.colour": "blue", "custom.due": "2026-05-05"})
    assert ok.status_code == 303, ok.text[:2000]
    listing = await client.get("/settings/testbase/notes")
    assert "<th>colour</th>" in listing.text and ">Blue<" in listing.text


async def test_datasets_group_by_custom_fields_under_field_rules(crm_client: Any, found: Discovered) -> None:
    from core import datasets
    from core.security.access import Access
    from core.security.principal import load

    client = await _client(crm_client, found)
    await _add(client, key="colour", kind="choice", options=[{"key": "red"}, {"key": "blue"}],
               rules={"tb_user": "hidden"})
    for colour in ("red", "red", "blue"):
        await client.post(NOTES, json={"title": colour, "custom": {"colour": colour}})
    admin = Access(await load(1))
    ds = await datasets.dataset("notes", admin)
    assert "cf_colour" in [d.name for d in ds.dimensions]
    rows = await datasets.aggregate(admin, "notes", ["cf_colour"], ["count"])
    assert {r["cf_colour"]: r["count"] for r in rows if r["cf_colour"]} == {"red": 2, "blue": 1}
    assert rows[0] == {"cf_colour": "red", "count": 2}
    user_id = await make_user("tbu", "tb_user")
    import pytest

    from core.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        await datasets.aggregate(Access(await load(user_id)), "notes", ["cf_colour"], ["count"])


async def test_another_workers_definition_is_seen_within_the_check_interval(
        crm_client: Any, found: Discovered, monkeypatch: Any) -> None:
    from core.customfields import registry
    from core.models import CustomField

    client = await _client(crm_client, found)
    note = (await client.post(NOTES, json={"title": "t"})).json()
    monkeypatch.setattr(registry, "CHECK_SECONDS", 0.0)
    # as another process would: straight into the table, this process's cache knows nothing of it
    await CustomField.insert(CustomField(model=MODEL, key="extra", kind="text", label_en="Extra", rules="{}",
                                         options="[]", default="null"))
    r = await client.patch(f"{NOTES}/{note['id']}", json={"version": 1, "custom": {"extra": "seen"}})
    assert r.status_code == 200 and r.json()["custom"] == {"extra": "seen"}


async def test_form_layouts_are_checked(crm_client: Any, found: Discovered) -> None:
    client = await _client(crm_client, found)
    await _add(client, key="must", kind="text", is_required=True)
    url = f"/api/admin/form-layouts/{MODEL}"
    assert (await client.get(url)).json()["fields"] == ["title", "phone", "internal", "custom.must"]
    for body, field in (({"sections": [{"key": "main", "fields": ["nope"]}]}, "sections"),
                        ({"sections": [{"key": "a", "fields": ["title"]}, {"key": "b", "fields": ["title"]}]},
                         "sections"),
                        ({"required": ["title"], "later": ["title"]}, "later"),
                        ({"later": ["custom.must"]}, "later")):
        r = await client.put(url, json=body)
        assert r.status_code == 422 and field in r.json()["error"]["fields"], (body, r.text)
    ok = await client.put(url, json={"sections": [{"key": "main", "en": "Main", "zh": "主要",
                                                   "fields": ["custom.must", "title"]}], "later": ["phone"]})
    assert ok.status_code == 200 and ok.json()["sections"][0]["fields"] == ["custom.must", "title"]
    assert (await client.get("/api/admin/form-layouts/crm_testbase.nothing")).status_code == 404
    page = await client.get(f"/admin/fields/layout/{MODEL}")
    assert page.status_code == 200 and 'name="section__custom.must"' in page.text
