"""The audit page shows which fields changed to every auditor, but a value only as its reader may see it:
the auditor (no right on contacts) saw phones and e-mails in clear in change diffs."""

from __future__ import annotations

from typing import Any

from core.testing import login_client, make_user

PEOPLE = "/api/contacts/people"


async def test_audit_diffs_mask_what_the_viewer_may_not_read_in_clear(api: Any) -> None:
    client, token_for = api
    mgr = await token_for("mgr", "sales_manager")
    created = await client.post(PEOPLE, headers=mgr, json={"name": "Audit Subject", "phone": "13800138000",
                                                           "email": "subject@example.com"})
    pid = created.json()["id"]
    changed = await client.patch(f"{PEOPLE}/{pid}", headers=mgr, json={"phone": "13900139000", "version": 1})
    assert changed.status_code == 200, changed.text
    await make_user("audrey", "auditor")
    await login_client(client, "audrey")
    page = await client.get("/admin/audit", params={"model": "crm_contacts.person", "record": str(pid)})
    assert page.status_code == 200
    # fields by their labels and unprotected values stay; protected values only masked
    assert '<span class="field">Phone</span>: <span class="old">hidden</span>' in page.text  # changed, not shown
    assert "Audit Subject" in page.text
    for secret in ("13800138000", "13900139000", "subject@example.com"):
        assert secret not in page.text, secret
    client.cookies.clear()
    await make_user("root", "admin")
    await login_client(client, "root")
    page = await client.get("/admin/audit", params={"model": "crm_contacts.person", "record": str(pid)})
    assert "+8613900139000" in page.text  # the admin reads phones in clear, here too
