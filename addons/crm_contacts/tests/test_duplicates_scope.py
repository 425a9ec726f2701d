"""Duplicate warnings say that a customer exists outside the user's records without naming it."""

from __future__ import annotations

from typing import Any

from core.testing import csrf_of, login_client

PEOPLE = "/api/contacts/people"


async def test_duplicate_check_names_only_readable_records(api: Any) -> None:
    client, token_for = api
    other = await token_for("other", "sales_rep")
    theirs = await client.post(PEOPLE, headers=other, json={"name": "Secret Customer", "phone": "13800138000"})
    assert theirs.status_code == 201, theirs.text
    rep = await token_for("rep", "sales_rep")
    mine = await client.post(PEOPLE, headers=rep, json={"name": "Secret Customer", "phone": "13800138000"})
    assert mine.status_code == 201, mine.text
    answer = await client.post(f"{PEOPLE}/{mine.json()['id']}/duplicates", headers=rep)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"candidates": [], "outside_scope": 1}
    seen_by_owner = (await client.post(f"{PEOPLE}/{theirs.json()['id']}/duplicates", headers=other)).json()
    assert seen_by_owner["outside_scope"] == 1 and seen_by_owner["candidates"] == []


async def test_form_warns_without_naming_another_teams_customer(api: Any) -> None:
    client, token_for = api
    other = await token_for("other", "sales_rep")
    theirs = (await client.post(PEOPLE, headers=other, json={"name": "Hidden Buyer", "phone": "13900139000"})).json()
    await token_for("rep", "sales_rep")
    await login_client(client, "rep")
    page = await client.get("/contacts/people/new")
    response = await client.post("/contacts/people/new", data={"csrf_token": csrf_of(page.text), "name": "Hidden Buyer",
                                                               "phone": "13900139000"})
    assert response.status_code == 422, response.status_code
    assert "duplicates-elsewhere" in response.text
    assert f"/contacts/people/{theirs['id']}" not in response.text


async def test_import_report_does_not_name_another_teams_record(booted: Any) -> None:
    from crm_contacts.importing import Importer, auto_mapping
    from crm_contacts.tabular import read_table

    other = await booted("other", "sales_rep")
    header, rows = read_table("姓名,手机\n陈静,13700137000\n".encode(), "a.csv")
    (first,) = await Importer(other, header, rows, auto_mapping(header)).run()
    assert first.action == "created"
    rep = await booted("rep", "sales_rep")
    (again,) = await Importer(rep, header, rows, auto_mapping(header), mode="create").run()
    assert again.action == "skipped" and again.record_id is None and "outside your records" in again.message
    (own,) = await Importer(other, header, rows, auto_mapping(header), mode="create").run()
    assert own.action == "skipped" and own.record_id == first.record_id
