"""Composite unique keys (raw steps run before table creation inside one migration: hence a second file)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from core.schema import unique_index

ID = "2026-11-23T09:47:52:000000"
VERSION = "1.38.0"
DESCRIPTION = "erp_bridge unique keys"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="erp_bridge", description=DESCRIPTION)
    # one binding per CRM record and backend: the per-record lock and the exactly-once guard
    manager.add_raw(unique_index("erp_bridge_binding", "backend", "model", "local_id"))
    manager.add_raw(unique_index("erp_bridge_invoice", "backend", "external_id"))
    manager.add_raw(unique_index("erp_bridge_pull_cursor", "backend", "kind"))
    return manager
