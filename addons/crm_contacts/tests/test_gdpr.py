"""GDPR: export everything about a person as JSON; erase by anonymisation, audited, linked records kept."""

from __future__ import annotations

from typing import Any

PEOPLE = "/api/contacts/people"


async def test_export_then_erase(api: Any) -> None:
    from crm_contacts.models import Address, Person
    from crm_contacts_probe import hooks as probe
    from crm_contacts_probe.models import Ticket

    from core.security.models import AuditLog
    from core.timeline.models import RecordFollower, RecordNote

    client, token_for = api
    h = await token_for("mgr", "sales_manager")
    pid = (await client.post(PEOPLE, headers=h, json={"name": "Gdpr Subject", "phone": "13800138000",
                                                    "email": "g@example.com", "birth_date": "1980-01-02"})).json()["id"]
    await client.post(f"{PEOPLE}/{pid}/tags", headers=h, json={"add": ["VIP"]})
    note = await client.post(f"/api/timeline/crm_contacts.person/{pid}/notes", headers=h, json={"body": "likes tea"})
    assert note.status_code in (200, 201), note.text  # the kernel timeline's note; its writer now follows
    await Address.insert(Address(person=pid, line1="1 Road", city="深圳"))
    await Ticket.insert(Ticket(title="invoice dispute", person=pid))
    doc = (await client.post(f"{PEOPLE}/{pid}/gdpr_export", headers=h)).json()
    assert doc["person"]["email"] == "g@example.com" and doc["person"]["birth_date"] == "1980-01-02"
    assert doc["tags"] == ["VIP"] and doc["notes"][0]["body"] == "likes tea"
    assert doc["addresses"][0]["line1"] == "1 Road"
    assert any(e["action"] == "create" for e in doc["history"])
    erased = await client.post(f"{PEOPLE}/{pid}/erase", headers=h)
    assert erased.status_code == 200, erased.text
    row = await Person.select().where(Person.id == pid).first()
    assert row["name"] == f"Erased person #{pid}" and row["is_anonymized"]
    assert (row["email"], row["phone"], row["phone_original"], row["birth_date"]) == ("", "", "", None)
    assert "g@example.com" not in row["search_text"]
    mine = (RecordNote.model == "crm_contacts.person") & (RecordNote.record_id == pid)
    assert await RecordNote.count().where(mine) == 0 and await Address.count() == 0
    assert await RecordFollower.count().where(
        (RecordFollower.model == "crm_contacts.person") & (RecordFollower.record_id == pid)) == 0
    assert await Ticket.count().where(Ticket.person == pid) == 1  # linked records stay, pointing at the shell
    assert probe.ERASED[-1] == pid
    actions = [r["action"] for r in await AuditLog.select(AuditLog.action).where(AuditLog.record_id == str(pid))]
    assert "gdpr_export" in actions and "erase" in actions


async def test_erase_needs_delete_right(api: Any) -> None:
    client, token_for = api
    rep = await token_for("rep", "sales_rep")
    pid = (await client.post(PEOPLE, headers=rep, json={"name": "Keep Me"})).json()["id"]
    assert (await client.post(f"{PEOPLE}/{pid}/erase", headers=rep)).status_code == 403
    assert (await client.get(f"{PEOPLE}/{pid}", headers=rep)).json()["name"] == "Keep Me"


async def test_export_by_a_masked_role_masks_merged_records_too(api: Any) -> None:
    """Finance sees phones and e-mails masked: the merged-away record's snapshot and the number as typed
    used to come out in clear in the GDPR file."""
    client, token_for = api
    mgr = await token_for("mgr", "sales_manager")
    keep = (await client.post(PEOPLE, headers=mgr, json={"name": "Keep Me", "phone": "13800138000"})).json()["id"]
    lose = (await client.post(PEOPLE, headers=mgr, json={"name": "Keep Me", "phone": "139 0013 9000",
                                                         "email": "lost@example.com"})).json()["id"]
    merged = await client.post(f"{PEOPLE}/{keep}/merge", headers=mgr, json={"loser_ids": [lose]})
    assert merged.status_code == 200, merged.text
    clear = (await client.post(f"{PEOPLE}/{keep}/gdpr_export", headers=mgr)).text
    assert "13900139000" in clear and "lost@example.com" in clear  # the manager may read them
    fin = await token_for("fin", "finance")
    doc = await client.post(f"{PEOPLE}/{keep}/gdpr_export", headers=fin)
    assert doc.status_code == 200, doc.text
    for secret in ("13900139000", "139 0013 9000", "lost@example.com", "13800138000", "138 0013 8000"):
        assert secret not in doc.text, secret
    snapshot = doc.json()["merged_records"][0]["snapshot"][str(lose)]
    assert snapshot["phone"] == "+86139****9000" and snapshot["email"] == "l***@example.com"
    assert "email_key" not in snapshot
