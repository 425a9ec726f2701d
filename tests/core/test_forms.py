"""Settings pages generated from API resources: list, create, edit with version check, delete, field rules."""

from __future__ import annotations

import re

from core.discovery import Discovered
from core.testing import csrf_of, login_client, make_user


async def _client(crm_client, found: Discovered, role: str):
    client = await crm_client("crm_testbase", found=found)
    await make_user("cfg", role)
    await login_client(client, "cfg")
    return client


async def test_create_edit_conflict_and_delete_through_the_generated_pages(crm_client, found: Discovered) -> None:
    from core.security.models import AuditLog

    client = await _client(crm_client, found, "admin")
    index = await client.get("/settings")
    assert index.status_code == 200 and 'href="/settings/testbase/notes"' in index.text
    assert 'href="/settings"' in (await client.get("/")).text  # in the main menu
    form = await client.get("/settings/testbase/notes/new")
    assert form.status_code == 200 and 'name="title"' in form.text
    token = csrf_of(form.text)
    missing = await client.post("/settings/testbase/notes/new", data={"csrf_token": token, "phone": "1"})
    assert missing.status_code == 422 and 'data-field="title"' in missing.text
    created = await client.post("/settings/testbase/notes/new", data={"csrf_token": token, "title": "Gold tier"})
    assert created.status_code == 303 and created.headers["location"] == "/settings/testbase/notes"
    listing = await client.get("/settings/testbase/notes")
    note_id = int(re.search(r'href="/settings/testbase/notes/(\d+)">\d+</a>', listing.text).group(1))
    assert "Gold tier" in listing.text
    edit = await client.get(f"/settings/testbase/notes/{note_id}")
    version = re.search(r'name="version" value="(\d+)"', edit.text).group(1)
    saved = await client.post(f"/settings/testbase/notes/{note_id}",
                              data={"csrf_token": token, "title": "Platinum", "version": version})
    assert saved.status_code == 303
    stale = await client.post(f"/settings/testbase/notes/{note_id}",
                              data={"csrf_token": token, "title": "Lost edit", "version": version})
    assert stale.status_code == 409 and "changed by someone else" in stale.text
    assert "Platinum" in (await client.get("/settings/testbase/notes")).text
    no_csrf = await client.post(f"/settings/testbase/notes/{note_id}", data={"title": "x", "version": "2"})
    assert no_csrf.status_code == 403
    gone = await client.post(f"/settings/testbase/notes/{note_id}",
                             data={"csrf_token": token, "delete": "1", "version": "2"})
    assert gone.status_code == 303
    assert (await client.get(f"/settings/testbase/notes/{note_id}")).status_code == 404
    actions = [r["action"] for r in await AuditLog.select(AuditLog.action).where(
        (AuditLog.model == "crm_testbase.note") & (AuditLog.record_id == str(note_id)))]
    assert {"create", "update", "delete"} <= set(actions)


async def test_field_rules_shape_the_form_and_rights_guard_the_pages(crm_client, found: Discovered) -> None:
    client = await _client(crm_client, found, "tb_user")
    form = await client.get("/settings/testbase/notes/new")
    assert form.status_code == 200
    assert 'name="title"' in form.text and 'name="phone"' not in form.text and 'name="internal"' not in form.text
    token = csrf_of(form.text)
    made = await client.post("/settings/testbase/notes/new",
                             data={"csrf_token": token, "title": "mine", "internal": "sneaky"})
    assert made.status_code == 303  # fields not on the form are not read from the post
    assert "sneaky" not in (await client.get("/settings/testbase/notes")).text
    assert 'name="delete"' not in (await client.get("/settings/testbase/notes/1")).text  # no delete right
    assert (await client.get("/settings/nowhere/else")).status_code == 404
    client.cookies.clear()
    await make_user("outsider", "readonly")
    await login_client(client, "outsider")
    assert (await client.get("/settings/testbase/notes/new")).status_code == 403
