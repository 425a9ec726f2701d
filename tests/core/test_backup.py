"""``crm backup`` / ``crm restore`` (core.backup) on SQLite and PostgreSQL with every bundled addon installed and
holding rows (the previous release's demo database upgraded, the addons since installed, a row of defaults in an
addon's tables where it has none): a backup taken, the database changed, the backup restored, and every table of
the kernel and of each addon holds exactly what it held (row by row); refusals are one readable line and change
nothing."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from core import backup
from core.discovery import discover
from core.migrations_registry import kernel_tables, tables_of


def _tables(found: Any) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {"core": kernel_tables()}
    for name, addon in sorted(found.addons.items()):
        out[name] = tables_of(addon.models, name) if addon.models else []
    return out


async def _digest(tables: dict[str, list[Any]]) -> dict[str, tuple[int, str]]:
    out = {}
    for group in tables.values():
        for table in group:
            name = table._meta.tablename  # from the models, not from input
            rows = await table.raw(f'SELECT * FROM "{name}" ORDER BY "{table._meta.primary_key._meta.db_column_name}"')  # noqa: S608
            out[table._meta.tablename] = (len(rows), hashlib.sha256(repr(rows).encode()).hexdigest())
    return out


async def test_a_backup_restores_every_addons_rows(crm_boot: Any, crm_settings: Any, tmp_path: Path) -> None:
    from core import lifecycle
    from core.security.models import User

    url = crm_settings.database_url
    await _previous_release(url)  # 1,000+ rows of the kernel, crm_contacts, crm_sales and erp_bridge
    found = discover()
    await lifecycle.upgrade(None, found)
    await lifecycle.install(sorted(found.addons), found)  # and every addon since, with its data files
    await crm_boot()
    tables = _tables(found)
    await _fill_addons_without_demo_rows(tables)
    before = await _digest(tables)
    empty = [name for name, group in tables.items() if group and not any(before[t._meta.tablename][0] for t in group)]
    assert not empty, f"addons with no rows to back up: {empty}"
    file = backup.backup(url, tmp_path / "crm.backup")
    assert backup.kind_of(file) == ("sqlite" if url.startswith("sqlite") else "postgres")
    # life goes on after the backup: a user added, a whole table emptied
    await User.insert(User(login="after-backup", name="After", password_hash="x"))
    biggest = max((t for g in tables.values() for t in g), key=lambda t: before[t._meta.tablename][0])
    await biggest.delete(force=True)
    assert await biggest.count() == 0 and before[biggest._meta.tablename][0] > 0
    backup.restore(url, file)
    assert await _digest(tables) == before
    # refusals: one line, exit code, nothing changed
    runner = CliRunner()
    env = {"CRM_DATABASE_URL": url, "CRM_DATA_DIR": str(tmp_path), "CRM_SECRET_KEY": "x"}
    refused = runner.invoke(_main(), ["restore", str(file)], env=env)
    assert refused.exit_code == 2 and "--yes" in refused.output
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a backup")
    refused = runner.invoke(_main(), ["restore", "--yes", str(junk)], env=env)
    assert refused.exit_code == 1 and "neither a SQLite database nor a pg_dump" in refused.output
    assert "Traceback" not in refused.output
    made = runner.invoke(_main(), ["backup", str(tmp_path / "cli.backup")], env=env)
    assert made.exit_code == 0 and "backed up" in made.output, made.output
    assert await biggest.count() == before[biggest._meta.tablename][0]  # the refused restores changed nothing
    assert not await User.exists().where(User.login == "after-backup")


async def _previous_release(url: str) -> None:
    """The database tests/core/test_upgrade.py starts from, in place of the fresh one at ``url``."""
    import gzip
    import shutil

    from core.testing import pg_admin

    fixtures = Path(__file__).parents[1] / "fixtures" / "upgrade"
    if url.startswith("sqlite"):
        with gzip.open(fixtures / "crm_222e07e.sqlite3.gz") as packed, open(url.split(":///", 1)[1], "wb") as out:
            shutil.copyfileobj(packed, out)
        return
    name = url.rsplit("/", 1)[1]
    await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await pg_admin(f'CREATE DATABASE "{name}"')
    backup.restore(url, fixtures / "crm_222e07e.pgdump")


async def _fill_addons_without_demo_rows(tables: dict[str, list[Any]]) -> None:
    """An addon whose demo data leaves all its tables empty gets a row of defaults in each table that takes one
    (tables whose references need a real row are left alone)."""
    from core import db

    for group in tables.values():
        if not group or any([await t.count() for t in group]):
            continue
        for table in group:
            try:
                async with db.atomic():
                    await table.insert(table())
            except Exception:  # noqa: BLE001, S112 - a required reference: not this table
                continue


def _main() -> Any:
    from core.cli.main import main

    return main


def test_the_statement_cache_option_is_ours_not_libpqs() -> None:
    """``?statement_cache_size=0`` (PgBouncer in transaction mode) reaches asyncpg, never pg_dump's libpq."""
    import pytest

    from core import db
    from core.errors import ConfigError

    url = "postgresql://crm:pw@db:6432/crm?statement_cache_size=0&sslmode=require"
    assert db.pg_dsn(url) == ("postgresql://crm:pw@db:6432/crm?sslmode=require", 0)
    assert db.pg_dsn("postgres://crm@db/crm") == ("postgresql://crm@db/crm", 100)
    local = "postgresql://postgres@127.0.0.1:5432/postgres"  # the engine asks the server for its version
    engine = db.engine_for(f"{local}?statement_cache_size=0")
    assert engine.config["statement_cache_size"] == 0 and "server_settings" not in engine.config
    assert db.engine_for(local).config["server_settings"] == {"plan_cache_mode": "force_custom_plan"}
    with pytest.raises(ConfigError, match="statement_cache_size must be a whole number"):
        db.pg_dsn("postgresql://crm@db/crm?statement_cache_size=off")
