"""International addresses: a country on people and organizations (regions of countries without a dictionary are
kept as entered); imports remember which optional fields drop a bad value with a warning instead of failing the row."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import JSON, Varchar
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-02T11:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "contacts: country; imports: fields whose bad values are dropped"

_COMMON = {"null": False, "primary_key": False, "unique": False, "index": False, "index_method": IndexMethod.btree,
           "choices": None, "db_column_name": None, "secret": False}


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="crm_contacts", description=DESCRIPTION)
    for table, tablename in (("Person", "crm_contacts_person"), ("Organization", "crm_contacts_organization")):
        manager.add_column(table_class_name=table, tablename=tablename, column_name="country",
                           db_column_name="country", column_class_name="Varchar", column_class=Varchar,
                           params={"length": 2, "default": "", **_COMMON}, schema=None)
    manager.add_column(table_class_name="ImportBatch", tablename="crm_contacts_import_batch",
                       column_name="drop_invalid", db_column_name="drop_invalid", column_class_name="JSON",
                       column_class=JSON, params={"default": "[]", **_COMMON}, schema=None)
    return manager
