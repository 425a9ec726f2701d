"""The security generation: one counter row that triggers bump in the same transaction as any change to users,
roles, custom roles, teams and team members, so every worker's principal cache (core.security.principal)
knows within one request that what it holds is stale — whoever wrote the change (admin pages, CLI, SQL).

API tokens and sessions need no trigger: their row is read on every request, with the generation."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-12-02T17:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "security generation counter and its triggers"

TABLE = ("CREATE TABLE IF NOT EXISTS core_security_generation "
         "(id INTEGER PRIMARY KEY, value BIGINT NOT NULL DEFAULT 0)")
ROW = "INSERT INTO core_security_generation (id, value) VALUES (1, 0) ON CONFLICT (id) DO NOTHING"
BUMP = "UPDATE core_security_generation SET value = value + 1 WHERE id = 1"
#: (table, events): the login time and password hash are no part of a principal, so they bump nothing
WATCHED = (
    ("core_user", ("UPDATE OF login, name, language, timezone, is_active", "DELETE")),
    ("core_user_role", ("INSERT", "UPDATE", "DELETE")),
    ("core_role", ("INSERT", "UPDATE", "DELETE")),
    ("core_team", ("INSERT", "UPDATE", "DELETE")),
    ("core_team_member", ("INSERT", "UPDATE", "DELETE")),
)
PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION core_security_generation_bump() RETURNS trigger AS $$
BEGIN
    {BUMP};
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""


def _suffix(event: str) -> str:
    return event.split()[0].lower()


async def install() -> None:
    from core.db import current, is_postgres

    engine = current()
    await engine.run_ddl(TABLE)
    await engine.run_ddl(ROW)
    if is_postgres(engine):
        await engine.run_ddl(PG_FUNCTION)
    for table, events in WATCHED:
        for event in events:
            name = f"{table}_security_generation_{_suffix(event)}"
            if is_postgres(engine):
                await engine.run_ddl(f"DROP TRIGGER IF EXISTS {name} ON {table}")
                await engine.run_ddl(f"CREATE TRIGGER {name} AFTER {event} ON {table} "
                                     "FOR EACH STATEMENT EXECUTE FUNCTION core_security_generation_bump()")
            else:
                await engine.run_ddl(f"CREATE TRIGGER IF NOT EXISTS {name} AFTER {event} ON {table} "
                                     f"BEGIN {BUMP}; END")


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="core", description=DESCRIPTION)
    manager.add_raw(install)
    return manager
