"""Composite unique keys (raw steps run before table creation inside one migration: hence a second file)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from core.schema import unique_index

ID = "2026-12-02T03:01:23:000000"
VERSION = "1.38.0"
DESCRIPTION = "marketing unique keys"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="crm_marketing", description=DESCRIPTION)
    # one membership row per person and segment; one recipient row per person and campaign: a send that is
    # replayed (actor retry, second click) finds the rows it made instead of mailing anyone twice
    manager.add_raw(unique_index("crm_marketing_segment_member", "segment", "person"))
    manager.add_raw(unique_index("crm_marketing_campaign_recipient", "campaign", "person"))
    return manager
