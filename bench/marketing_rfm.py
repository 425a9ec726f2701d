"""crm_marketing RFM and order filters on PostgreSQL: N people and 3N orders (crm_sales installed), timed:

- the RFM rebuild (``rfm.rebuild``: one INSERT … SELECT with NTILE window functions and the tier CASE, into a
  fresh table swapped in); baselines in the same run: the bare per-customer aggregate it starts from (GROUP BY
  over the orders, no write) and the former rebuild (DELETE every score, INSERT into the indexed table; rolled back);
- a segment of 3 filters, one over orders (province in …, stage ≠ lost, total spent ≥ 5,000): its first build
  (every member written) beside the same segment without the order filter, then a rebuild after 1 % of the people
  changed stage (``segments.build``: only the difference written) beside the former build (DELETE every member,
  INSERT … SELECT them all) of the same segment;
- one contact's membership refreshed after a new order (``segments.refresh_person``, every dynamic segment).

Same-run baselines of the indexes changed on 2026-12-02: the first build again with the members' former
single-column segment index (dropped: the unique (segment, person) index leads with it), and the refresh again
without the index on orders' person.

People come from ``bench/contacts_list.py``'s loader (INSERT … SELECT generate_series), orders likewise.

    .venv/bin/python bench/marketing_rfm.py [--people 100000] [--keep]

``--keep`` keeps the database; the next run with the same ``--people`` reuses it (people and orders not loaded
again: it finds 3N orders) and drops it at the end unless ``--keep`` is given again.

Targets (issue 13): RFM for 1M customers / 3M orders ≤ 60 s; the 3-filter segment ≤ 10 s; one contact ≤ 5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import contacts_list as people_data  # noqa: E402

DB = "crm_bench_rfm"
CODES = ["TEA-01", "CUP-02", "POT-03", "SET-04", "GIFT-05"]


def _h(expr: str) -> str:
    return people_data._h(expr)


async def load_orders(url: str, people: int, orders: int) -> float:
    """``orders`` orders (with one line each) over the people, by INSERT … SELECT generate_series."""
    import asyncpg

    started = time.perf_counter()
    conn = await asyncpg.connect(url)
    try:
        first = await conn.fetchval("SELECT min(id) FROM crm_contacts_person")
        step = 500_000
        for lo in range(1, orders + 1, step):
            hi = min(orders, lo + step - 1)
            # a skewed customer pick (some buy often), two years of dates, amounts 10–5,000, 5 % cancelled
            await conn.execute(f"""
                INSERT INTO crm_sales_order (reference, person, state, currency, untaxed, tax, total, confirmed_at)
                SELECT 'B-' || i, {first} + ({_h("i")} % {people}) * ({_h("i + 11")} % 3 + 1) % {people},
                       CASE WHEN {_h("i * 7")} % 20 = 0 THEN 'cancelled' ELSE 'confirmed' END, 'CNY',
                       t, 0, t, now() - make_interval(secs => ({_h("i * 3 + 1")} % 63072000)::float8)
                FROM (SELECT i, round((10 + {_h("i * 5")} % 499000 / 100.0)::numeric, 2) AS t
                      FROM generate_series({lo}, {hi}) i) s""")
            print(f"  loaded {hi:,} orders ({time.perf_counter() - started:.0f} s)", flush=True)
        await conn.execute(f"""
            INSERT INTO crm_sales_order_line ("order", sequence, code, description, quantity, unit_price, total)
            SELECT o.id, 10, ({people_data._array(CODES)})[1 + o.id % {len(CODES)}], 'bench', 1, o.total, o.total
            FROM crm_sales_order o""")
        await conn.execute("VACUUM ANALYZE crm_sales_order")
        await conn.execute("VACUUM ANALYZE crm_sales_order_line")
    finally:
        await conn.close()
    return time.perf_counter() - started


async def _segment(name: str, condition: dict[str, Any]) -> int:
    from crm_marketing.models import Segment

    return int((await Segment.insert(Segment(name=name, condition=condition)))[0]["id"])


async def _old_build(segment_id: int) -> int:
    """The same-run baseline: the build as it was before (every member deleted, every member inserted)."""
    import json

    from crm_contacts.api import PERSON_TABLE
    from crm_marketing import orders, segments
    from crm_marketing.models import Segment, SegmentMember

    from core import db

    row = await Segment.select(Segment.condition).where(Segment.id == segment_id).first()
    assert row is not None
    raw = json.loads(row["condition"]) if isinstance(row["condition"], str) else row["condition"]
    node, sch = await segments.parse(raw)
    clause = segments.where(node, sch)
    full = segments._live(sch) if clause is None else segments._live(sch) & clause
    async with db.atomic():
        await SegmentMember.raw(orders.GROUPED_BY_HASH)  # planned as the build is (not walking the person index)
        await SegmentMember.delete().where(SegmentMember.segment == segment_id)
        await SegmentMember.raw(
            f'INSERT INTO "crm_marketing_segment_member" ("segment", "person") '
            f'SELECT {{}}, "{PERSON_TABLE}"."id" FROM "{PERSON_TABLE}" WHERE {{}}', segment_id, full.querystring)
        return int(await SegmentMember.count().where(SegmentMember.segment == segment_id))


async def _with_former_member_index(build: Any, segment_id: int) -> tuple[float, Any]:
    """The same-run baseline of a first build: every member deleted (vacuumed, analyzed: believed empty), the
    single-column segment index the members had before put back for the build, then dropped again."""
    from crm_marketing.models import SegmentMember

    await SegmentMember.delete(force=True)
    await SegmentMember.raw("VACUUM ANALYZE crm_marketing_segment_member")
    await SegmentMember.raw(
        "CREATE INDEX crm_marketing_segment_member_segment ON crm_marketing_segment_member (segment)")
    try:
        return await _timed(build, segment_id)
    finally:
        await SegmentMember.raw("DROP INDEX crm_marketing_segment_member_segment")


async def _bare_group_by() -> None:
    """The aggregate RFM starts from, alone, planned as RFM plans it (a hash aggregate, not the person index)."""
    from crm_marketing import orders
    from crm_marketing.models import RfmScore

    from core import db

    async with db.atomic():
        await RfmScore.raw("SET LOCAL work_mem = '64MB'")
        await RfmScore.raw(orders.GROUPED_BY_HASH)
        await RfmScore.raw("""SELECT count(*) FROM (SELECT person, max(confirmed_at), count(*), sum(total)
            FROM crm_sales_order WHERE state = 'confirmed' AND currency = 'CNY' AND person IS NOT NULL
            GROUP BY person) a""")


async def _rfm_rewrite() -> None:
    """The same-run baseline: the RFM rebuild as it was before (every score deleted and inserted again into the
    indexed table), rolled back."""
    import datetime as dt

    from crm_marketing import orders, rfm
    from crm_marketing.models import RfmScore

    from core import db

    src = await orders.source()
    assert src is not None
    live = await rfm._live_clause()
    case, args = await rfm._tier_case()
    try:
        async with db.atomic():
            await RfmScore.raw("SET LOCAL work_mem = '64MB'")
            await RfmScore.raw(orders.GROUPED_BY_HASH)  # planned as the rebuild is (not walking the person index)
            await RfmScore.delete(force=True)
            await RfmScore.raw(rfm._insert_sql(src, case), *args, dt.datetime.now(dt.UTC), orders.CURRENCY, live)
            raise _Undo
    except _Undo:
        pass


class _Undo(Exception):
    pass


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


async def _timed(fn: Any, *args: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    out = await fn(*args)
    return time.perf_counter() - started, out


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--keep", action="store_true", help="keep the database (reused by the next run)")
    args = parser.parse_args()
    import asyncpg

    from core import db, lifecycle
    from core.discovery import discover
    from core.runtime import boot
    from core.settings import Settings
    from core.testing import pg_admin

    orders = 3 * args.people
    url = args.pg.rsplit("/", 1)[0] + "/" + DB
    try:
        conn = await asyncpg.connect(url)
        have = await conn.fetchval("SELECT count(*) FROM crm_sales_order")
        await conn.close()
    except (asyncpg.InvalidCatalogNameError, asyncpg.UndefinedTableError):
        have = -1
    reuse = have in (orders, orders + 1)  # + the order the last run added for one contact (deleted below)
    if not reuse:
        await pg_admin(url=args.pg, sql=f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        await pg_admin(url=args.pg, sql=f'CREATE DATABASE "{DB}"')
    try:
        db.configure(url)
        await lifecycle.ensure_kernel()
        await lifecycle.install(["crm_marketing", "crm_sales"], discover())
        await lifecycle.upgrade(["crm_marketing", "crm_sales"], discover())
        await boot(Settings(data_dir=Path(tempfile.mkdtemp()), database_url=url, redis_url=None, secret_key="bench"))
        if not reuse:
            reps, team_of = await people_data.seed_users()
            took = await people_data.load_people(url, args.people, reps, team_of)
            print(f"loaded {args.people:,} people in {took:.0f} s")
            took = await load_orders(url, args.people, orders)
            print(f"loaded {orders:,} orders (one line each) in {took:.0f} s")
        engine: Any = db.current()  # PostgresEngine: a pool of two
        await engine.start_connection_pool(min_size=1, max_size=2)
        from crm_marketing import rfm, segments
        from crm_marketing.models import RfmScore, Segment

        from core import datasets

        await datasets.datasets()  # warm: the custom-field registry, the datasets hook
        print(f"\nRFM and order filters on PostgreSQL: {args.people:,} people, {orders:,} orders; "
              f"load average {_load()}")
        base, _ = await _timed(_bare_group_by)
        first, _ = await _timed(rfm.rebuild)  # the scores exist (as every night): the former way deletes them
        before, _ = await _timed(_rfm_rewrite)
        took, built = await _timed(rfm.rebuild)
        print(f"  RFM rebuild                      {took:7.2f} s  ({built['customers']:,} customers scored; "
              f"same run: bare GROUP BY {base:.2f} s, the former DELETE + INSERT {before:.2f} s = "
              f"{before / took:.1f}× slower; this rebuild on an empty table {first:.2f} s)  target ≤ 60 s at 1M  "
              f"[load {_load()}]")
        print(f"    tiers: {dict(sorted(built['tiers'].items(), key=lambda kv: -kv[1]))}")
        await Segment.delete(force=True)  # a reused database: the last run's segments and added order
        await RfmScore.raw("DELETE FROM crm_sales_order WHERE reference = 'B-new'")
        # the deleted members' dead rows would slow the first builds below (autovacuum does this in time)
        await RfmScore.raw("VACUUM ANALYZE crm_marketing_segment_member")
        places = {"field": "province", "op": "in", "value": ["广东", "上海", "浙江"]}
        stage = {"field": "stage", "op": "ne", "value": "lost"}
        spent = {"field": "total_spent", "op": "gte", "value": "5000"}
        three = {"all": [places, stage, spent]}
        with_orders = await _segment("3 filters", three)
        without = await _segment("2 filters", {"all": [places, stage]})
        tier = await _segment("gold", {"field": "value_tier", "op": "eq", "value": "gold"})
        took, done = await _timed(segments.build, with_orders)
        plain_took, plain = await _timed(segments.build, without)
        print(f"  segment first build, 3 filters   {took:7.2f} s  ({done['count']:,} members written; 2 filters "
              f"without orders {plain_took:.2f} s / {plain['count']:,})  [load {_load()}]")
        former, _ = await _with_former_member_index(segments.build, with_orders)
        print(f"    same run, again with the former (segment) index on the members: {former:.2f} s = "
              f"{former / took:.2f}× (runs second: the orders are warmer in cache)  [load {_load()}]")
        # 1 % of the people change stage (half of them leave, half join), then the hourly rebuild
        await RfmScore.raw("UPDATE crm_contacts_person SET stage = CASE WHEN stage = 'lost' THEN 'customer' "
                           "ELSE 'lost' END WHERE id % 100 = 7")
        took, done = await _timed(segments.build, with_orders)
        old_took, old = await _timed(_old_build, with_orders)
        assert old == done["count"], (old, done)
        print(f"  segment rebuild, 3 filters       {took:7.2f} s  ({done['count']:,} members after 1 % of people "
              f"changed; same run: the former DELETE + INSERT of every member {old_took:.2f} s = "
              f"{old_took / took:.1f}× slower)  target ≤ 10 s  [load {_load()}]")
        took, done = await _timed(segments.build, tier)
        print(f"  segment first build, value tier  {took:7.2f} s  ({done['count']:,} members)")
        person = await RfmScore.raw("""SELECT p.id FROM crm_contacts_person p WHERE p.province = '广东'
            AND p.stage <> 'lost' ORDER BY p.id LIMIT 1""")
        pid = int(person[0]["id"])
        await RfmScore.raw("""INSERT INTO crm_sales_order (reference, person, state, currency, untaxed, tax, total,
            confirmed_at) VALUES ('B-new', {}, 'confirmed', 'CNY', 0, 0, {}, {})""",
            pid, Decimal("99999"), dt.datetime.now(dt.UTC))
        took, inside = await _timed(segments.refresh_person, pid)
        dynamic = await Segment.count().where(Segment.is_static.eq(False))
        print(f"  one contact refreshed            {took:7.2f} s  (after a new order; {dynamic} dynamic segments, "
              f"now in {len(inside)}: {'yes' if with_orders in inside else 'NO'} in the 3-filter one)  "
              f"target ≤ 5 s  [load {_load()}]")
        await RfmScore.raw("DROP INDEX crm_sales_order_person")
        try:
            unindexed, again = await _timed(segments.refresh_person, pid)
        finally:
            await RfmScore.raw("CREATE INDEX crm_sales_order_person ON crm_sales_order (person)")
        assert sorted(again) == sorted(inside), (again, inside)
        print(f"    same run, without the index on orders' person: {unindexed:.2f} s = "
              f"{unindexed / took:.1f}× the indexed time  [load {_load()}]")
        print(f"  load average at the end {_load()}")
    finally:
        engine = db.current()
        await engine.close_connection_pool()
        if not args.keep:
            await pg_admin(url=args.pg, sql=f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())
