"""One review per reference and backend (a raw step: after the table exists, hence its own file)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from core.schema import unique_index

ID = "2026-12-01T23:59:45:000000"
VERSION = "1.38.0"
DESCRIPTION = "erp_bridge reconciliation review unique key"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="erp_bridge", description=DESCRIPTION)
    manager.add_raw(unique_index("erp_bridge_reconciliation_review", "backend", "reference"))
    return manager
