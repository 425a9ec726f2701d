"""Imports: the text encoding a CSV file is read with (detected at upload, or chosen by the user), and the
values an import wrote on each updated record, so a revert restores only fields nobody changed since."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import JSON, Varchar
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-02T10:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "contacts imports: file encoding, values written per updated row"

_COMMON = {"null": False, "primary_key": False, "unique": False, "index": False, "index_method": IndexMethod.btree,
           "choices": None, "db_column_name": None, "secret": False}


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="crm_contacts", description=DESCRIPTION)
    manager.add_column(table_class_name="ImportBatch", tablename="crm_contacts_import_batch", column_name="encoding",
                       db_column_name="encoding", column_class_name="Varchar", column_class=Varchar,
                       params={"length": 40, "default": "", **_COMMON}, schema=None)
    manager.add_column(table_class_name="ImportRow", tablename="crm_contacts_import_row", column_name="after",
                       db_column_name="after", column_class_name="JSON", column_class=JSON,
                       params={"default": "{}", **_COMMON}, schema=None)
    return manager
