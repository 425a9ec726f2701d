"""Notes on people and organizations are the kernel timeline's notes (one list, one form, mentions and followers):
the addon's own notes move there and its table goes."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-12-02T12:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "contacts: notes moved to the kernel timeline"

_COPY = """
INSERT INTO core_record_note (model, record_id, body, author_id, mentions, url, created_at)
SELECT CASE WHEN person IS NOT NULL THEN 'crm_contacts.person' ELSE 'crm_contacts.organization' END,
       COALESCE(person, organization), body, owner, '[]', '', created_at
FROM crm_contacts_note WHERE person IS NOT NULL OR organization IS NOT NULL ORDER BY id
"""


async def _forwards() -> None:
    from core.db import current

    await current().run_ddl(_COPY)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="crm_contacts", description=DESCRIPTION)
    manager.add_raw(_forwards)
    manager.drop_table(class_name="Note", tablename="crm_contacts_note")
    return manager
