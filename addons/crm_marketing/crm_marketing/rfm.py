"""RFM scores and value tiers, computed by the database.

A rebuild is one transaction: a ``DELETE`` of the scores and one ``INSERT … SELECT`` that groups the confirmed
orders (in :data:`orders.CURRENCY`) per customer, ranks them with ``NTILE(5)`` window functions and gives each
the first active tier (by ``sequence``) whose rule holds, in a ``CASE``. No Python loop over customers, on
SQLite and PostgreSQL alike. Orders come from the kernel's dataset ``crm_sales.orders``
(``crm_marketing.orders``); without it every customer simply has no score.

Quintiles: 5 is best — the most recent last order, the most orders, the most money. ``NTILE`` cuts the ranked
list into five equal parts, so equal values at a boundary are split; ties are ranked by another measure then
by person id (recency by frequency, frequency by money, money by frequency), so a rebuild is deterministic.
Tier rules are the kernel's condition language over :func:`tier_schema` (``r``, ``f``, ``m``, ``orders``,
``monetary``, ``recency_days``, ``last_order_at``).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from crm_contacts.api import PERSON_TABLE
from piccolo.columns import Integer, Numeric, SmallInt, Timestamptz
from piccolo.table import Table

from core import conditions, db
from core.conditions import Node, Schema
from core.errors import ValidationError
from core.i18n import N_
from crm_marketing import orders
from crm_marketing.models import RfmBuild, RfmScore, ValueTier

MODEL = "crm_marketing.rfm_score"
RULE_FIELDS = ("r", "f", "m", "orders", "monetary", "recency_days", "last_order_at")
LABELS = {
    "r": N_("Recency score (1–5)"),
    "f": N_("Frequency score (1–5)"),
    "m": N_("Monetary score (1–5)"),
    "orders": N_("Orders"),
    "monetary": N_("Total spent"),
    "recency_days": N_("Days since the last order"),
    "last_order_at": N_("Last order"),
}
_SCORE = '"crm_marketing_rfm_score"'


class Scored(Table, tablename="crm_marketing_rfm_scored"):
    """Not a table: the name of the scored rows inside a rebuild's statement, whose columns tier rules name
    (the scores table itself cannot be referenced inside its own INSERT on PostgreSQL)."""

    last_order_at = Timestamptz()
    recency_days = Integer()
    orders = Integer()
    monetary = Numeric(digits=(16, 2))
    r = SmallInt()
    f = SmallInt()
    m = SmallInt()


def tier_schema() -> Schema:
    return conditions.schema_for(MODEL, Scored, RULE_FIELDS, labels=LABELS, custom=False)


def check_rule(raw: Any, path: str = "rule") -> Node:
    """A tier rule (decoded JSON) checked: 422 naming the path of an unknown field or a bad value."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise ValidationError({path: N_('must be JSON: {"all": [...]}')}) from None
    return conditions.parse(raw, tier_schema(), path=path)


def _days(now_param: str) -> str:
    """Whole days from the last order to the rebuild, in this database's dialect."""
    if db.is_postgres():
        return f"CAST(FLOOR(EXTRACT(EPOCH FROM ({now_param} - a.last_at)) / 86400) AS INTEGER)"
    return f"CAST(julianday({now_param}) - julianday(a.last_at) AS INTEGER)"


def _insert_sql(src: orders.Source, tier_case: str, into: str = _SCORE) -> str:
    """The one statement of a rebuild. The scored rows are a subquery named as :class:`Scored`, so the tier
    rules, compiled by the kernel against its columns, pick each row's tier in the same statement.
    Parameters: the tier CASE's, then the rebuild's time, the currency and the live-people clause."""
    now = "CAST({} AS TIMESTAMPTZ)" if db.is_postgres() else "{}"
    columns = '"person", "last_order_at", "recency_days", "orders", "monetary", "r", "f", "m"'
    return (
        f'INSERT INTO {into} ({columns}, "tier") SELECT {columns}, {tier_case} FROM ('
        f"SELECT a.person AS person, a.last_at AS last_order_at, {_days(now)} AS recency_days, a.n AS orders, "
        "a.total AS monetary, "
        "NTILE(5) OVER (ORDER BY a.last_at, a.n, a.person) AS r, "
        "NTILE(5) OVER (ORDER BY a.n, a.total, a.person) AS f, "
        "NTILE(5) OVER (ORDER BY a.total, a.n, a.person) AS m "
        'FROM (SELECT o."person" AS person, MAX(o."confirmed_at") AS last_at, COUNT(*) AS n, '
        'SUM(o."total") AS total '
        f'FROM "{src.orders}" o WHERE o."state" = \'confirmed\' AND o."currency" = {{}} '
        'AND o."person" IS NOT NULL GROUP BY o."person") a '
        f'JOIN "{PERSON_TABLE}" ON "{PERSON_TABLE}"."id" = a.person WHERE {{}}) AS "{Scored._meta.tablename}"'
    )


async def _tier_case() -> tuple[str, list[Any]]:
    """``CASE WHEN <rule> THEN <key> … END`` over the active tiers by sequence (the first that holds wins)."""
    tiers = await ValueTier.select(ValueTier.key, ValueTier.rule).where(ValueTier.is_active.eq(True)).order_by(
        ValueTier.sequence
    ).order_by(ValueTier.id)
    sch = tier_schema()
    parts: list[str] = []
    args: list[Any] = []
    for tier in tiers:
        clause = conditions.to_where(check_rule(tier["rule"]), sch)
        if clause is None:  # a rule that always holds (the catch-all tier)
            parts.append("WHEN 1 = 1 THEN {}")
            args.append(tier["key"])
        else:
            parts.append("WHEN {} THEN {}")
            args.extend([clause.querystring, tier["key"]])
    return ("CASE " + " ".join(parts) + " END", args) if parts else ("NULL", [])


