from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Timestamptz
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-01T23:50:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "a binding's next try after a transient ERP failure"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="erp_bridge", description=DESCRIPTION
    )

    manager.add_column(
        table_class_name="Binding",
        tablename="erp_bridge_binding",
        column_name="retry_at",
        db_column_name="retry_at",
        column_class_name="Timestamptz",
        column_class=Timestamptz,
        params={
            "default": None,
            "null": True,
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
