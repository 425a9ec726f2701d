"""Import: encodings, mapping, per-row errors that never stop good rows, modes, background batch, revert."""

from __future__ import annotations

import io
from typing import Any

import pytest
from crm_contacts.importing import Importer, auto_mapping, batch_counts, report_csv, revert, run_batch
from crm_contacts.tabular import read_table

from core.errors import ValidationError

CSV = "姓名,手机,邮箱,公司,地区,生日\n张伟,138 0013 8000,ZW@Example.com,腾讯,广东省深圳市,1990-04-09\n" \
      "李娜,12345,ln@example.com,,北京,\n王芳,13900139000,,阿里巴巴,浙江杭州,not-a-date\n" \
      "张伟,+86 13800138000,,,,\n,,,,,\nJOHN SMITH,+1 650 253 0000,john@EXAMPLE.com,Google,,\n"


async def _people() -> list[dict[str, Any]]:
    from crm_contacts.models import Person

    return await Person.select().where(Person.is_archived == False).order_by(Person.id)  # noqa: E712


async def _import(acc: Any, content: bytes, name: str = "f.csv", **kw: Any) -> list[Any]:
    header, rows = read_table(content, name)
    return await Importer(acc, header, rows, auto_mapping(header), **kw).run()


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
async def test_encodings_and_per_row_errors(booted: Any, encoding: str) -> None:
    acc = await booted("rep", "sales_rep")
    results = await _import(acc, CSV.encode(encoding))
    outcome = {r.row_no: (r.action, r.message) for r in results}
    assert outcome[2][0] == "created"
    assert outcome[3] == ("failed", "phone: '12345' is not a valid phone number")
    assert outcome[4][0] == "failed" and outcome[4][1].startswith("birth_date")
    assert outcome[5] == ("skipped", "duplicate of row 2 in this file")
    assert outcome[6] == ("skipped", "empty row")
    assert outcome[7][0] == "created"
    people = await _people()
    assert [p["name"] for p in people] == ["张伟", "John Smith"]
    assert people[0]["phone"] == "+8613800138000" and people[0]["province"] == "广东"
    assert people[1]["email"] == "john@example.com" and people[1]["phone"] == "+16502530000"
    assert people[0]["owner"] == acc.principal.user_id


async def test_xlsx_is_read_like_csv(booted: Any) -> None:
    from openpyxl import Workbook

    acc = await booted("rep", "sales_rep")
    book = Workbook()
    sheet = book.active
    sheet.append(["Name", "Mobile", "Email"])
    sheet.append(["Mary O'Brien", 13800138000, "mary@example.com"])  # numeric phone cell
    buf = io.BytesIO()
    book.save(buf)
    results = await _import(acc, buf.getvalue(), "people.xlsx")
    assert [r.action for r in results] == ["created"]
    assert (await _people())[0]["phone"] == "+8613800138000"


async def test_bad_files_are_refused_naming_the_problem(booted: Any) -> None:
    acc = await booted("rep", "sales_rep")
    for content in (b"", b"\n\n", b"PK\x03\x04garbage"):
        with pytest.raises(ValidationError) as err:
            read_table(content, "x.xlsx" if content.startswith(b"PK") else "x.csv")
        assert "file" in err.value.fields
    header, rows = read_table("手机,邮箱\n13800138000,a@b.cn\n".encode(), "x.csv")
    with pytest.raises(ValidationError) as err:
        Importer(acc, header, rows, auto_mapping(header))
    assert "mapping" in err.value.fields  # no name column: cannot create people
    with pytest.raises(ValidationError) as err:
        Importer(acc, header, rows, auto_mapping(header), mode="update", keys=["id"])
    assert "keys" in err.value.fields
    header, rows = read_table(b"name,phone\n", "empty.csv")
    assert rows == [] and await Importer(acc, header, rows, auto_mapping(header)).run() == []


async def test_huge_cells_fail_their_row_only(booted: Any) -> None:
    acc = await booted("rep", "sales_rep")
    content = ("name,job title\n" + "A" * 500_000 + ",x\nGood Person," + "t" * 5000 + "\nOk Person,CEO\n").encode()
    results = await _import(acc, content)
    assert [r.action for r in results] == ["failed", "failed", "created"]
    assert results[0].message.startswith("name:") and results[1].message.startswith("job_title:")


