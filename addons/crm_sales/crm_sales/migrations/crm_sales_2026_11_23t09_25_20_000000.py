"""Composite unique keys (raw steps run before table creation inside one migration: hence a second file)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from core.schema import unique_index

ID = "2026-11-23T09:25:20:000000"
VERSION = "1.38.0"
DESCRIPTION = "sales unique keys"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="crm_sales", description=DESCRIPTION)
    manager.add_raw(unique_index("crm_sales_quote", "number", "revision"))
    manager.add_raw(unique_index("crm_sales_assignment_member", "rule", "user"))
    manager.add_raw(unique_index("crm_sales_price_list_item", "price_list", "product", "min_quantity"))
    # one order per quote: a replayed acceptance finds the existing order instead of creating a second
    manager.add_raw(unique_index("crm_sales_order", "quote"))
    return manager
