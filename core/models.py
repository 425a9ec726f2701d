"""The kernel's own tables: installed addons, external ids, the outbox, schedule ticks, idempotency keys."""

from __future__ import annotations

from piccolo.columns import JSON, BigInt, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class InstalledAddon(Table, tablename="core_addon"):
    """What this database has installed; present code and installed state are two different things."""

    id: Serial
    name = Varchar(length=100, unique=True)
    version = Varchar(length=40)
    state = Varchar(length=20, default="installed")  # installed | uninstalled
    installed_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class ExternalId(Table, tablename="core_external_id"):
    """``addon.key`` → a row created from an addon's data file, so upgrades update instead of duplicating."""

    id: Serial
    addon = Varchar(length=100, index=True)
    key = Varchar(length=200)
    table_name = Varchar(length=100)
    record_id = BigInt()


class Outbox(Table, tablename="core_outbox"):
    """Work requested by a committed transaction; the source of truth when a broker loses messages."""

    id: Serial
    actor = Varchar(length=200, index=True)
    payload = JSON(default="{}")
    dedup_key = Varchar(length=200, null=True, default=None, unique=True)
    state = Varchar(length=20, default="pending", index=True)  # pending | running | done | failed
    attempts = Integer(default=0)
    lease_until = Timestamptz(null=True, default=None)
    last_error = Text(default="")
    created_at = Timestamptz(default=TimestamptzNow())
    dispatched_at = Timestamptz(null=True, default=None)
    done_at = Timestamptz(null=True, default=None)
    #: the user whose action asked for this work: told (with the admins) if it fails for good
    requested_by = BigInt(null=True, default=None)


class ScheduleTick(Table, tablename="core_schedule_tick"):
    """One row per (schedule, time slot): the unique key makes exactly one scheduler fire each tick."""

    id: Serial
    key = Varchar(length=250, unique=True)
    fired_at = Timestamptz(default=TimestamptzNow())


class IdempotencyKey(Table, tablename="core_idempotency_key"):
    """A replayable response for an unsafe API call made with an ``Idempotency-Key`` header."""

    id: Serial
    scope = Varchar(length=300, unique=True)  # user id + key
    request_hash = Varchar(length=64)
    status = Integer()
    body = Text()
    created_at = Timestamptz(default=TimestamptzNow())


class Notification(Table, tablename="core_notification"):
    """The in-app notification list of one user (the bell); ``dedup_key`` makes a notification idempotent, so a
    job that runs twice tells nobody twice."""

    id: Serial
    user_id = BigInt(index=True)
    title = Varchar(length=300)
    body = Text(default="")
    url = Varchar(length=500, default="")
    kind = Varchar(length=40, default="info")
    source = Varchar(length=100, default="")
    dedup_key = Varchar(length=200, null=True, default=None, unique=True)
    created_at = Timestamptz(default=TimestamptzNow())
    read_at = Timestamptz(null=True, default=None, index=True)


TABLES: tuple[type[Table], ...] = (InstalledAddon, ExternalId, Outbox, ScheduleTick, IdempotencyKey, Notification)
