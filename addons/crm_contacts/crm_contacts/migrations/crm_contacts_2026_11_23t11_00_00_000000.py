"""Indexes for lists and search on large bases (measured with bench/contacts_list.py on 1M people).

- Lists are newest first and often filtered by stage. ``created_at`` alone made PostgreSQL walk the whole
  date order and fetch every row to test its stage; ``(created_at, stage)`` tests the stage in the index
  and still serves everything the old index did (it leads with ``created_at``), so it replaces it.
- Short Chinese terms (PostgreSQL only): pg_trgm needs three characters, so ``LIKE '%王芳%'`` (two) could not
  use the trigram index and scanned the table. ``search_grams`` is a stored generated column holding every
  CJK character and pair of adjacent characters of ``search_text`` as a word (`` 王 王芳 芳 ``); padded as
  words they yield trigrams, so ``search_grams LIKE '% 王芳 %'`` is served by its own trigram index. The
  database derives it, so it never drifts from ``search_text`` (erasure included); the Piccolo model does
  not list it. SQLite keeps scanning ``search_text`` (see docs/contacts.md).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Timestamptz

ID = "2026-11-23T11:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "contacts: (created_at, stage) list index, CJK search grams"

TABLES = {"Person": "crm_contacts_person", "Organization": "crm_contacts_organization"}
CJK = r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+"  # the same ranges as listing.SHORT_CJK

GRAMS = rf"""
CREATE OR REPLACE FUNCTION crm_contacts_search_grams(t text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  run text;
  out text := '';
BEGIN
  FOR run IN SELECT (regexp_matches(t, '{CJK}', 'g'))[1] LOOP
    FOR i IN 1..length(run) LOOP
      out := out || ' ' || substr(run, i, 1);
      IF i < length(run) THEN
        out := out || ' ' || substr(run, i, 2);
      END IF;
    END LOOP;
  END LOOP;
  RETURN out || ' ';
END $$"""


async def _forwards() -> None:
    from core.db import current, is_postgres

    engine = current()
    for table in TABLES.values():
        await engine.run_ddl(f'CREATE INDEX IF NOT EXISTS "{table}_created_stage" ON "{table}" (created_at, stage)')
    if not is_postgres(engine):
        return
    await engine.run_ddl(GRAMS)
    for table in TABLES.values():
        await engine.run_ddl(f'ALTER TABLE "{table}" ADD COLUMN IF NOT EXISTS search_grams text '
                             "GENERATED ALWAYS AS (crm_contacts_search_grams(search_text)) STORED")
        await engine.run_ddl(f'CREATE INDEX IF NOT EXISTS "{table}_search_grams" ON "{table}" '
                             "USING gin (search_grams gin_trgm_ops)")


async def _backwards() -> None:
    from core.db import current, is_postgres

    engine = current()
    for table in TABLES.values():
        await engine.run_ddl(f'DROP INDEX IF EXISTS "{table}_created_stage"')
        if is_postgres(engine):
            await engine.run_ddl(f'ALTER TABLE "{table}" DROP COLUMN IF EXISTS search_grams')
    if is_postgres(engine):
        await engine.run_ddl("DROP FUNCTION IF EXISTS crm_contacts_search_grams(text)")


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="crm_contacts", description=DESCRIPTION)
    for class_name, tablename in TABLES.items():
        # the single-column index is dropped: (created_at, stage) leads with the same column
        manager.alter_column(table_class_name=class_name, tablename=tablename, column_name="created_at",
                             db_column_name="created_at", params={"index": False}, old_params={"index": True},
                             column_class=Timestamptz, old_column_class=Timestamptz)
    manager.add_raw(_forwards)
    manager.add_raw_backwards(_backwards)
    return manager
