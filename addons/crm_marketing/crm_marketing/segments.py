"""Segments: a condition over people stored as data, and its members rebuilt set-based in SQL.

The condition is the kernel's condition language (``core.conditions``, docs/engines.md) over crm_contacts'
people as the automation registry describes them (their columns, custom fields and ``organization.*`` one hop
away), plus ``tags`` (the names of a person's tags: ``contains`` a tag, ``is_empty``). Region is
``province``/``city``, the lifecycle stage ``stage``.

A build is set-based in one transaction: no Python loop over contacts, whatever the segment's size. On PostgreSQL
one statement computes the members once and writes only the difference (leavers deleted, joiners inserted); on
SQLite one ``DELETE`` and one ``INSERT … SELECT``. Archived, merged and anonymized people are never members.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Sequence
from typing import Any

from crm_contacts.api import PERSON_MODEL, PERSON_TABLE
from piccolo.columns.combination import WhereRaw
from piccolo.custom_types import Combinable

from core import conditions, db
from core.conditions import Field, Group, Leaf, Node, Not, Schema
from core.errors import NotFound, ValidationError
from core.i18n import N_
from core.security.access import Access
from crm_marketing import orders, value_filters
from crm_marketing.models import Segment, SegmentMember

TAGS = "tags"
#: campaign behaviour, as lists of campaign ids (``contains`` one id as text, ``is_empty``): the campaigns a
#: person was sent, opened, clicked (scanner hits never count); and whether they unsubscribed
BEHAVIOUR = {
    "campaigns_received": 'SELECT r."person" FROM "crm_marketing_campaign_recipient" r '
    'WHERE r."state" = \'sent\' AND r."person" IS NOT NULL{match}',
    "campaigns_opened": 'SELECT r."person" FROM "crm_marketing_campaign_event" e JOIN '
    '"crm_marketing_campaign_recipient" r ON r."id" = e."recipient" '
    'WHERE e."kind" = \'open\' AND e."is_scanner" = {false} AND r."person" IS NOT NULL{match}',
    "campaigns_clicked": 'SELECT r."person" FROM "crm_marketing_campaign_event" e JOIN '
    '"crm_marketing_campaign_recipient" r ON r."id" = e."recipient" '
    'WHERE e."kind" = \'click\' AND e."is_scanner" = {false} AND r."person" IS NOT NULL{match}',
}
UNSUBSCRIBED = "unsubscribed"
#: what segments add to a person's fields (no field rule governs them)
EXTRA_FIELDS = frozenset({TAGS, *BEHAVIOUR, UNSUBSCRIBED, *value_filters.FIELDS})
_UNSUBSCRIBED_SQL = (
    f'"{PERSON_TABLE}"."id" IN (SELECT s."person" FROM "crm_marketing_suppression" s '
    'WHERE s."reason" = \'unsubscribed\' AND s."person" IS NOT NULL)'
)
# crm_contacts' tag tables, read by name in SQL (never imported: the contacts addon's public surface is its api)
_TAG_SQL = (
    '"{person}"."id" IN (SELECT "crm_contacts_person_tag"."person" FROM "crm_contacts_person_tag" '
    'JOIN "crm_contacts_tag" ON "crm_contacts_tag"."id" = "crm_contacts_person_tag"."tag" '
    "WHERE {match})"
).format(person=PERSON_TABLE, match="{match}")
_ANY_TAG_SQL = f'"{PERSON_TABLE}"."id" IN (SELECT "crm_contacts_person_tag"."person" FROM "crm_contacts_person_tag")'


async def schema() -> Schema:
    """What a segment condition may name: a person's fields (the automation registry's), plus ``tags``."""
    from core.automation import registry

    base = await registry.schema(PERSON_MODEL)
    if base is None:  # crm_contacts is a dependency: its automation models are always registered
        raise NotFound(f"{PERSON_MODEL} is not registered")
    fields = dict(base.fields)
    fields[TAGS] = Field(TAGS, "tags", N_("Tags"), column=TAGS)  # read by conditions.matches as record["tags"]
    for name, label in (
        ("campaigns_received", N_("Campaigns received")),
        ("campaigns_opened", N_("Campaigns opened")),
        ("campaigns_clicked", N_("Campaigns clicked")),
    ):
        fields[name] = Field(name, "tags", label, column=name)
    fields[UNSUBSCRIBED] = Field(UNSUBSCRIBED, "boolean", N_("Unsubscribed"), column=UNSUBSCRIBED)
    # value tier, and with crm_sales the order filters (value_filters)
    from crm_marketing import orders, rfm

    fields.update(value_filters.fields(await rfm.tier_keys(), await orders.source()))
    return Schema(base.model, base.table, fields, base.relations)


def _negate(clause: Combinable | None) -> Combinable:
    if clause is None:
        return WhereRaw("1 = 0")
    # a comparison with a missing value is false, so its negation is true (as in core.conditions.matches)
    return WhereRaw("NOT COALESCE(({}), FALSE)", clause.querystring)


def _tags(leaf: Leaf) -> Combinable:
    if leaf.op == "contains":
        return WhereRaw(_TAG_SQL.format(match='"crm_contacts_tag"."name" = {}'), leaf.value)
    if leaf.op == "is_empty":
        anything = WhereRaw(_ANY_TAG_SQL)
        return _negate(anything) if leaf.value else anything
    raise ValidationError({f"{leaf.path}.op": N_("tags take contains or is_empty")})


def _behaviour(leaf: Leaf) -> Combinable | None:
    if leaf.name == UNSUBSCRIBED:
        if leaf.op == "is_empty":  # a person has a yes or a no: never empty
            return WhereRaw("1 = 0") if leaf.value else None
        wanted = {bool(v) for v in leaf.value} if leaf.op == "in" else {bool(leaf.value)}
        if leaf.op == "ne":
            wanted = {not bool(leaf.value)}
        if wanted == {True, False}:
            return None
        clause = WhereRaw(_UNSUBSCRIBED_SQL)
        return clause if wanted == {True} else _negate(clause)
    sql = BEHAVIOUR[leaf.name]
    if leaf.op == "is_empty":
        anything = WhereRaw(f'"{PERSON_TABLE}"."id" IN ({sql.format(false="{}", match="")})', False)
        return _negate(anything) if leaf.value else anything
    if leaf.op != "contains":
        raise ValidationError({f"{leaf.path}.op": N_("campaign behaviour takes contains or is_empty")})
    if not str(leaf.value).isdigit():
        raise ValidationError({f"{leaf.path}.value": N_("must be a campaign number")})
    match = ' AND r."campaign" = {}'
    return (
        WhereRaw(f'"{PERSON_TABLE}"."id" IN ({sql.format(false="{}", match=match)})', False, int(leaf.value))
        if leaf.name != "campaigns_received"
        else WhereRaw(f'"{PERSON_TABLE}"."id" IN ({sql.format(false="", match=match)})', int(leaf.value))
    )


def where(
    node: Node, sch: Schema, access: Access | None = None, only: Sequence[int] | None = None
) -> Combinable | None:
    """``node`` as a where-clause over people (None: everyone). With ``access``, a field the user sees masked
    or hidden is refused (403 naming the path), as for any condition the kernel compiles for a user. With
    ``only``, the clause need be right for those people alone (a refresh: order filters read only their orders)."""
    if isinstance(node, Group):
        clauses = [where(item, sch, access, only) for item in node.items]
        present = [c for c in clauses if c is not None]
        if node.op == "all":
            if not present:
                return None
        elif len(present) < len(clauses):  # an empty "all" inside "any": always true
            return None
        out = present[0]
        for other in present[1:]:
            out = (out & other) if node.op == "all" else (out | other)
        return out
    if isinstance(node, Not):
        return _negate(where(node.item, sch, access, only))
    if node.name == TAGS:
        return _tags(node)
    if node.name in BEHAVIOUR or node.name == UNSUBSCRIBED:
        return _behaviour(node)
    if node.name in value_filters.FIELDS:
        return value_filters.where(node, only)
    return conditions.to_where(node, sch, access)


async def parse(raw: Any, access: Access | None = None) -> tuple[Node, Schema]:
    """``raw`` (decoded JSON) checked as a segment condition: 422 naming the path of an unknown field or a bad
    value, 403 for a field ``access``'s user may not filter on."""
    sch = await schema()
    if value_filters.DAYS not in sch.fields:  # no orders here: say so rather than "unknown field"
        value_filters.refuse_without_orders(raw)
    node = conditions.parse(raw, sch, path="condition")
    where(node, sch, access)  # compiled once for the checks the SQL side makes (masked fields)
    return node, sch


