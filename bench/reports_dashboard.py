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
import datetime as dt
import random
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from httptiming import pct, timed

EXTRA_CARDS = ({"dimensions": ["region"], "measures": ["count", "expected_revenue"]},
               {"dimensions": ["industry", "state"], "measures": ["count"]})


async def seed(deals: int, activities: int) -> int:
    from core import datasets
    from core.bulk import copy_rows, insert_rows
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
    rnd = random.Random(1)
    for start in range(0, deals, 5000):
        rows = []
        for i in range(start, min(deals, start + 5000)):
            created = dt.datetime(2026, 1 + i % 12, 1 + i % 28, tzinfo=dt.UTC)
            state = ("open", "won", "lost")[i % 3]
            rows.append({"name": f"Deal {i}", "stage": stages[i % len(stages)], "state": state,
                         "owner": reps[i % 10], "team": team, "expected_revenue": Decimal(rnd.randrange(100, 10**6)),
                         "source": ("web", "fair", "call")[i % 3], "region": ("华东", "华南", "华北", "西部")[i % 4],
                         "industry": ("制造", "零售", "IT", "医疗", "教育")[i % 5],
                         "created_at": created, "closed_at": created + dt.timedelta(days=30) if state != "open"
                         else None})
        await insert_rows(table, rows)
    await table.raw(f"ANALYZE {table._meta.tablename}")
    from crm_sales.models import Activity  # the bench seeds the table directly; crm_reports never names it

    pk = table._meta.primary_key
    first = (await table.select(pk).order_by(pk).first() or {}).get("id", 1)
    for start in range(0, activities, 20000):
        await copy_rows(Activity, [{"kind": ("call", "meeting", "email", "todo")[i % 4], "subject": f"Activity {i}",
                                    "due_at": dt.datetime(2026, 1 + i % 12, 1 + i % 28, tzinfo=dt.UTC),
                                    "opportunity": first + i % deals, "owner": reps[i % 10], "team": team}
                                   for i in range(start, min(activities, start + 20000))])
    await Activity.raw(f"ANALYZE {Activity._meta.tablename}")
    return manager


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=20)
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--activities", type=int, default=None, help="default: 3 × deals")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15", help="'' to skip the Redis figures")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
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

    name = f"crm_bench_{uuid.uuid4().hex[:8]}"
    await pg_admin(url=args.pg, sql=f'CREATE DATABASE "{name}"')
    url = args.pg.rsplit("/", 1)[0] + "/" + name
    try:
        settings = Settings(data_dir=Path(tempfile.mkdtemp()), database_url=url, redis_url=None, secret_key="bench")
        db.configure(url)
        await lifecycle.ensure_kernel()
        await lifecycle.install(["crm_sales", "crm_reports"], discover())
        runtime = await boot(settings)
        started = time.perf_counter()
        activities = 3 * args.deals if args.activities is None else args.activities
        manager = await seed(args.deals, activities)
        seeded = time.perf_counter() - started
        from crm_reports import cache, dashboards, reports

        from core import versions

        await dashboards.refresh_defaults()
        app = create_app(runtime=runtime, run_jobs=False)
        await db.current().start_connection_pool(min_size=2, max_size=4)
        try:
            acc = Access(await load(manager, implied=policy().implied))
            board = await dashboards.home(acc)
            assert board is not None
            cards = [await reports.get(acc, c["report"]) for c in (await dashboards.get(acc, board["id"]))["cards"]]
            cards += [{"dataset": "crm_sales.opportunities", "spec": spec} for spec in EXTRA_CARDS][:8 - len(cards)]
            ds = await datasets.dataset("crm_sales.opportunities", acc)
            table = ds.table

            async def all_cards() -> None:
                for report in cards:
                    await reports.result(acc, report)

            async def cold() -> None:
                await versions.bump(versions.model_key(ds.model))  # what a write to a deal does
                await all_cards()

            async def pivot() -> None:
                await datasets.run(acc, datasets.Query("crm_sales.opportunities", ("region", "state"),
                                                       ("expected_revenue",), totals=True))

            async def baseline() -> None:
                await table.count()

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
        await pg_admin(url=args.pg, sql=f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())
