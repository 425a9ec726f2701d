"""The audit log is append-only in the database itself: UPDATE, DELETE (and TRUNCATE) are refused by triggers."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-23T12:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "append-only audit log"

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION core_audit_log_refuse() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'core_audit_log is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql
"""
PG_TRIGGERS = (
    "DROP TRIGGER IF EXISTS core_audit_log_append_only ON core_audit_log",
    "CREATE TRIGGER core_audit_log_append_only BEFORE UPDATE OR DELETE ON core_audit_log "
    "FOR EACH ROW EXECUTE FUNCTION core_audit_log_refuse()",
    "DROP TRIGGER IF EXISTS core_audit_log_no_truncate ON core_audit_log",
    "CREATE TRIGGER core_audit_log_no_truncate BEFORE TRUNCATE ON core_audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION core_audit_log_refuse()",
)
SQLITE_TRIGGERS = (
    "CREATE TRIGGER IF NOT EXISTS core_audit_log_no_update BEFORE UPDATE ON core_audit_log "
    "BEGIN SELECT RAISE(ABORT, 'core_audit_log is append-only (UPDATE refused)'); END",
    "CREATE TRIGGER IF NOT EXISTS core_audit_log_no_delete BEFORE DELETE ON core_audit_log "
    "BEGIN SELECT RAISE(ABORT, 'core_audit_log is append-only (DELETE refused)'); END",
)


async def install_triggers() -> None:
    from core.db import current, is_postgres

    engine = current()
    if is_postgres(engine):
        await engine.run_ddl(PG_FUNCTION)
        for sql in PG_TRIGGERS:
            await engine.run_ddl(sql)
    else:
        for sql in SQLITE_TRIGGERS:
            await engine.run_ddl(sql)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="core", description=DESCRIPTION)
    manager.add_raw(install_triggers)
    return manager
