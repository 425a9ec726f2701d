"""p95 time of the kanban board page with 5,000 open deals on PostgreSQL, through the whole app.

Creates a throwaway PostgreSQL database, installs crm_sales, inserts N open deals (spread over the five open
stages and ten owners of one team), logs a sales manager in (so the team scope applies: every deal is
visible) and requests ``/sales/`` repeatedly through the ASGI app (middleware, session, access layer,
templates; no network). As the baseline in the same run it requests the kernel's home page ``/``, which
pays the same middleware and session cost with no sales query.

    .venv/bin/python bench/sales_kanban.py [-n 60] [--deals 5000] [--pg postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import uuid
from decimal import Decimal

from httptiming import pct, timed


async def seed(deals: int) -> None:
    from crm_sales.models import Opportunity, PipelineStage

    from core.security.users import create_team, create_user

    manager = await create_user("bench_manager", "Bench Manager", "Correct-Horse-42!", roles=["sales_manager"])
    reps = [await create_user(f"bench_rep{i}", f"Rep {i}", "Correct-Horse-42!", roles=["sales_rep"])
            for i in range(10)]
    team = await create_team("Bench team", leader=manager, members=reps)
    stages = [s["id"] for s in await PipelineStage.select(PipelineStage.id).where(
        (PipelineStage.is_won == False) & (PipelineStage.is_lost == False))]  # noqa: E712
    now = dt.datetime.now(dt.UTC)
    rows = [Opportunity(name=f"Deal {i}", stage=stages[i % len(stages)], state="open", owner=reps[i % 10],
                        team=team, expected_revenue=Decimal(1000 + i), probability=20, stage_entered_at=now)
            for i in range(deals)]
    for start in range(0, len(rows), 1000):
        await Opportunity.insert(*rows[start:start + 1000])


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=60)
    parser.add_argument("--deals", type=int, default=5000)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    import tempfile
    from pathlib import Path

    import httpx

    from core import db, lifecycle
    from core.app import create_app
    from core.discovery import discover
    from core.runtime import boot
    from core.settings import Settings
    from core.testing import login_client, pg_admin

    name = f"crm_bench_{uuid.uuid4().hex[:8]}"
    await pg_admin(url=args.pg, sql=f'CREATE DATABASE "{name}"')
    url = args.pg.rsplit("/", 1)[0] + "/" + name
    try:
        settings = Settings(data_dir=Path(tempfile.mkdtemp()), database_url=url, redis_url=None,
                            secret_key="bench")

        db.configure(url)
        await lifecycle.ensure_kernel()
        await lifecycle.install(["crm_sales"], discover())
        runtime = await boot(settings)
        await seed(args.deals)
        app = create_app(runtime=runtime, run_jobs=False)
        # the pool a production web process starts (core.app, jobs on Redis workers)
        await db.current().start_connection_pool(min_size=2, max_size=4)
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
                await login_client(client, "bench_manager")
                await timed(client, "/sales/", 5)  # warm-up: templates compiled, pool filled
                board = await timed(client, "/sales/", args.n)
                home = await timed(client, "/", args.n)
        finally:
            await db.current().close_connection_pool()
        print(f"kanban /sales/ with {args.deals} open deals, PostgreSQL with a connection pool, {args.n} requests")
        mean = statistics.mean(board) * 1000
        print(f"  board p50 {pct(board, .5):7.1f} ms  p95 {pct(board, .95):7.1f} ms  mean {mean:7.1f} ms")
        print(f"  home  p50 {pct(home, .5):7.1f} ms  p95 {pct(home, .95):7.1f} ms"
              "  (baseline: same middleware and session, no sales query)")
    finally:
        await pg_admin(url=args.pg, sql=f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())
