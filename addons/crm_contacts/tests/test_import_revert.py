"""Import writes are audited per record, and a revert restores only what nobody changed since the import."""

from __future__ import annotations

import json
from typing import Any

from crm_contacts.importing import revert, run_batch


async def _batch(acc: Any, content: bytes, **kw: Any) -> int:
    from crm_contacts.models import ImportBatch

    header = content.split(b"\n", 1)[0].decode().split(",")
    mapping = {c: c for c in header if c != "title"} | ({"title": "job_title"} if "title" in header else {})
    batch = ImportBatch(filename="b.csv", content=content, mapping=mapping, owner=acc.principal.user_id, **kw)
    await batch.save()
    await run_batch(acc, int(batch.id))
    return int(batch.id)


async def _audit(action: str) -> list[dict[str, Any]]:
    from core.security.models import AuditLog

    rows = await AuditLog.select().where((AuditLog.action == action) & (AuditLog.model == "crm_contacts.person")
                                         ).order_by(AuditLog.id)
    return [{**r, "changes": json.loads(r["changes"]) if isinstance(r["changes"], str) else r["changes"]}
            for r in rows]


async def test_revert_keeps_fields_edited_after_the_import(booted: Any) -> None:
    from crm_contacts.models import ImportRow, Person

    acc = await booted("rep", "sales_rep")
    await _batch(acc, b"name,email,title,industry\nAnn Lee,ann@example.com,Engineer,Retail\n")
    ann = await Person.select().where(Person.email_key == "ann@example.com").first()
    batch_id = await _batch(acc, b"name,email,title,industry\nAnn Lee,ann@example.com,CTO,Software\n"
                                 b"Bo Chen,bo@example.com,Sales,\n", mode="upsert", keys=["email"])
    # after the import, someone edits Ann's title by hand: the revert must not bring "Engineer" back over it
    await Person.update({Person.job_title: "VP Engineering", Person.version: Person.version + 1}).where(
        Person.id == ann["id"])
    assert await revert(acc, batch_id) == {"archived": 1, "restored": 1, "conflicts": 1}
    ann = await Person.select().where(Person.id == ann["id"]).first()
    assert (ann["job_title"], ann["industry"]) == ("VP Engineering", "Retail")  # kept; restored
    assert "software" not in ann["search_text"]  # derived text follows the restored fields
    row = await ImportRow.select().where((ImportRow.batch == batch_id) & (ImportRow.action == "updated")).first()
    assert row["message"] == "not reverted, changed since the import: job_title"
    assert [p["name"] for p in await Person.select(Person.name).where(Person.is_archived == False)  # noqa: E712
            ] == ["Ann Lee"]


async def test_import_writes_are_audited_per_record(booted: Any) -> None:
    from crm_contacts.models import Person

    acc = await booted("rep", "sales_rep")
    first = await _batch(acc, b"name,email,title\nAnn Lee,ann@example.com,Engineer\n")
    second = await _batch(acc, b"name,email,title\nAnn Lee,ann@example.com,CTO\nBo Chen,bo@example.com,Sales\n",
                          mode="upsert", keys=["email"])
    ids = {p["email"]: p["id"] for p in await Person.select(Person.id, Person.email)}
    created = await _audit("create")
    assert [(r["record_id"], r["detail"]) for r in created] == [
        (str(ids["ann@example.com"]), f"import {first}"), (str(ids["bo@example.com"]), f"import {second}")]
    assert created[1]["changes"]["job_title"] == [None, "Sales"] and created[1]["user_login"] == "rep"
    updated = await _audit("update")
    assert len(updated) == 1 and updated[0]["record_id"] == str(ids["ann@example.com"])
    assert updated[0]["changes"]["job_title"] == ["Engineer", "CTO"] and updated[0]["detail"] == f"import {second}"
    assert "email" not in updated[0]["changes"]  # only what changed
    await revert(acc, second)
    reverted = await _audit("update")
    assert reverted[-1]["changes"]["job_title"] == ["CTO", "Engineer"]
    assert reverted[-1]["detail"] == f"revert of import {second}"
    assert [r["record_id"] for r in await _audit("archive")] == [str(ids["bo@example.com"])]
