"""Knowledge-base search without sorting every match (measured with bench/service_desk.py, 50,000 articles).

The search returns the newest matches. With only the GIN index, PostgreSQL fetched every matching article (a
common word: 12,500 rows, 1,850 heap pages) to sort them for 50: 12-20 ms idle, 50-116 ms p95 through the app at
load 5-12. ``(updated_at, id)`` lets ``kb.search`` read its matches among the newest articles from the index
(``kb.WINDOW``); ``search_vector`` (a stored ``to_tsvector('simple', search_text)``, GIN-indexed, as the
tickets' of 07:05) makes the test on each row read a lookup instead of parsing the words again. The words'
index on the expression is dropped: nothing searches the expression any more. SQLite: the same btree index
(its whole-token match has no full-text index to use)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-12-02T12:50:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "knowledge-base search: newest-first index and stored tsvector"


async def _forwards() -> None:
    from core.db import current, is_postgres

    engine = current()
    await engine.run_ddl('CREATE INDEX IF NOT EXISTS "crm_service_article_updated" '
                         'ON "crm_service_article" (updated_at, id)')
    if not is_postgres(engine):
        return
    await engine.run_ddl('ALTER TABLE "crm_service_article" ADD COLUMN IF NOT EXISTS search_vector tsvector '
                         "GENERATED ALWAYS AS (to_tsvector('simple', search_text)) STORED")
    await engine.run_ddl('CREATE INDEX IF NOT EXISTS "crm_service_article_search_vector" '
                         'ON "crm_service_article" USING gin (search_vector)')
    await engine.run_ddl('DROP INDEX IF EXISTS "crm_service_article_fts"')


async def _backwards() -> None:
    from core.db import current, is_postgres

    engine = current()
    if is_postgres(engine):
        await engine.run_ddl('CREATE INDEX IF NOT EXISTS "crm_service_article_fts" ON "crm_service_article" '
                             "USING gin (to_tsvector('simple', search_text))")
        await engine.run_ddl('ALTER TABLE "crm_service_article" DROP COLUMN IF EXISTS search_vector')
    await engine.run_ddl('DROP INDEX IF EXISTS "crm_service_article_updated"')


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="crm_service", description=DESCRIPTION)
    manager.add_raw(_forwards)
    manager.add_raw_backwards(_backwards)
    return manager
