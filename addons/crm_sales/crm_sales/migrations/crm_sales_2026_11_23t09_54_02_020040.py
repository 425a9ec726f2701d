from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Varchar
from piccolo.columns.indexes import IndexMethod

ID = "2026-11-23T09:54:02:020040"
VERSION = "1.38.0"
DESCRIPTION = "quote customer group"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="crm_sales", description=DESCRIPTION
    )

    manager.add_column(
        table_class_name="Quote",
        tablename="crm_sales_quote",
        column_name="customer_group",
        db_column_name="customer_group",
        column_class_name="Varchar",
        column_class=Varchar,
        params={
            "length": 60,
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
