from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import ForeignKey

ID = "2026-12-03T12:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "an index on an order's person"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="crm_sales", description=DESCRIPTION)
    # a person's orders are read by person (marketing's order filters for one contact, RFM, the contact's page):
    # without it each read scanned every order (3M at issue 13's size)
    manager.alter_column(table_class_name="Order", tablename="crm_sales_order", column_name="person",
                         db_column_name="person", params={"index": True}, old_params={"index": False},
                         column_class=ForeignKey, old_column_class=ForeignKey)
    return manager