def decode(text: str) -> Any:
    """A condition typed into a form (JSON text); 422 on ``condition`` when it is not JSON."""
    if not text.strip():
        return {}
    try:
        return json.loads(text)
    except ValueError:
        raise ValidationError({"condition": N_('must be JSON: {"all": [...]}')}) from None


def _live(sch: Schema) -> Combinable:
    table: Any = sch.table  # crm_contacts' Person, known here only through the automation registry
    live: Combinable = table.is_archived.eq(False) & table.merged_into.is_null() & table.is_anonymized.eq(False)
    return live


async def count(raw: Any, access: Access | None = None) -> int:
    """How many people the condition selects now (the builder's live count)."""
    node, sch = await parse(raw, access)
    clause = where(node, sch)
    full = _live(sch) if clause is None else _live(sch) & clause
    return int(await sch.table.count().where(full))


async def build(segment_id: int) -> dict[str, Any]:
    """Recompute a dynamic segment's members in one ``INSERT … SELECT``; its count, build time and duration."""
    row = await Segment.select().where(Segment.id == segment_id).first()
    if row is None:
        raise NotFound(f"segment {segment_id} not found")
    if row["is_static"]:
        return {"count": row["member_count"], "ms": 0}
    raw = json.loads(row["condition"]) if isinstance(row["condition"], str) else row["condition"]
    node, sch = await parse(raw)
    clause = where(node, sch)
    full = _live(sch) if clause is None else _live(sch) & clause
    started = time.perf_counter()
    async with db.atomic():
        if db.is_postgres():
            members = await _write_difference(segment_id, full)
        else:
            await SegmentMember.delete().where(SegmentMember.segment == segment_id)
            await SegmentMember.raw(
                f'INSERT INTO "crm_marketing_segment_member" ("segment", "person") '
                f'SELECT {{}}, "{PERSON_TABLE}"."id" FROM "{PERSON_TABLE}" WHERE {{}}',
                segment_id,
                full.querystring,
            )
            members = await SegmentMember.count().where(SegmentMember.segment == segment_id)
        ms = int((time.perf_counter() - started) * 1000)
        await Segment.update(
            {Segment.member_count: members, Segment.built_at: dt.datetime.now(dt.UTC), Segment.build_ms: ms}
        ).where(Segment.id == segment_id)
    return {"count": int(members), "ms": ms}


