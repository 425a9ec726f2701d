"""Composite unique keys (raw steps run before table creation, so they need their own migration)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from core.schema import unique_index

ID = "2026-11-23T09:09:08:000000"
VERSION = "1.38.0"
DESCRIPTION = "kernel unique keys"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="core", description=DESCRIPTION)
    manager.add_raw(unique_index("core_external_id", "addon", "key"))
    manager.add_raw(unique_index("core_user_role", "user", "role"))
    manager.add_raw(unique_index("core_team_member", "team", "user"))
    return manager
