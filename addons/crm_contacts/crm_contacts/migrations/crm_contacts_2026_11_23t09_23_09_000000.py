"""Composite unique keys and search indexes (raw steps run before table creation: a second migration).

Search: on PostgreSQL a pg_trgm GIN index on ``search_text`` serves ``ILIKE '%term%'`` for any substring
(Chinese included, since trigrams work on characters). SQLite has no trigram index: search falls back to
``LIKE`` on ``search_text`` (a scan, fine for single-machine sizes) — see docs/contacts.md.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from core.schema import unique_index

ID = "2026-11-23T09:23:09:000000"
VERSION = "1.38.0"
DESCRIPTION = "contacts unique keys and search indexes"


async def _search_indexes() -> None:
    from core.db import current, is_postgres

    engine = current()
    if not is_postgres(engine):
        return
    await engine.run_ddl("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for table in ("crm_contacts_person", "crm_contacts_organization"):
        await engine.run_ddl(f'CREATE INDEX IF NOT EXISTS "{table}_search_trgm" ON "{table}" '
                             "USING gin (search_text gin_trgm_ops)")


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="crm_contacts", description=DESCRIPTION)
    manager.add_raw(unique_index("crm_contacts_person_tag", "person", "tag"))
    manager.add_raw(unique_index("crm_contacts_organization_tag", "organization", "tag"))
    manager.add_raw(_search_indexes)
    return manager
