"""core.bulk.copy_rows (COPY on PostgreSQL) writes what insert_rows writes: keys in row order, a missing key
as the column's default, JSON columns from dicts or text."""

from __future__ import annotations

from typing import Any


async def test_copy_rows_writes_what_insert_rows_writes(crm_client: Any) -> None:
    from core import db
    from core.bulk import copy_rows, insert_rows
    from core.security.models import AuditLog

    await crm_client()
    rows: list[dict[str, Any]] = [
        {"action": "a", "model": "m", "record_id": "1", "changes": {"x": [None, 1]}},
        {"action": "b", "model": "m", "changes": '{"y": 2}'},  # no record_id: its default; JSON as text
        {"model": "m", "record_id": "3", "changes": {}, "detail": "only here"},  # no action; a key only it has
    ]
    read = (AuditLog.action, AuditLog.model, AuditLog.record_id, AuditLog.changes, AuditLog.detail)
    async with db.atomic():
        copied = await copy_rows(AuditLog, rows)
        inserted = await insert_rows(AuditLog, rows)
    assert copied == sorted(copied) and len(set(copied + inserted)) == 6
    by_id = {r["id"]: r for r in await AuditLog.select(AuditLog.id, *read).output(load_json=True)}
    for a, b in zip(copied, inserted, strict=True):
        assert {k: v for k, v in by_id[a].items() if k != "id"} == {k: v for k, v in by_id[b].items() if k != "id"}
    assert [by_id[i]["record_id"] for i in copied] == ["1", "", "3"]
    assert [by_id[i]["action"] for i in copied] == ["a", "b", ""]
    assert [by_id[i]["changes"] for i in copied] == [{"x": [None, 1]}, {"y": 2}, {}]
    assert [by_id[i]["detail"] for i in copied] == ["", "", "only here"]

    async with db.atomic():  # without keys (an audit trail): numbered by the column's default all the same
        unkeyed = await copy_rows(AuditLog, [{"action": "k", "model": "m"}] * 2, keys=False)
    assert unkeyed == [] if db.is_postgres() else len(unkeyed) == 2
    numbered = await AuditLog.select(AuditLog.id).where(AuditLog.action == "k")
    assert len({r["id"] for r in numbered}) == 2 and min(r["id"] for r in numbered) > max(copied + inserted)