async def test_upsert_updates_matches_and_creates_the_rest(booted: Any) -> None:
    acc = await booted("rep", "sales_rep")
    await _import(acc, b"name,email,title\nAnn Lee,ann@example.com,Engineer\n")
    results = await _import(acc, b"name,email,title\nAnn Lee,ANN@example.com,CTO\nBo Chen,bo@example.com,Sales\n",
                            mode="upsert", keys=["email"])
    assert [r.action for r in results] == ["updated", "created"]
    people = await _people()
    assert [(p["name"], p["job_title"], p["version"]) for p in people] == [("Ann Lee", "CTO", 2),
                                                                           ("Bo Chen", "Sales", 1)]
    skipped = await _import(acc, b"name,email\nNobody,nobody@example.com\n", mode="update", keys=["email"])
    assert skipped[0].action == "skipped"


async def test_upsert_on_two_keys_matches_a_row_on_a_key_it_has(booted: Any) -> None:
    acc = await booted("rep", "sales_rep")
    await _import(acc, b"name,phone\nAnn Lee,13800138000\n")  # a person without an e-mail
    # one query finds Ann for the whole chunk (through row 3's phone): row 3 matches her on the phone key,
    # row 2 (no e-mail, like Ann) matches nobody
    results = await _import(acc, b"name,email,phone\nBo Chen,,13900139000\nAnn Lee,ann@example.com,13800138000\n",
                            mode="upsert", keys=["email", "phone"])
    assert [r.action for r in results] == ["created", "updated"]
    assert [(p["name"], p["phone"], p["email"]) for p in await _people()] == [
        ("Ann Lee", "+8613800138000", "ann@example.com"), ("Bo Chen", "+8613900139000", "")]


async def test_dry_run_writes_nothing(booted: Any) -> None:
    acc = await booted("rep", "sales_rep")
    header, rows = read_table(CSV.encode(), "x.csv")
    results = await Importer(acc, header, rows, auto_mapping(header)).run(dry_run=True)
    assert sum(r.action == "created" for r in results) == 2
    assert results[0].values["phone"] == "+8613800138000"
    assert await _people() == []


async def test_batch_runs_in_background_reports_and_reverts(booted: Any) -> None:
    from crm_contacts.models import ImportBatch, Person

    acc = await booted("rep", "sales_rep")
    await _import(acc, b"name,email,title\nAnn Lee,ann@example.com,Engineer\n")
    content = b"name,email,title\nAnn Lee,ann@example.com,CTO\nNew One,new@example.com,\nBad,bad@,\n"
    batch = ImportBatch(filename="b.csv", content=content, mode="upsert", keys=["email"],
                        mapping={"name": "name", "email": "email", "title": "job_title"}, owner=acc.principal.user_id)
    await batch.save()
    counts = await run_batch(acc, int(batch.id))
    assert counts == {"created": 1, "updated": 1, "skipped": 0, "failed": 1}
    assert await run_batch(acc, int(batch.id)) == {}  # idempotent: a finished batch is not run again
    report = (await report_csv(int(batch.id))).decode("utf-8-sig")
    assert "4,failed,,email:" in report
    row = await ImportBatch.select().where(ImportBatch.id == batch.id).first()
    assert (row["status"], row["done"], row["total"]) == ("done", 3, 3)
    assert await revert(acc, int(batch.id)) == {"archived": 1, "restored": 1, "conflicts": 0}
    ann = await Person.select().where(Person.email_key == "ann@example.com").first()
    assert ann["job_title"] == "Engineer"
    assert [p["name"] for p in await _people()] == ["Ann Lee"]
    with pytest.raises(ValidationError):
        await revert(acc, int(batch.id))
    assert await batch_counts(int(batch.id)) == counts


