"""Schema pieces Piccolo's auto-migrations cannot express on both SQLite and PostgreSQL.

Piccolo's ``Unique`` constraint fails on SQLite (``near "CONSTRAINT": syntax error``), so composite unique
keys are unique indexes, added by a migration with ``manager.add_raw(unique_index(...))``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


def unique_index(table: str, *columns: str) -> Callable[[], Awaitable[None]]:
    """A migration step creating a unique index on ``table(columns)`` (identifiers only, checked)."""
    for name in (table, *columns):
        if not _IDENT.match(name):
            raise ValueError(f"not a plain identifier: {name!r}")
    index = f"{table}_{'_'.join(columns)}_key"

    cols = ", ".join(f'"{c}"' for c in columns)

    async def run() -> None:
        from core.db import current

        await current().run_ddl(
            f'CREATE UNIQUE INDEX IF NOT EXISTS "{index}" ON "{table}" ({cols})')

    return run