# Rewriting every member row (delete all, insert all) cost each row its three index entries and two foreign-key
# checks, most of a rebuild's time at 1 M people (issue 13), though an hourly rebuild changes a few rows. So the
# members are computed once (MATERIALIZED) and only the difference is written; the anti-joins are hashed, and
# ON CONFLICT lets a refresh job that added someone meanwhile win instead of failing the rebuild.
_DIFFERENCE = (
    "WITH wanted AS MATERIALIZED ("
    f'SELECT "{PERSON_TABLE}"."id" AS person FROM "{PERSON_TABLE}" WHERE {{}}), '
    'gone AS (DELETE FROM "crm_marketing_segment_member" m WHERE m."segment" = {} '
    'AND NOT EXISTS (SELECT 1 FROM wanted w WHERE w.person = m."person") RETURNING 1), '
    'came AS (INSERT INTO "crm_marketing_segment_member" ("segment", "person") SELECT {}, w.person FROM wanted w '
    'WHERE NOT EXISTS (SELECT 1 FROM "crm_marketing_segment_member" m WHERE m."segment" = {} '
    'AND m."person" = w.person) ON CONFLICT DO NOTHING RETURNING 1) '
    "SELECT (SELECT COUNT(*) FROM wanted) AS members, (SELECT COUNT(*) FROM gone) AS gone, "
    "(SELECT COUNT(*) FROM came) AS came"
)


async def _write_difference(segment_id: int, full: Combinable) -> int:
    """PostgreSQL: the segment's members made those ``full`` selects, writing only who left and who joined."""
    await plan_for_difference()
    row = (await SegmentMember.raw(_DIFFERENCE, full.querystring, segment_id, segment_id, segment_id))[0]
    return int(row["members"])


async def plan_for_difference() -> None:
    """The current transaction's planner settings for :data:`_DIFFERENCE` (PostgreSQL)."""
    # an order filter groups every customer's orders: with the default 4 MB the aggregate spilled to disk in
    # 21 batches at 100k people (1.0 s of the 3-filter build against 0.35 s in memory)
    await SegmentMember.raw("SET LOCAL work_mem = '64MB'")
    # never a nested loop for the anti-joins: on a members table the planner believes empty (just vacuumed, new
    # install) it chose one whose inner scan re-read the pages this very INSERT was filling — quadratic, 607 s
    # instead of 13 s for 208k members at 1M people. Hash joins are right at every size here.
    await SegmentMember.raw("SET LOCAL enable_nestloop = off")
    await SegmentMember.raw(orders.GROUPED_BY_HASH)


