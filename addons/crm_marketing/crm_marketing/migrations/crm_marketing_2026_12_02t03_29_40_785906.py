from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Timestamptz
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-02T03:29:40:785906"
VERSION = "1.38.0"
DESCRIPTION = "campaign scheduled_at"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="crm_marketing", description=DESCRIPTION
    )

    manager.add_column(
        table_class_name="Campaign",
        tablename="crm_marketing_campaign",
        column_name="scheduled_at",
        db_column_name="scheduled_at",
        column_class_name="Timestamptz",
        column_class=Timestamptz,
        params={
            "default": None,
            "null": True,
            "primary_key": False,
            "unique": False,
            "index": True,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    return manager
