from decimal import Decimal

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Numeric, Varchar
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-03T03:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "a lead's disqualification reason; a quote's e-mail state and quote-level discount"


def _params(default: object, **extra: object) -> dict[str, object]:
    return {"default": default, "null": False, "primary_key": False, "unique": False, "index": False,
            "index_method": IndexMethod.btree, "choices": None, "db_column_name": None, "secret": False, **extra}


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="crm_sales", description=DESCRIPTION)
    manager.add_column(table_class_name="Lead", tablename="crm_sales_lead", column_name="disqualified_reason",
                       db_column_name="disqualified_reason", column_class_name="Varchar", column_class=Varchar,
                       params=_params("", length=300), schema=None)
    manager.add_column(table_class_name="Quote", tablename="crm_sales_quote", column_name="email_state",
                       db_column_name="email_state", column_class_name="Varchar", column_class=Varchar,
                       params=_params("", length=10), schema=None)
    manager.add_column(table_class_name="Quote", tablename="crm_sales_quote", column_name="discount_percent",
                       db_column_name="discount_percent", column_class_name="Numeric", column_class=Numeric,
                       params=_params(Decimal(0), digits=(6, 2)), schema=None)
    return manager
