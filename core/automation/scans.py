"""Time-based triggers, evaluated in SQL: the records a rule reaches are selected by one query (its condition
compiled by :mod:`core.conditions`, plus what the trigger asks), in keyset batches; each batch inserts its runs
(unique keys: a rescan inserts nothing twice) and enqueues one job per :data:`RUN_BATCH` runs.

- ``time_after`` (N hours after a date or time field): the scan covers the moments between the last scan and
  now, so each value of the field fires once; a record whose date is moved into the past does not fire.
- ``idle`` (no activity for N hours): the record's own ``since`` column and its activities are older than N
  hours, and the rule has not acted on it since its last activity: once per idle spell.
- ``daily`` (every day at HH:MM, the site's time zone): every record matching the condition, once a day.

The kernel's schedule sends ``core.automation_tick`` every minute; the tick claims each due rule's window by
moving its ``scanned_until`` forward (a conditional update: of several schedulers, one wins) and enqueues the
scan in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from piccolo.columns import Date
from piccolo.columns.combination import WhereRaw
from piccolo.custom_types import Combinable
from piccolo.table import Table

from core import conditions, db
from core.automation import registry, runs
from core.automation.models import AutomationRule, AutomationRun
from core.automation.registry import Rule
from core.bulk import insert_rows
from core.hooks import AutomationModel
from core.jobs import enqueue

SCAN_BATCH = 10_000
INSERT_BATCH = 5000
RUN_BATCH = 1000
#: a time-based rule looks again at most this often
EVERY = dt.timedelta(seconds=55)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _zone() -> dt.tzinfo:
    from core.formatting import site_timezone, zone

    return zone(site_timezone())


def _aware(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    moment: dt.datetime = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def daily_moment(at: str, now: dt.datetime) -> dt.datetime:
    """Today's ``HH:MM`` in the site's time zone, as UTC."""
    hours, minutes = (int(p) for p in at.split(":"))
    local = now.astimezone(_zone())
    return local.replace(hour=hours, minute=minutes, second=0, microsecond=0).astimezone(dt.UTC)


def window(rule: Rule, scanned_until: dt.datetime | None, now: dt.datetime) -> tuple[dt.datetime, dt.datetime] | None:
    """The span a scan of ``rule`` covers now, or None when it is not due."""
    start = scanned_until or now
    if rule.trigger.type == "daily":
        moment = daily_moment(rule.trigger.at, now)
        return (start, moment) if now >= moment > start else None
    return (start, now) if now - start >= EVERY else None


def _quoted(table: type[Table], name: str) -> str:
    column = table._meta.get_column_by_name(name)
    return f'"{table._meta.tablename}"."{column._meta.db_column_name}"'


def _idle(am: AutomationModel, rule: Rule, cutoff: dt.datetime) -> Combinable:
    source = am.idle
    assert source is not None
    table = am.table
    pk = _quoted(table, table._meta.primary_key._meta.name)
    since = _quoted(table, source.since)
    clause: Combinable = table._meta.get_column_by_name(source.since) < cutoff
    activity_since = ""
    args: list[Any] = []
    if source.table is not None and source.times:
        act = source.table._meta.tablename
        link = source.table._meta.get_column_by_name(source.link)._meta.db_column_name
        times = [source.table._meta.get_column_by_name(t)._meta.db_column_name for t in source.times]
        recent = " OR ".join(f'"a1"."{t}" >= {{}}' for t in times)
        clause = clause & WhereRaw(f'NOT EXISTS (SELECT 1 FROM "{act}" AS "a1" WHERE "a1"."{link}" = {pk} '
                                   f"AND ({recent}))", *[cutoff] * len(times))
        later = " OR ".join(f'"a2"."{t}" > "x"."created_at"' for t in times)
        activity_since = (f' AND NOT EXISTS (SELECT 1 FROM "{act}" AS "a2" WHERE "a2"."{link}" = {pk} '
                          f"AND ({later}))")
    args.append(rule.id)
    # not when the rule acted on the record since it last moved (once per idle spell)
    return clause & WhereRaw(
        f'NOT EXISTS (SELECT 1 FROM "core_automation_run" AS "x" WHERE "x"."rule_id" = {{}} '
        f'AND "x"."record_id" = {pk} AND "x"."created_at" > {since}{activity_since})', *args)


def candidates(rule: Rule, am: AutomationModel, start: dt.datetime, end: dt.datetime, *,
               schema: conditions.Schema, access: Any = None) -> Combinable | None:
    """What a scan of ``rule`` over ``(start, end]`` selects: its condition and what its trigger asks."""
    table = am.table
    clauses: list[Combinable | None] = [conditions.to_where(rule.condition, schema, access)]
    trigger = rule.trigger
    try:
        archived = table._meta.get_column_by_name("is_archived")
        clauses.append(archived == False)  # noqa: E712  (Piccolo builds SQL from ==)
    except ValueError:
        pass
    if trigger.type == "time_after":
        column = table._meta.get_column_by_name(trigger.field)
        shift = dt.timedelta(hours=trigger.hours)
        low, high = start - shift, end - shift
        if isinstance(column, Date):
            zone = _zone()
            clauses.append((column > low.astimezone(zone).date()) & (column <= high.astimezone(zone).date()))
        else:
            clauses.append((column > low) & (column <= high))
    elif trigger.type == "idle":
        clauses.append(_idle(am, rule, end - dt.timedelta(hours=trigger.hours)))
    present = [c for c in clauses if c is not None]
    if not present:
        return None
    out = present[0]
    for other in present[1:]:
        out = out & other
    return out


def run_key(rule: Rule, record: dict[str, Any], end: dt.datetime) -> str:
    trigger = rule.trigger
    record_id = record["id"]
    if trigger.type == "time_after":
        value: Any = record.get(trigger.field)
        stamp = value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else str(value)
        return f"{rule.id}:at:{record_id}:{stamp}"[:200]
    if trigger.type == "daily":
        return f"{rule.id}:daily:{record_id}:{end.astimezone(_zone()).date().isoformat()}"
    return f"{rule.id}:idle:{record_id}:{end.isoformat()}"


async def tick(now: dt.datetime | None = None) -> list[int]:
    """Claim and enqueue the scan of every time-based rule that is due; re-send runs a lost job left behind.
    Returns the rules whose scan was enqueued."""
    now = now or _now()
    compiled = await registry.rules(force=True)
    fired: list[int] = []
    rows = await AutomationRule.select(AutomationRule.id, AutomationRule.scanned_until).where(
        AutomationRule.is_active == True)  # noqa: E712
    for row in rows:
        rule = compiled.get(int(row["id"]))
        if rule is None or rule.error or not rule.trigger.is_timed:
            continue
        previous = _aware(row["scanned_until"])
        if previous is None:  # enabled without a start (seeded by data): it looks from now on
            await AutomationRule.update({AutomationRule.scanned_until: now}).where(
                (AutomationRule.id == rule.id) & AutomationRule.scanned_until.is_null())
            continue
        span = window(rule, previous, now)
        if span is None:
            continue
        async with db.atomic():
            won = await AutomationRule.update({AutomationRule.scanned_until: span[1]}).where(
                (AutomationRule.id == rule.id) & (AutomationRule.scanned_until == previous)).returning(
                AutomationRule.id)
            if not won:
                continue
            await enqueue("core.automation_scan", rule_id=rule.id, start=span[0].isoformat(),
                          end=span[1].isoformat(), dedup_key=f"automation-scan:{rule.id}:{span[1].isoformat()}")
        fired.append(rule.id)
    lost = await runs.stale()
    for first in range(0, len(lost), RUN_BATCH):
        chunk = lost[first:first + RUN_BATCH]
        await enqueue("core.automation_run", run_ids=chunk,
                      dedup_key=f"automation-rerun:{chunk[0]}:{int(now.timestamp()) // 60}")
    return fired


async def scan(rule_id: int, start: dt.datetime, end: dt.datetime) -> int:
    """Insert the runs of ``rule_id`` for the records its trigger reaches in ``(start, end]``; enqueue them.
    Returns how many runs were inserted."""
    rule = (await registry.rules(force=True)).get(rule_id)
    if rule is None or not rule.is_active or rule.error or not rule.trigger.is_timed:
        return 0
    am = await registry.model(rule.model)
    schema = await registry.schema(rule.model)
    if am is None or schema is None:
        return 0
    where = candidates(rule, am, start, end, schema=schema)
    table = am.table
    pk = table._meta.primary_key
    columns = [pk] + ([table._meta.get_column_by_name(rule.trigger.field)] if rule.trigger.type == "time_after"
                      else [])
    # read first (no write lock held while the query runs), then insert the runs in a few large transactions
    found: list[dict[str, Any]] = []
    last = 0
    while True:
        query = table.select(*columns).where(pk > last)
        if where is not None:
            query = query.where(where)
        rows = await query.order_by(pk).limit(SCAN_BATCH)
        found += [dict(r) for r in rows]
        if len(rows) < SCAN_BATCH:
            break
        last = int(rows[-1][pk._meta.name])
    inserted = 0
    for start_at in range(0, len(found), INSERT_BATCH):
        async with db.atomic():
            ids = await _insert_runs(rule, found[start_at:start_at + INSERT_BATCH], end)
            for first in range(0, len(ids), RUN_BATCH):
                chunk = ids[first:first + RUN_BATCH]
                await enqueue("core.automation_run", run_ids=chunk, dedup_key=f"automation-runs:{chunk[0]}")
        inserted += len(ids)
    return inserted


async def _insert_runs(rule: Rule, records: list[dict[str, Any]], end: dt.datetime) -> list[int]:
    """Insert a run per record (what exists already is left alone); the ids of those inserted."""
    now = _now()
    # the other columns take their defaults in the database (pending, step 0, empty JSON): fewer values to bind
    return await insert_rows(AutomationRun, [
        {"rule_id": rule.id, "key": run_key(rule, rec, end), "model": rule.model, "record_id": int(rec["id"]),
         "trigger": rule.trigger.type, "created_at": now} for rec in records], skip_conflicts_on="key")
