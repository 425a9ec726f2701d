"""Ticket search without computing ``to_tsvector`` per row (PostgreSQL only; measured with bench/service_desk.py).

The list walks tickets newest first and tests the search on each row of the agent's teams: with only an
expression index the words were parsed again for every row tested (slower than the substring search it
replaced for frequent words). ``search_vector`` is a stored generated column, ``to_tsvector('simple',
search_text)``, with its own GIN index: the test is a lookup, the index serves rare words, and the planner has
statistics on it. The database derives it, so it never drifts from ``search_text``; the Piccolo model does not
list it. SQLite keeps its whole-token match on ``search_text``."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-12-02T07:05:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "ticket search: stored tsvector"


async def _forwards() -> None:
    from core.db import current, is_postgres

    engine = current()
    if not is_postgres(engine):
        return
    await engine.run_ddl('ALTER TABLE "crm_service_ticket" ADD COLUMN IF NOT EXISTS search_vector tsvector '
                         "GENERATED ALWAYS AS (to_tsvector('simple', search_text)) STORED")
    await engine.run_ddl('CREATE INDEX IF NOT EXISTS "crm_service_ticket_search_vector" ON "crm_service_ticket" '
                         "USING gin (search_vector)")
    await engine.run_ddl('DROP INDEX IF EXISTS "crm_service_ticket_fts"')


async def _backwards() -> None:
    from core.db import current, is_postgres

    engine = current()
    if is_postgres(engine):
        await engine.run_ddl('CREATE INDEX IF NOT EXISTS "crm_service_ticket_fts" ON "crm_service_ticket" '
                             "USING gin (to_tsvector('simple', search_text))")
        await engine.run_ddl('ALTER TABLE "crm_service_ticket" DROP COLUMN IF EXISTS search_vector')


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="crm_service", description=DESCRIPTION)
    manager.add_raw(_forwards)
    manager.add_raw_backwards(_backwards)
    return manager