async def _live_clause() -> Any:
    from crm_marketing import segments

    return segments._live(await segments.schema()).querystring


async def rebuild() -> dict[str, Any]:
    """Recompute every customer's scores and tier; when, how long, how many (also kept as an ``RfmBuild``)."""
    src = await orders.source()
    live = await _live_clause()
    started = time.perf_counter()
    now = dt.datetime.now(dt.UTC)
    tier_case, tier_args = await _tier_case()
    async with db.atomic():
        if db.is_postgres():  # the three window sorts and the grouping stay in memory (4 MB spills at 100k)
            await RfmScore.raw("SET LOCAL work_mem = '64MB'")
            await RfmScore.raw(orders.GROUPED_BY_HASH)
            await _swap_in(src, tier_case, [*tier_args, now, orders.CURRENCY, live])
        else:
            await RfmScore.delete(force=True)
            if src is not None:
                await RfmScore.raw(_insert_sql(src, tier_case), *tier_args, now, orders.CURRENCY, live)
        tiers = {
            row["tier"] or "": int(row["n"])
            for row in await RfmScore.raw(f'SELECT "tier", COUNT(*) AS n FROM {_SCORE} GROUP BY "tier"')
        }
        customers = sum(tiers.values())
        ms = int((time.perf_counter() - started) * 1000)
        await RfmBuild.insert(
            RfmBuild(built_at=now, build_ms=ms, customers=customers, currency=orders.CURRENCY)
        )
    return {"built_at": now, "ms": ms, "customers": customers, "tiers": tiers, "orders": src is not None}


_NEXT = "crm_marketing_rfm_score_next"
#: the scores table's keys and indexes as its migrations made them (test_rfm checks a rebuild keeps them equal)
_KEYS = (
    ("crm_marketing_rfm_score_pkey", 'ALTER TABLE "{t}" ADD CONSTRAINT "{n}" PRIMARY KEY ("id")'),
    ("crm_marketing_rfm_score_person_key", 'ALTER TABLE "{t}" ADD CONSTRAINT "{n}" UNIQUE ("person")'),
    ("crm_marketing_rfm_score_tier", 'CREATE INDEX "{n}" ON "{t}" USING btree ("tier")'),
)


async def _swap_in(src: orders.Source | None, tier_case: str, args: list[Any]) -> None:
    """PostgreSQL: the scores written into a fresh table, indexed once filled, swapped in for the old one (the
    same transaction, so readers see the old scores or the new, never none). Deleting a million rows and inserting
    a million through three indexes (each insert checking the unique key past the dead rows) was most of a
    rebuild at 1M customers (issue 13); building an index from a filled table is one sort. A second rebuild waits
    for the first (transaction-level advisory lock), then replaces its table in turn."""
    await RfmScore.raw("SELECT pg_advisory_xact_lock(hashtext('crm_marketing.rfm_rebuild'))")
    await RfmScore.raw(f'CREATE TABLE "{_NEXT}" (LIKE {_SCORE} INCLUDING DEFAULTS)')
    if src is not None:
        await RfmScore.raw(_insert_sql(src, tier_case, into=f'"{_NEXT}"'), *args)
    for name, ddl in _KEYS:
        await RfmScore.raw(ddl.format(t=_NEXT, n=name.replace("crm_marketing_rfm_score", _NEXT, 1)))
    # the id sequence belongs to the old table's column: dropping that table would drop it too
    await RfmScore.raw(f"ALTER SEQUENCE \"crm_marketing_rfm_score_id_seq\" OWNED BY \"{_NEXT}\".\"id\"")
    await RfmScore.raw(f"DROP TABLE {_SCORE}")
    await RfmScore.raw(f'ALTER TABLE "{_NEXT}" RENAME TO {_SCORE}')
    for name, ddl in _KEYS:
        kind = "INDEX" if ddl.startswith("CREATE INDEX") else "CONSTRAINT"
        old = name.replace("crm_marketing_rfm_score", _NEXT, 1)
        await RfmScore.raw(
            f'ALTER INDEX "{old}" RENAME TO "{name}"' if kind == "INDEX"
            else f'ALTER TABLE {_SCORE} RENAME CONSTRAINT "{old}" TO "{name}"'
        )
    await RfmScore.raw(f"ANALYZE {_SCORE}")  # a new table has no statistics: value-tier filters plan on them


async def last_build() -> dict[str, Any] | None:
    row = await RfmBuild.select().order_by(RfmBuild.id, ascending=False).first()
    return dict(row) if row else None


async def of_person(person_id: int) -> dict[str, Any] | None:
    """One customer's scores and tier (with the tier's names), or None when they have no score."""
    row = await RfmScore.select().where(RfmScore.person == person_id).first()
    if row is None:
        return None
    out = dict(row)
    names = ValueTier.select(ValueTier.name_en, ValueTier.name_zh)
    tier = await names.where(ValueTier.key == (row["tier"] or "")).first()
    out["tier_name_en"] = tier["name_en"] if tier else ""
    out["tier_name_zh"] = tier["name_zh"] if tier else ""
    out["currency"] = orders.CURRENCY
    return out


async def tier_keys() -> tuple[str, ...]:
    return tuple(r["key"] for r in await ValueTier.select(ValueTier.key).order_by(ValueTier.sequence))
