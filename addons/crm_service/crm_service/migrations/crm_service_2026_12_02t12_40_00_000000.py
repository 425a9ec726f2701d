"""The per-sender rate cap of inbound mail without reading every mail ever fetched (SQLite and PostgreSQL).

``mail_in._rate_capped`` counts a sender's mails of the last hour for every mail fetched; with no index on
``sender`` that count read the whole ``crm_service_inbound_mail`` table each time, a cost growing with the
mailbox's history (measured in bench/service_mail.py: a fetcher makes 5-11 tickets a second on a loaded
machine). ``(sender, created_at)`` answers it from the index."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-12-02T12:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "inbound mail: index for the per-sender rate cap"


async def _forwards() -> None:
    from core.db import current

    await current().run_ddl('CREATE INDEX IF NOT EXISTS "crm_service_inbound_mail_sender_at" '
                            'ON "crm_service_inbound_mail" (sender, created_at)')


async def _backwards() -> None:
    from core.db import current

    await current().run_ddl('DROP INDEX IF EXISTS "crm_service_inbound_mail_sender_at"')


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="crm_service", description=DESCRIPTION)
    manager.add_raw(_forwards)
    manager.add_raw_backwards(_backwards)
    return manager
