"""Run an app's pending Piccolo migrations inside the caller's transaction."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable

from piccolo.apps.migrations.commands.forwards import ForwardsMigrationManager
from piccolo.apps.migrations.tables import Migration
from piccolo.conf.apps import AppConfig
from piccolo.table import Table

from core.db import current, is_postgres
from core.errors import AddonError


class _Forwards(ForwardsMigrationManager):
    def __init__(self, config: AppConfig) -> None:
        self._config = config
        super().__init__(app_name=config.app_name)

    def get_app_config(self, app_name: str) -> AppConfig:
        return self._config


async def pending(config: AppConfig) -> list[str]:
    """Ids of the migrations of ``config`` that this database has not run."""
    if not config.migrations_folder_path:
        return []
    manager = _Forwards(config)
    await manager.create_migration_table()
    ran = set(await Migration.get_migrations_which_ran(app_name=config.app_name))
    modules = manager.get_migration_modules(config.resolved_migrations_folder_path)
    return sorted(set(manager.get_migration_ids(modules)) - ran)


async def forwards(config: AppConfig) -> list[str]:
    """Apply pending migrations; Piccolo's chatter is kept out of the CLI's output."""
    todo = await pending(config)
    if not todo:
        return []
    chatter = io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter):
            result = await _Forwards(config).run()
    except Exception as exc:
        raise AddonError(config.app_name, f"migration failed: {type(exc).__name__}: {exc}") from exc
    if not result.success:
        raise AddonError(config.app_name, f"migration failed: {result.message}")
    return todo


async def drop(config: AppConfig, others: Iterable[str] = ()) -> list[str]:
    """Drop the app's tables (dependents first) and database functions, and forget its migrations.

    A migration may create functions (PostgreSQL) that no model lists; they carry the app's name like its
    tables, and go with them. ``others`` are the other addons' names: ``crm_sales_x_…`` is ``crm_sales_x``'s.
    """
    tables: list[type[Table]] = list(reversed(config.table_classes))
    for table in tables:
        await table.alter().drop_table(if_exists=True)
    if is_postgres():
        for row in await Migration.raw(_FUNCTIONS):
            if owner(row["name"], [config.app_name, *others]) == config.app_name:
                await current().run_ddl(f"DROP FUNCTION {row['signature']}")
    await Migration.delete().where(Migration.app_name == config.app_name)
    return [t._meta.tablename for t in tables]


_FUNCTIONS = """SELECT p.proname AS name, p.oid::regprocedure::text AS signature FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = current_schema()"""


def owner(name: str, addons: Iterable[str]) -> str | None:
    """The addon a database object belongs to by its name (``<addon>_…``): the longest name that prefixes it."""
    matching = [a for a in addons if name.startswith(f"{a}_")]
    return max(matching, key=len) if matching else None
