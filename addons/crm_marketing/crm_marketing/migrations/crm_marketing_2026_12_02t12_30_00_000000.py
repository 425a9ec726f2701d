from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import ForeignKey

ID = "2026-12-02T12:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "a segment member's single-column segment index dropped"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="crm_marketing", description=DESCRIPTION)
    # the unique (segment, person) index leads with the same column: the second index only cost every member
    # written (a first build writes 200k at issue 13's size)
    manager.alter_column(table_class_name="SegmentMember", tablename="crm_marketing_segment_member",
                         column_name="segment", db_column_name="segment", params={"index": False},
                         old_params={"index": True}, column_class=ForeignKey, old_column_class=ForeignKey)
    return manager
