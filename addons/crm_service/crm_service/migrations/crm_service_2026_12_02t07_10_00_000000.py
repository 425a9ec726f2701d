"""Ticket search statistics (PostgreSQL only; measured with bench/service_desk.py on 1M tickets).

With the default statistics target the planner keeps only the few most frequent words of ``search_vector``
and guesses every other word matches 0.5 % of the tickets: it then walks all tickets newest first hoping to
meet 50 matches soon, and a rare word ("耳机", one ticket in 10,000) or an absent one read the whole table
(1.5-2 s). Sampling 1000 (ten thousand words kept) gives rare words their real frequency: the GIN index is
used for them (≈ 25 ms), the newest-first walk still for frequent ones (≈ 2 ms)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-12-02T07:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "ticket search: statistics on search_vector"


async def _forwards() -> None:
    from core.db import current, is_postgres

    engine = current()
    if is_postgres(engine):
        await engine.run_ddl('ALTER TABLE "crm_service_ticket" ALTER COLUMN search_vector SET STATISTICS 1000')
        await engine.run_ddl('ANALYZE "crm_service_ticket"')


async def _backwards() -> None:
    from core.db import current, is_postgres

    engine = current()
    if is_postgres(engine):
        await engine.run_ddl('ALTER TABLE "crm_service_ticket" ALTER COLUMN search_vector SET STATISTICS -1')


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="crm_service", description=DESCRIPTION)
    manager.add_raw(_forwards)
    manager.add_raw_backwards(_backwards)
    return manager
