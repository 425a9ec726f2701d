"""A large import standardizes in worker processes and writes new people with COPY (PostgreSQL): the same rows,
the same report and the same audit as the single-process path, on a small file forced through both."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from crm_contacts.importing import Importer, report_csv, revert, run_batch

COMPARED = (
    "name",
    "email",
    "email_key",
    "phone",
    "phone_original",
    "country",
    "province",
    "city",
    "job_title",
    "stage",
    "search_text",
    "organization",
    "owner",
    "custom",
)


def _csv() -> bytes:
    lines = ["name,phone,email,company,region,country,title,tags,note"]
    for i in range(36):
        phone = {0: f"138{i:08d}", 1: f"+86 139 {i:04d} 0000", 2: f"150-{i:08d}"}[i % 3]
        email = f"p{i}@Example.com"
        if i == 5:
            phone = "12345"  # dropped with a warning (drop_invalid)
        if i == 9:
            email = "bad@"  # the key: the row fails
        if i == 14:
            email = "p3@example.com"  # repeats row 5's key: skipped
        if i == 20:
            email = "ann@example.com"  # matches a stored person: updated
        region, country = ("California", "US") if i % 7 == 0 else ("广东省深圳市", "")
        extra = "vip,note" if i % 10 == 1 else ","  # tags and notes are written row by row: a few
        lines.append(f"Person {i},{phone},{email},Org {i % 4},{region},{country},T{i},{extra}")
    lines.insert(12, ",,,,,,,,")  # empty row
    return "\n".join(lines).encode()


async def _run(acc: Any, monkeypatch: Any, parallel: bool) -> dict[str, Any]:
    from crm_contacts import import_rows, importing
    from crm_contacts.models import ImportBatch, ImportRow, Person

    from core.security.models import AuditLog

    pools: list[int] = []
    monkeypatch.setattr(importing, "pool", lambda n: pools.append(n) or import_rows.pool(n))
    monkeypatch.setattr(Importer, "CHUNK", 7)
    monkeypatch.setattr(Importer, "PARALLEL_CHUNK", 7)
    monkeypatch.setattr(Importer, "PARALLEL_FROM", 0 if parallel else 10**9)
    batch = ImportBatch(
        filename="p.csv",
        content=_csv(),
        mode="upsert",
        keys=["email"],
        drop_invalid=["phone"],
        mapping={
            "name": "name",
            "phone": "phone",
            "email": "email",
            "company": "company",
            "region": "region",
            "country": "country",
            "title": "job_title",
            "tags": "tags",
            "note": "note",
        },
        owner=acc.principal.user_id,
    )
    await batch.save()
    batch_id = int(batch.id)
    counts = await run_batch(acc, batch_id)
    rows = await ImportRow.select().where(ImportRow.batch == batch_id).order_by(ImportRow.row_no)
    by_id = {r["record_id"]: r["row_no"] for r in rows if r["record_id"]}
    people = await Person.select().where(Person.id.is_in(list(by_id) or [0])).output(load_json=True)
    audits = await AuditLog.select().where(AuditLog.detail == f"import {batch_id}").output(load_json=True)

    def changes(a: dict[str, Any]) -> str:
        diff = {k: v for k, v in a["changes"].items() if k not in ("updated_at", "import_batch")}
        return json.dumps(diff, sort_keys=True)

    report = list(csv.reader(io.StringIO((await report_csv(batch_id)).decode("utf-8-sig"))))
    out = {
        "pools": pools,
        "counts": counts,
        "rows": [(r["row_no"], r["action"], r["message"]) for r in rows],
        "report": [line[:2] + line[3:] for line in report],  # but the record ids, which differ between runs
        "people": sorted((by_id[p["id"]], *(json.dumps(p[c], sort_keys=True) for c in COMPARED)) for p in people),
        "audit": sorted((by_id[int(a["record_id"])], a["action"], changes(a)) for a in audits),
    }
    await revert(acc, batch_id)  # the next run starts from the same base (its people archived, Ann restored)
    return out


async def test_parallel_and_copy_give_the_same_rows_report_and_audit(booted: Any, monkeypatch: Any) -> None:
    from crm_contacts.models import Person

    acc = await booted("rep", "sales_rep")
    await Importer(acc, ["name", "email"], [["Ann Lee", "ann@example.com"]], {"name": "name", "email": "email"}).run()
    import gc

    threshold = gc.get_threshold()
    single = await _run(acc, monkeypatch, parallel=False)
    parallel = await _run(acc, monkeypatch, parallel=True)
    assert gc.get_threshold() == threshold and gc.get_freeze_count() == 0  # a large import's GC pace undone
    assert single["pools"] == [] and len(parallel["pools"]) == 1 and parallel["pools"][0] >= 2
    assert single["counts"] == {"created": 33, "updated": 1, "skipped": 2, "failed": 1}
    actions = {row_no: (action, message) for row_no, action, message in single["rows"]}
    assert actions[7] == ("created", "phone: '12345' is not a valid phone number")  # dropped, warned
    assert actions[11][0] == "failed" and actions[11][1].startswith("email:")
    assert actions[13] == ("skipped", "empty row")
    assert actions[17] == ("skipped", "duplicate of row 5 in this file")
    assert actions[23][0] == "updated"
    for part in ("counts", "rows", "report", "people", "audit"):
        assert parallel[part] == single[part], part
    assert len(single["audit"]) == 34 and len(single["people"]) == 34
    ca = next(p for p in single["people"] if p[0] == 2)  # Person 0: US, its region kept as entered
    assert json.loads(ca[COMPARED.index("province") + 1]) == "California"
    assert len({p[COMPARED.index("organization") + 1] for p in single["people"]}) == 4  # each org once
    live = await Person.count().where(Person.is_archived == False)  # noqa: E712
    assert live == 1  # both runs reverted: Ann only


def test_created_rows_are_audited_as_audit_diff_would() -> None:
    import datetime as dt

    from crm_contacts.importing import _created, _plain

    from core.security import audit

    values = {
        "name": "Ann",
        "birth_date": dt.date(1990, 4, 9),
        "updated_at": dt.datetime.now(dt.UTC),
        "phone": "",
        "organization": None,
        "custom": {"tier": "gold"},
        "owner": 3,
    }
    assert _plain(_created(values)) == audit.diff(None, _plain(values))  # as stored: JSON
    assert "organization" not in _created(values) and _created(values)["phone"] == [None, ""]


async def test_created_people_are_published_only_when_someone_listens(booted: Any, monkeypatch: Any) -> None:
    from core import hooks
    from core.webhooks import events as webhook_events

    acc = await booted("rep", "sales_rep")
    published: list[int] = []

    async def publish(event: str, **payload: Any) -> list[Any]:
        assert event == "crm_contacts_person_created"
        published.append(payload["person_id"])
        return []

    monkeypatch.setattr(hooks, "publish", publish)
    rows = [[f"P {i}", f"p{i}@example.com"] for i in range(3)]
    mapping = {"name": "name", "email": "email"}
    quiet = await Importer(acc, ["name", "email"], rows[:1], mapping).run()
    assert quiet[0].action == "created" and published == []  # no hook implementation, no subscription

    async def one_listener(event: str) -> list[Any]:
        return [object()] if event == "crm_contacts_person_created" else []

    monkeypatch.setattr(webhook_events, "listeners", one_listener)
    heard = await Importer(acc, ["name", "email"], rows[1:], mapping).run()
    assert published == [r.record_id for r in heard] and len(published) == 2


async def test_new_people_chunks_are_written_side_by_side_and_commit_in_file_order(booted: Any,
                                                                                   monkeypatch: Any) -> None:
    import asyncio

    from crm_contacts.models import Person

    from core import db

    acc = await booted("rep", "sales_rep")
    monkeypatch.setattr(Importer, "CHUNK", 4)
    in_flight: list[int] = []
    most = 0
    committed: list[int] = []
    write_chunk = Importer._write_chunk

    async def watched(self: Importer, todo: list[Any], after: Any = None) -> Any:
        nonlocal most
        in_flight.append(todo[0].row_no)
        most = max(most, len(in_flight))
        await asyncio.sleep(0.05 if todo[0].row_no == 2 else 0)  # the first chunk is slow: the second waits for it
        try:
            return await write_chunk(self, todo, after)
        finally:
            in_flight.remove(todo[0].row_no)
            committed.append(todo[0].row_no)

    monkeypatch.setattr(Importer, "_write_chunk", watched)
    progress: list[int] = []
    rows = [[f"P {i}", f"p{i}@example.com", "VIP" if i == 9 else ""] for i in range(16)]  # row 11: tags
    results = await Importer(acc, ["name", "email", "tags"], rows, {"name": "name", "email": "email", "tags": "tags"}
                             ).run(progress=lambda done, total: progress.append(done))
    assert [r.action for r in results] == ["created"] * 16
    assert committed == [2, 6, 10, 14] and progress == [4, 8, 12, 16]  # file order
    assert most == (2 if db.is_postgres() else 1)  # SQLite: one writer at a time
    assert await Person.count().where(Person.name.like("P %")) == 16
