"""The run log is searched by rule and record (has this rule acted on this record since…?): one index on both
(raw steps run before table creation: a second migration)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-12-02T15:00:01:000000"
VERSION = "1.38.0"
DESCRIPTION = "automation run log index by rule and record"


async def _index() -> None:
    from core.db import current

    await current().run_ddl('CREATE INDEX IF NOT EXISTS "core_automation_run_rule_id_record_id" '
                            'ON "core_automation_run" ("rule_id", "record_id")')


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="core", description=DESCRIPTION)
    manager.add_raw(_index)
    return manager
