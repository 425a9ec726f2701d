"""User preferences: a time zone and an e-mail notification switch per user; a new user's language is empty
until their first login stores the one their browser asks for (it was "en" for everyone)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Boolean, Varchar
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-02T12:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "user preferences: time zone, e-mail notifications, language set at first login"

_COMMON = {"null": False, "primary_key": False, "unique": False, "index": False, "index_method": IndexMethod.btree,
           "choices": None, "db_column_name": None, "secret": False}


class _Manager(MigrationManager):
    async def _run_alter_columns(self, backwards: bool = False) -> None:
        from core.db import is_postgres

        # SQLite cannot change a column's default in place (it would rebuild the table); Piccolo writes every
        # column's value on insert, so the stored default is never used there. The step stays recorded, so
        # the migrations still describe the model.
        if is_postgres():
            await super()._run_alter_columns(backwards=backwards)


async def forwards() -> MigrationManager:
    manager = _Manager(migration_id=ID, app_name="core", description=DESCRIPTION)
    manager.add_column(table_class_name="User", tablename="core_user", column_name="timezone",
                       db_column_name="timezone", column_class_name="Varchar", column_class=Varchar,
                       params={"length": 64, "default": "", **_COMMON}, schema=None)
    manager.add_column(table_class_name="User", tablename="core_user", column_name="has_email_notifications",
                       db_column_name="has_email_notifications", column_class_name="Boolean", column_class=Boolean,
                       params={"default": True, **_COMMON}, schema=None)
    manager.alter_column(table_class_name="User", tablename="core_user", column_name="language",
                         db_column_name="language", params={"default": ""}, old_params={"default": "en"},
                         column_class=Varchar, old_column_class=Varchar, schema=None)
    return manager