async def test_a_row_failing_inside_a_chunk_write_is_pinned_and_the_rest_go_in(booted: Any) -> None:
    acc = await booted("rep", "sales_rep")
    long_tag = "x" * 70  # refused by set_tags inside the chunk's transaction
    content = f"name,tags\nGood One,vip\nBad Tag,{long_tag}\nGood Two,\n".encode()
    results = await _import(acc, content)
    assert [r.action for r in results] == ["created", "failed", "created"]
    assert "tags" in results[1].message
    assert [p["name"] for p in await _people()] == ["Good One", "Good Two"]  # nothing half-written


async def test_chunks_written_while_the_next_is_standardized_keep_file_order(booted: Any,
                                                                             monkeypatch: Any) -> None:
    from crm_contacts.models import ImportBatch, ImportRow

    monkeypatch.setattr(Importer, "CHUNK", 7)
    acc = await booted("rep", "sales_rep")
    lines = ["name,email,company,tags"]
    for i in range(40):
        email = "p3@example.com" if i == 20 else f"p{i}@example.com"  # repeats a row of an earlier chunk
        # fails inside its chunk's write (the first: its organizations are rolled back too), redone row by row
        tag = "x" * 70 if i == 2 else "vip"
        lines.append(f"Person {i},{email},Org {i % 3},{tag}")
    batch = ImportBatch(filename="p.csv", content="\n".join(lines).encode(), mode="create", keys=[],
                        mapping={"name": "name", "email": "email", "company": "company", "tags": "tags"},
                        owner=acc.principal.user_id)
    await batch.save()
    seen: list[int] = []
    assert await run_batch(acc, int(batch.id), progress=lambda done, total: seen.append(done)) == {
        "created": 38, "updated": 0, "skipped": 1, "failed": 1}
    assert seen == sorted(seen) and seen[-1] == 40  # progress only moves forward
    rows = await ImportRow.select(ImportRow.row_no, ImportRow.action).where(ImportRow.batch == batch.id).order_by(
        ImportRow.row_no)
    assert [r["row_no"] for r in rows] == list(range(2, 42))
    assert {r["row_no"]: r["action"] for r in rows if r["action"] != "created"} == {4: "failed", 22: "skipped"}
    people = await _people()
    assert [p["name"] for p in people] == [f"Person {i}" for i in range(40) if i not in (2, 20)]
    assert len({p["organization"] for p in people}) == 3  # each company created once across chunks


async def test_cli_import_and_dedup_scan(crm_boot: Any, crm_db_url: str, tmp_path: Any, monkeypatch: Any) -> None:
    from click.testing import CliRunner
    from crm_contacts.cli import contacts
    from crm_contacts.models import DuplicateGroup

    await crm_boot("crm_contacts")  # the CLI discovers real addons only: no probe here
    monkeypatch.setenv("CRM_DATABASE_URL", crm_db_url)
    monkeypatch.setenv("CRM_DATA_DIR", str(tmp_path))
    path = tmp_path / "people.csv"
    path.write_bytes("姓名,手机\n张伟,13800138000\n张伟,+86 138 0013 8000\n李娜,bad\n".encode("gbk"))
    report = tmp_path / "report.csv"
    import asyncio

    def invoke(*args: str) -> Any:
        return CliRunner().invoke(contacts, list(args), catch_exceptions=False)

    result = await asyncio.to_thread(invoke, "import", str(path), "--report", str(report))
    assert result.exit_code == 1, result.output  # a row failed: a script must notice
    assert "created 1, failed 1, skipped 1" in result.output and "1 row(s) failed" in result.output
    assert "3,skipped" in report.read_text(encoding="utf-8-sig")
    again = await asyncio.to_thread(invoke, "import", str(path), "--allow-failures", "--dry-run")
    assert again.exit_code == 0, again.output
    left_out = await asyncio.to_thread(invoke, "import", str(path), "--drop-invalid", "phone")
    assert left_out.exit_code == 0 and "row 4: created, left out phone:" in left_out.output
    scan = await asyncio.to_thread(invoke, "dedup-scan")
    assert scan.exit_code == 0 and "duplicate group" in scan.output
    assert await DuplicateGroup.count() == 0  # the in-file duplicate was never imported
