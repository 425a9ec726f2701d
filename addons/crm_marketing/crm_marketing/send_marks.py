"""The state writes of a batch run, one a message: the previous message ``sent`` and the next ``sending``.

A message is marked ``sending`` (committed) before its content goes to the SMTP server: that mark is what lets a
killed worker's untried recipients be sent later without mailing anyone twice, so it cannot wait for a group.
Its cost is therefore the send's floor, and on PostgreSQL it is one statement on a connection the run holds:
the previous message's ``sent`` rides in the same statement (a CTE), without the WAL flush wait
(``synchronous_commit`` off for that connection only: a killed worker loses nothing committed; a PostgreSQL
crash within a fraction of a second could lose the last marks, and then those recipients are ``unknown`` or
sent again — never lost). SQLite (one process, tests) takes the ORM path in a transaction.
"""

from __future__ import annotations

import datetime as dt
from types import TracebackType
from typing import Any

from core import db
from crm_marketing.models import CampaignRecipient

_TABLE = '"crm_marketing_campaign_recipient"'
_SENT = (
    f'UPDATE {_TABLE} SET "state" = \'sent\', "sent_at" = $1, "error" = \'\' '
    "WHERE \"id\" = $2 AND \"state\" IN ('sending', 'unknown')"
)
_SENDING = (
    f'UPDATE {_TABLE} SET "state" = \'sending\', "attempts" = "attempts" + 1 '
    'WHERE "id" = $3 AND "state" = \'queued\' AND "next_try_at" = $4 RETURNING "attempts"'
)
_BOTH = f"WITH done AS ({_SENT}) {_SENDING}"
_ONLY_SENDING = _SENDING.replace("$3", "$1").replace("$4", "$2")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Marks:
    """``async with Marks(lease) as marks: await marks.advance(done, row_id)`` for one run of a batch, whose
    claim is ``lease`` (only the claim's holder may mark a row ``sending``: the fence)."""

    def __init__(self, lease: dt.datetime) -> None:
        self.lease = lease
        self._conn: Any = None
        self._pool: Any = None

    async def __aenter__(self) -> Marks:
        engine: Any = db.current()
        if db.is_postgres(engine):
            self._pool = engine.pool  # this loop's pool (a worker's), else a connection of its own
            self._conn = await (self._pool.acquire() if self._pool else engine.get_new_connection())
            await self._conn.execute("SET synchronous_commit TO OFF")  # RESET ALL when it goes back to the pool
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._pool is not None:
            await self._pool.release(conn)
        else:
            await conn.close()

    async def advance(self, done: int | None, row_id: int | None) -> int | None:
        """In one commit: ``done`` sent (the SMTP server accepted it) and ``row_id`` ``sending`` if this run still
        holds it; the row's attempts, or None when a later run took it over (or ``row_id`` is None)."""
        if self._conn is not None:
            if row_id is None:
                if done is not None:
                    await self._conn.execute(_SENT, _now(), done)
                return None
            if done is None:
                rows = await self._conn.fetch(_ONLY_SENDING, row_id, self.lease)
            else:
                rows = await self._conn.fetch(_BOTH, _now(), done, row_id, self.lease)
            return int(rows[0]["attempts"]) if rows else None
        return await self._orm_advance(done, row_id)

    async def _orm_advance(self, done: int | None, row_id: int | None) -> int | None:
        attempts = None
        async with db.atomic():
            if done is not None:
                await CampaignRecipient.update(
                    {CampaignRecipient.state: "sent", CampaignRecipient.sent_at: _now(), CampaignRecipient.error: ""}
                ).where((CampaignRecipient.id == done) & CampaignRecipient.state.is_in(["sending", "unknown"]))
            if row_id is not None:
                rows = (
                    await CampaignRecipient.update(
                        {CampaignRecipient.state: "sending", CampaignRecipient.attempts: CampaignRecipient.attempts + 1}
                    )
                    .where(
                        (CampaignRecipient.id == row_id)
                        & (CampaignRecipient.state == "queued")
                        & (CampaignRecipient.next_try_at == self.lease)
                    )
                    .returning(CampaignRecipient.attempts)
                )
                attempts = int(rows[0]["attempts"]) if rows else None
        return attempts
