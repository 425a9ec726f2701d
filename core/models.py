"""The kernel's own tables: installed addons, external ids, the outbox, schedule ticks, idempotency keys,
notifications, custom field definitions and form layouts."""

from __future__ import annotations

from piccolo.columns import JSON, BigInt, Boolean, Integer, Serial, Text, Timestamptz, Varchar
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


class CustomField(Table, tablename="core_custom_field"):
    """A field an admin added to an extensible model (``core.customfields``): its values live in the model's
    JSON column under ``key``. ``(model, key)`` is unique (an index of the migration); ``kind`` and ``key``
    never change once created. ``min_value``/``max_value`` are text read by the kind (a number, a date…);
    ``rules`` maps a role to ``hidden``, ``masked`` or ``readonly``. Archived: values kept, shown nowhere."""

    id: Serial
    model = Varchar(length=100, index=True)
    key = Varchar(length=40)
    kind = Varchar(length=20)
    label_en = Varchar(length=100, default="")
    label_zh = Varchar(length=100, default="")
    help_en = Varchar(length=300, default="")
    help_zh = Varchar(length=300, default="")
    options = JSON(default="[]")  # [{"key", "en", "zh"}] for choice / choices
    is_required = Boolean(default=False)
    default = JSON(default="null")
    min_value = Varchar(length=40, default="")
    max_value = Varchar(length=40, default="")
    pattern = Varchar(length=200, default="")
    max_length = Integer(null=True, default=None)
    target = Varchar(length=100, default="")  # the model a link points at
    currency = Varchar(length=3, default="")  # a money field's default currency
    is_filterable = Boolean(default=False)
    is_listed = Boolean(default=False)
    is_searchable = Boolean(default=False)
    rules = JSON(default="{}")
    sequence = Integer(default=100)
    is_archived = Boolean(default=False)
    version = Integer(default=1)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class FormLayout(Table, tablename="core_form_layout"):
    """How the form of ``model`` is laid out: ``sections`` ``[{"key", "en", "zh", "fields": [...]}]`` in order,
    the fields ``required`` on create and those that come ``later`` (left off the create form)."""

    id: Serial
    model = Varchar(length=100, unique=True)
    sections = JSON(default="[]")
    required = JSON(default="[]")
    later = JSON(default="[]")
    version = Integer(default=1)
    updated_at = Timestamptz(default=TimestamptzNow())


TABLES: tuple[type[Table], ...] = (InstalledAddon, ExternalId, Outbox, ScheduleTick, IdempotencyKey, Notification,
                                   CustomField, FormLayout)
