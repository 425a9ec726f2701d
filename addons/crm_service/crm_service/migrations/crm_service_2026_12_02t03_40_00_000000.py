"""Search indexes on PostgreSQL: full-text (``simple`` configuration) over the articles' segmented words, and
trigrams over ticket subjects for the list's ILIKE search. SQLite has neither; it scans."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-12-02T03:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "search indexes (PostgreSQL)"


async def _forwards() -> None:
    from core.db import current, is_postgres

    engine = current()
    if not is_postgres(engine):
        return
    await engine.run_ddl("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    await engine.run_ddl('CREATE INDEX IF NOT EXISTS "crm_service_article_fts" ON "crm_service_article" '
                         "USING gin (to_tsvector('simple', search_text))")
    await engine.run_ddl('CREATE INDEX IF NOT EXISTS "crm_service_ticket_subject_trgm" ON "crm_service_ticket" '
                         "USING gin (subject gin_trgm_ops)")


async def _backwards() -> None:
    from core.db import current, is_postgres

    engine = current()
    if is_postgres(engine):
        await engine.run_ddl('DROP INDEX IF EXISTS "crm_service_article_fts"')
        await engine.run_ddl('DROP INDEX IF EXISTS "crm_service_ticket_subject_trgm"')


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="crm_service", description=DESCRIPTION)
    manager.add_raw(_forwards)
    manager.add_raw_backwards(_backwards)
    return manager
