"""Upgrading from the previous release keeps every row: a database made by the code of commit 222e07e (the
release of 2026-11-23: kernel, crm_contacts, crm_sales, erp_bridge with their demo data; rebuilt by
tests/fixtures/upgrade/build.sh) is upgraded by the current code (``crm addons upgrade``: every kernel and addon
migration since, data files reloaded), then every row of every table it had is still there with the values it had
in every column it had, and the CRM boots on it."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path
from typing import Any

from core import backup, lifecycle
from core.discovery import discover
from core.models import Outbox
from core.testing import pg_admin

FIXTURES = Path(__file__).parents[1] / "fixtures" / "upgrade"
RELEASE = "222e07e"
#: what an upgrade rightly changes: when each addon was last upgraded
EXPECTED = {("core_addon", "updated_at")}
#: tables an upgrade folds into another: their rows must all be found there (by body) instead
MOVED = {"crm_contacts_note": "core_record_note"}


async def _tables(is_sqlite: bool) -> list[str]:
    if is_sqlite:
        rows = await Outbox.raw("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    else:
        rows = await Outbox.raw(
            "SELECT table_name AS name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        )
    return sorted(str(r["name"]) for r in rows)


async def _rows(table: str) -> dict[Any, dict[str, Any]]:
    # table names come from the database's own catalogue, never from input
    rows = await Outbox.raw(f'SELECT * FROM "{table}"')  # noqa: S608
    key = "id" if rows and "id" in rows[0] else None
    return {(r[key] if key else n): dict(r) for n, r in enumerate(rows)}


async def test_the_previous_release_upgrades_without_losing_a_row(crm_db_url: str, crm_boot: Any) -> None:
    is_sqlite = crm_db_url.startswith("sqlite")
    if is_sqlite:
        with (
            gzip.open(FIXTURES / f"crm_{RELEASE}.sqlite3.gz") as packed,
            open(crm_db_url.split(":///", 1)[1], "wb") as out,
        ):
            shutil.copyfileobj(packed, out)
    else:
        name = crm_db_url.rsplit("/", 1)[1]
        await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await pg_admin(f'CREATE DATABASE "{name}"')
        backup.restore(crm_db_url, FIXTURES / f"crm_{RELEASE}.pgdump")
    assert await lifecycle.installed() == {"crm_contacts": "1.0.0", "crm_sales": "1.0.0", "erp_bridge": "1.0.0"}
    old = {t: await _rows(t) for t in await _tables(is_sqlite) if t != "piccolo_migration"}
    assert sum(len(r) for r in old.values()) > 1000 and len(old["crm_contacts_person"]) > 100
    upgraded = await lifecycle.upgrade(None, discover())
    assert set(upgraded) == {"crm_contacts", "crm_sales", "erp_bridge"}
    lost: list[str] = []
    changed: list[str] = []
    for table, rows in old.items():
        if table in MOVED:
            there = [r["body"] for r in (await _rows(MOVED[table])).values()]
            gone = [r["id"] for r in rows.values() if r["body"] not in there]
            if gone:
                lost.append(f"{table}: {len(gone)} of {len(rows)} rows not moved to {MOVED[table]} ({gone[:3]})")
            continue
        now = await _rows(table)
        missing = sorted(set(rows) - set(now), key=str)
        if missing:
            lost.append(f"{table}: {len(missing)} of {len(rows)} rows gone (e.g. {missing[:3]})")
            continue
        for key, row in rows.items():
            diff = {
                c: (v, now[key].get(c))
                for c, v in row.items()
                if str(now[key].get(c)) != str(v) and (table, c) not in EXPECTED
            }
            if diff:
                changed.append(f"{table} {key}: {diff}")
    assert not lost, "\n".join(lost)
    assert not changed, "\n".join(changed[:20])
    tables = await _tables(is_sqlite)
    assert len(tables) > len(old) + 10 and "core_webhook_delivery" in tables  # the release's migrations ran
    runtime = await crm_boot()  # the current code runs on the upgraded database
    assert {"crm_contacts", "crm_sales", "erp_bridge"} <= set(runtime.names)
