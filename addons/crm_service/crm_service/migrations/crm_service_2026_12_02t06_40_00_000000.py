from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Text
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-02T06:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "ticket search_text (jieba-segmented words)"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="crm_service", description=DESCRIPTION
    )

    manager.add_column(
        table_class_name="Ticket",
        tablename="crm_service_ticket",
        column_name="search_text",
        db_column_name="search_text",
        column_class_name="Text",
        column_class=Text,
        params={
            "default": "",
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    return manager
