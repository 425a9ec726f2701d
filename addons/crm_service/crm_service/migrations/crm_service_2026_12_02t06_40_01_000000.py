"""Ticket search by words: existing tickets get their ``search_text`` (jieba-segmented subject and description,
as ``ticket_search.text_of`` writes it on every save), and PostgreSQL a GIN full-text index over it; the
trigram index on subjects, which a two-character Chinese word could not use, goes."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns import Serial, Text, Varchar
from piccolo.table import Table

ID = "2026-12-02T06:40:01:000000"
VERSION = "1.38.0"
DESCRIPTION = "ticket full-text search: backfill and index"
BATCH = 2000


class Ticket(Table, tablename="crm_service_ticket", schema=None):
    id = Serial()
    subject = Varchar(length=300)
    description = Text(default="")
    search_text = Text(default="")


async def _backfill() -> None:
    from crm_service.ticket_search import text_of

    after = 0
    while True:
        rows = await Ticket.select(Ticket.id, Ticket.subject, Ticket.description).where(
            Ticket.id > after).order_by(Ticket.id).limit(BATCH)
        if not rows:
            return
        for r in rows:
            await Ticket.update({Ticket.search_text: text_of(r["subject"], r["description"])}).where(
                Ticket.id == r["id"])
        after = rows[-1]["id"]


async def _forwards() -> None:
    from core.db import current, is_postgres

    await _backfill()
    engine = current()
    if not is_postgres(engine):
        return
    await engine.run_ddl('CREATE INDEX IF NOT EXISTS "crm_service_ticket_fts" ON "crm_service_ticket" '
                         "USING gin (to_tsvector('simple', search_text))")
    await engine.run_ddl('DROP INDEX IF EXISTS "crm_service_ticket_subject_trgm"')


async def _backwards() -> None:
    from core.db import current, is_postgres

    engine = current()
    if is_postgres(engine):
        await engine.run_ddl('DROP INDEX IF EXISTS "crm_service_ticket_fts"')
        await engine.run_ddl('CREATE INDEX IF NOT EXISTS "crm_service_ticket_subject_trgm" ON "crm_service_ticket" '
                             "USING gin (subject gin_trgm_ops)")


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="crm_service", description=DESCRIPTION)
    manager.add_raw(_forwards)
    manager.add_raw_backwards(_backwards)
    return manager
