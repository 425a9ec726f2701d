"""The tables of record timelines: notes people write on a record, and who follows a record.

Both name their record by ``model`` and ``record_id`` (any model a grant governs), like the audit log does, so
every addon's records get them with no table of their own.
"""

from __future__ import annotations

from piccolo.columns import JSON, BigInt, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class RecordNote(Table, tablename="core_record_note"):
    """A note on a record's timeline. ``mentions`` holds the ids of the users it mentions (``@login``), each
    told; ``url`` is the record's page the note was written on (the link in those notifications)."""

    id: Serial
    model = Varchar(length=100)
    record_id = BigInt(index=True)
    body = Text()
    author_id = BigInt(null=True, default=None)
    mentions = JSON(default="[]")
    url = Varchar(length=500, default="")
    created_at = Timestamptz(default=TimestamptzNow())


class RecordFollower(Table, tablename="core_record_follower"):
    """``user_id`` follows a record: told of its changes and of the notes written on it (``url``: its page)."""

    id: Serial
    model = Varchar(length=100)
    record_id = BigInt(index=True)
    user_id = BigInt(index=True)
    url = Varchar(length=500, default="")
    created_at = Timestamptz(default=TimestamptzNow())
