"""A custom field's key is unique per model (raw steps run before table creation: a second migration)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from core.schema import unique_index

ID = "2026-12-02T14:00:01:000000"
VERSION = "1.38.0"
DESCRIPTION = "custom field key unique per model"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="core", description=DESCRIPTION)
    manager.add_raw(unique_index("core_custom_field", "model", "key"))
    return manager
