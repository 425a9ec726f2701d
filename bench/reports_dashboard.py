"""Report figures over many deals on PostgreSQL: an 8-card sales dashboard cold and from the figure cache, a
pivot, the dashboard page.

Creates a throwaway PostgreSQL database, installs crm_sales and crm_reports, inserts N deals (ten owners of one
team, every stage, state, source, region and industry, twelve months) and 3 × N activities, then times as the
team's manager (team scope: the access layer's rule is in every query):

- ``cold``: the 8 cards (the default sales dashboard's, topped up to 8) through ``crm_reports.reports.result``
  after a write to the deals (its version bumped: every figure computed by the database, then stored);
- ``cached``: the same 8 cards again with no write between: served by the figure cache in this process
  (the embedded shape);
- ``redis``: the same from Redis (``--redis``), as scaled-out web processes share it, the cards' entries
  fetched in one round trip as the dashboard page does (``cache.prefetch``);
- ``pivot``: region × state, one measure, with subtotals and the grand total (``GROUP BY`` + ``ROLLUP``), cold;
- ``page``: ``GET /reports/dashboards/<id>`` through the whole app from the cache (figures + one SVG per card);
- ``baseline``: ``SELECT count(*)`` of the deals, the cheapest full scan, in the same run.

Targets from issue 15 (1M deals, 3M activities): 8 cards p95 ≤ 1 s cold, ≤ 100 ms cached; pivot ≤ 500 ms.

    .venv/bin/python bench/reports_dashboard.py [-n 20] [--deals 100000] [--redis redis://127.0.0.1:6379/15]
        [--pg postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from httptiming import pct, timed

EXTRA_CARDS = ({"dimensions": ["region"], "measures": ["count", "expected_revenue"]},
               {"dimensions": ["industry", "state"], "measures": ["count"]})


async def seed(deals: int, activities: int) -> int:
    """The users, then the deals and activities generated in the database (``generate_series``: set-based, a
    million rows in seconds rather than minutes through Python)."""
    from core import datasets
    from core.security.access import Access, policy
    from core.security.principal import load
    from core.security.users import create_team, create_user

    manager = await create_user("bench_manager", "Bench Manager", "Correct-Horse-42!", roles=["sales_manager"])
    reps = [await create_user(f"bench_rep{i}", f"Rep {i}", "Correct-Horse-42!", roles=["sales_rep"])
            for i in range(10)]
    team = await create_team("Bench team", leader=manager, members=reps)
    acc = Access(await load(manager, implied=policy().implied))
    table = (await datasets.dataset("crm_sales.opportunities", acc)).table
    stage_table = table._meta.get_column_by_name("stage")._foreign_key_meta.resolved_references
    stages = [s["id"] for s in await stage_table.select(stage_table.id)]
    deal, stage_arr, rep_arr = table._meta.tablename, _ints(stages), _ints(reps)
    # every owner, stage, state, source, region and industry, the twelve months of 2026; amounts spread by a
    # multiplicative hash (deterministic, no random() per row)
    for start in range(0, deals, 500_000):  # one statement per half million: a transaction of bounded size
        await table.raw(f"""
            INSERT INTO {deal} (name, stage, state, owner, team, expected_revenue, source, region, industry,
                                created_at, closed_at)
            SELECT 'Deal ' || i, ({stage_arr})[1 + i % {len(stages)}], (ARRAY['open','won','lost'])[1 + i % 3],
                   ({rep_arr})[1 + i % 10], {int(team)}, 100 + (i::bigint * 7919) % 999900,
                   (ARRAY['web','fair','call'])[1 + i % 3], (ARRAY['华东','华南','华北','西部'])[1 + i % 4],
                   (ARRAY['制造','零售','IT','医疗','教育'])[1 + i % 5],
                   make_timestamptz(2026, 1 + i % 12, 1 + i % 28, 0, 0, 0, 'UTC'),
                   CASE WHEN i % 3 <> 0 THEN make_timestamptz(2026, 1 + i % 12, 1 + i % 28, 0, 0, 0, 'UTC')
                        + interval '30 days' END
            FROM generate_series({start}, {min(deals, start + 500_000) - 1}) AS i""")
    await table.raw(f"VACUUM ANALYZE {deal}")
    from crm_sales.models import Activity  # the bench seeds the table directly; crm_reports never names it

    first = (await table.select(table.id).order_by(table.id).first() or {}).get("id", 1)
    for start in range(0, activities, 1_000_000):
        await Activity.raw(f"""
            INSERT INTO {Activity._meta.tablename} (kind, subject, due_at, opportunity, owner, team)
            SELECT (ARRAY['call','meeting','email','todo'])[1 + i % 4], 'Activity ' || i,
                   make_timestamptz(2026, 1 + i % 12, 1 + i % 28, 0, 0, 0, 'UTC'), {int(first)} + i % {deals},
                   ({rep_arr})[1 + i % 10], {int(team)}
            FROM generate_series({start}, {min(activities, start + 1_000_000) - 1}) AS i""")
    await Activity.raw(f"VACUUM ANALYZE {Activity._meta.tablename}")
    return manager


def _ints(values: list[int]) -> str:
    return "ARRAY[" + ",".join(str(int(v)) for v in values) + "]::integer[]"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=20)
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--activities", type=int, default=None, help="default: 3 × deals")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15", help="'' to skip the Redis figures")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of each card's query")
    parser.add_argument("--keep", action="store_true", help="keep the database (its name is printed)")
    parser.add_argument("--reuse", default="", help="a database kept by --keep: no install, no seeding")
    args = parser.parse_args()

    import httpx

    from core import datasets, db, lifecycle
    from core.app import create_app
    from core.discovery import discover
    from core.runtime import boot
    from core.security.access import Access, policy
    from core.security.principal import load
    from core.settings import Settings
    from core.testing import login_client, pg_admin

    name = args.reuse or f"crm_bench_{uuid.uuid4().hex[:8]}"
    if not args.reuse:
        await pg_admin(url=args.pg, sql=f'CREATE DATABASE "{name}"')
    url = args.pg.rsplit("/", 1)[0] + "/" + name
    try:
        settings = Settings(data_dir=Path(tempfile.mkdtemp()), database_url=url, redis_url=None, secret_key="bench")
        db.configure(url)
        activities = 3 * args.deals if args.activities is None else args.activities
        started = time.perf_counter()
        if args.reuse:
            await lifecycle.ensure_kernel()
            await lifecycle.upgrade(["crm_sales", "crm_reports"], discover())  # indexes added since it was kept
            runtime = await boot(settings)
            from core.security.models import User

            manager = (await User.select(User.id).where(User.login == "bench_manager").first())["id"]
        else:
            await lifecycle.ensure_kernel()
            await lifecycle.install(["crm_sales", "crm_reports"], discover())
            runtime = await boot(settings)
            manager = await seed(args.deals, activities)
        seeded = time.perf_counter() - started
        from crm_reports import cache, dashboards, reports

        from core import versions

        await dashboards.refresh_defaults()
        app = create_app(runtime=runtime, run_jobs=False)
        await db.current().start_connection_pool(min_size=2, max_size=10)  # the app's default (CRM_DB_POOL_SIZE)
        try:
            acc = Access(await load(manager, implied=policy().implied))
            board = await dashboards.home(acc)
            assert board is not None
            cards = [await reports.get(acc, c["report"]) for c in (await dashboards.get(acc, board["id"]))["cards"]]
            cards += [{"dataset": "crm_sales.opportunities", "spec": spec} for spec in EXTRA_CARDS][:8 - len(cards)]
            ds = await datasets.dataset("crm_sales.opportunities", acc)
            table = ds.table

            async def all_cards() -> None:  # as the dashboard page computes them: at once, on the pool
                for found in await reports.results(acc, cards):
                    assert not isinstance(found, Exception), found

            async def cold() -> None:
                await versions.bump(versions.model_key(ds.model))  # what a write to a deal does
                await all_cards()

            async def pivot() -> None:
                await datasets.run(acc, datasets.Query("crm_sales.opportunities", ("region", "state"),
                                                       ("expected_revenue",), totals=True))

            async def baseline() -> None:
                await table.count()

            if args.explain:
                await explain(cold)
            figures: dict[str, list[float]] = {}

            async def measure(label: str, work: Any) -> None:
                await work()  # warm-up: plans cached, pool filled, the cache filled
                figures[label] = []
                for _ in range(args.n):
                    t = time.perf_counter()
                    await work()
                    figures[label].append(time.perf_counter() - t)

            for label, work in (("cold", cold), ("cached", all_cards), ("pivot", pivot), ("baseline", baseline)):
                await measure(label, work)
            assert cache.mode() == "local" and cache.stats["hits"] >= args.n * len(cards)
            if args.redis:
                redis_url, mode = versions.redis_url, cache.mode
                versions.redis_url, cache.mode = (lambda: args.redis), (lambda: "redis")
                try:
                    async def from_redis() -> None:  # as the dashboard page does: one round trip for all
                        await cache.prefetch(acc, [reports.query_of(r["dataset"], r["spec"] or {}) for r in cards])
                        await all_cards()

                    await measure("redis", from_redis)
                finally:
                    versions.redis_url, cache.mode = redis_url, mode
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
                await login_client(client, "bench_manager")
                path = f"/reports/dashboards/{board['id']}"
                await timed(client, path, 2)
                figures["page"] = await timed(client, path, max(5, args.n // 2))
        finally:
            await db.current().close_connection_pool()
        print(f"crm_reports over {args.deals:,} deals and {activities:,} activities on PostgreSQL (seeded in "
              f"{seeded:.1f} s), manager's team scope, {len(cards)} cards")
        for label, values in figures.items():
            print(f"  {label:8} p50 {pct(values, .5):8.1f} ms  p95 {pct(values, .95):8.1f} ms  ({len(values)} runs)")
        base = max(pct(figures["baseline"], .95), 0.001)
        print(f"  cold p95 / count(*) p95 = {pct(figures['cold'], .95) / base:.1f}; cached p95 / cold p95 = "
              f"{pct(figures['cached'], .95) / max(pct(figures['cold'], .95), 0.001):.3f}")
    finally:
        if args.keep or args.reuse:
            print(f"kept database {name} (--reuse {name}; DROP DATABASE when done)")
        else:
            await pg_admin(url=args.pg, sql=f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def explain(work: Any) -> None:
    """Run ``work`` once recording its SQL, then print each aggregate's plan (EXPLAIN ANALYZE, BUFFERS)."""
    from core import db

    engine: Any = db.current()
    seen: list[tuple[str, list[Any]]] = []
    original = engine.run_querystring

    async def recording(querystring: Any, in_pool: bool = True) -> Any:
        seen.append(querystring.compile_string(engine_type="postgres"))
        return await original(querystring, in_pool)

    engine.run_querystring = recording
    try:
        await work()
    finally:
        del engine.run_querystring
    for sql, args in seen:
        text = sql.lstrip().upper()
        if not text.startswith("SELECT") or "GROUP BY" not in text and "COUNT(" not in text:
            continue
        plan = await engine._run_in_new_connection("EXPLAIN (ANALYZE, BUFFERS) " + sql, args)
        print(sql, args)
        print("\n".join(r["QUERY PLAN"] for r in plan), "\n")


if __name__ == "__main__":
    asyncio.run(main())