async def refresh_person(person_id: int) -> list[int]:
    """Bring one person's memberships of every dynamic segment up to date; the segments they are in now."""
    await refresh_people([person_id])
    return [
        int(r["segment"])
        for r in await SegmentMember.select(SegmentMember.segment).where(
            (SegmentMember.person == person_id) & SegmentMember.segment.is_in(await _dynamic_ids())
        )
    ]


async def _dynamic_ids() -> list[int]:
    return [int(r["id"]) for r in await Segment.select(Segment.id).where(Segment.is_static.eq(False))] or [0]


async def refresh_people(person_ids: list[int]) -> dict[int, list[int]]:
    """Bring these people's memberships of every dynamic segment up to date (new or changed contacts, within
    seconds, without rebuilding whole segments): per segment, one ``DELETE`` of those who no longer match and
    one ``INSERT … SELECT`` of those who newly do — the segment's compiled condition ``AND person.id IN (…)``.
    Returns, per segment, the people who joined it (for "entered a segment" journeys)."""
    ids = sorted({int(i) for i in person_ids})
    if not ids:
        return {}
    sch = await schema()
    table: Any = sch.table
    rows = await Segment.select(Segment.id, Segment.condition).where(Segment.is_static.eq(False))
    joined: dict[int, list[int]] = {}
    async with db.atomic():
        for row in rows:
            raw = json.loads(row["condition"]) if isinstance(row["condition"], str) else row["condition"]
            try:
                node = conditions.parse(raw, sch, path="condition")
            except ValidationError:  # a field gone since (an uninstalled custom field): the full build reports it
                continue
            clause = where(node, sch, only=ids)
            mine = _live(sch) & table.id.is_in(ids)
            full = mine if clause is None else mine & clause
            left = await SegmentMember.raw(
                'DELETE FROM "crm_marketing_segment_member" WHERE "segment" = {} '
                f'AND "person" IN (SELECT "{PERSON_TABLE}"."id" FROM "{PERSON_TABLE}" WHERE {{}}) '
                f'AND "person" NOT IN (SELECT "{PERSON_TABLE}"."id" FROM "{PERSON_TABLE}" WHERE {{}}) '
                'RETURNING "person"',
                row["id"],
                table.id.is_in(ids).querystring,
                full.querystring,
            )
            came = await SegmentMember.raw(
                'INSERT INTO "crm_marketing_segment_member" ("segment", "person") '
                f'SELECT {{}}, "{PERSON_TABLE}"."id" FROM "{PERSON_TABLE}" WHERE {{}} AND "{PERSON_TABLE}"."id" '
                'NOT IN (SELECT m."person" FROM "crm_marketing_segment_member" m WHERE m."segment" = {}) '
                'RETURNING "person"',
                row["id"],
                full.querystring,
                row["id"],
            )
            if left or came:  # by the difference: counting a segment of 200k members took longer than the rest
                await Segment.update({Segment.member_count: Segment.member_count + (len(came) - len(left))}).where(
                    Segment.id == row["id"]
                )
            if came:
                joined[int(row["id"])] = sorted(int(r["person"]) for r in came)
    return joined


async def rebuild_all() -> int:
    """Rebuild every dynamic segment (the scheduled job); how many were built."""
    ids = [r["id"] for r in await Segment.select(Segment.id).where(Segment.is_static.eq(False))]
    for segment_id in ids:
        await build(int(segment_id))
    return len(ids)


async def set_static_members(segment_id: int, person_ids: list[int], *, add: bool) -> int:
    """Add people to (or remove them from) a static list; the list's new size."""
    async with db.atomic():
        if add:
            have = {
                int(r["person"])
                for r in await SegmentMember.select(SegmentMember.person).where(
                    (SegmentMember.segment == segment_id) & SegmentMember.person.is_in(person_ids or [0])
                )
            }
            new = [SegmentMember(segment=segment_id, person=p) for p in dict.fromkeys(person_ids) if p not in have]
            if new:
                await SegmentMember.insert(*new)
        elif person_ids:
            await SegmentMember.delete().where(
                (SegmentMember.segment == segment_id) & SegmentMember.person.is_in(person_ids)
            )
        members = await SegmentMember.count().where(SegmentMember.segment == segment_id)
        await Segment.update({Segment.member_count: members, Segment.built_at: dt.datetime.now(dt.UTC)}).where(
            Segment.id == segment_id
        )
    return int(members)
