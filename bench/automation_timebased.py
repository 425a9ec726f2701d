"""Automation rules: a time-based rule over 100,000 matching records, and what active rules add to a create.

1. **Time-based**: N open deals idle for three days; an active rule "no activity for 48 h, state open → notify the
   owner (a templated title)". Timed from the scan (one SQL query in keyset batches inserting the runs) until
   every run is done by the job workers (``--threads`` in-process worker threads, as ``crm serve`` runs them):
   a notification per deal, each run logged. Baseline in the same run: the same candidates selected by plain
   SQL and the same notifications inserted in bulk (``core.bulk.insert_rows``) with no engine at all — the floor.
2. **Create request**: ``POST /api/sales/opportunities`` through the whole app (middleware, token, access
   layer, validation, audit), with 0 active rules (baseline) and with 10 active rules on opportunities
   (created / updated / changed triggers with conditions), alternating blocks so drift hits both; the added
   time is the difference of the medians. The rules' evaluation is deferred to the outbox: the request pays
   one read of the record and one outbox row.

    .venv/bin/python bench/automation_timebased.py [--records 100000] [--creates 200] [--threads 2]
                                                   [--pg postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from httptiming import pct


async def seed(records: int) -> list[int]:
    from crm_sales.models import Opportunity, PipelineStage

    from core.bulk import insert_rows
    from core.security.users import create_user

    owners = [await create_user(f"bench_rep{i}", f"Rep {i}", "Correct-Horse-42!", roles=["sales_rep"])
              for i in range(10)]
    stage = (await PipelineStage.select(PipelineStage.id).where(PipelineStage.key == "new").first())["id"]
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    for start in range(0, records, 5000):
        await insert_rows(Opportunity, [
            {"name": f"Deal {i}", "stage": stage, "state": "open", "owner": owners[i % 10], "probability": 10,
             "stage_entered_at": old, "created_at": old, "tags": [], "custom": {}, "score_explanation": {}}
            for i in range(start, min(records, start + 5000))])
    return owners


async def baseline_time_based() -> tuple[float, int]:
    """The floor: the same candidates by plain SQL, the same notifications in one bulk insert."""
    from crm_sales.models import Activity, Opportunity

    from core import db
    from core.bulk import insert_rows
    from core.models import Notification

    started = time.perf_counter()
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(hours=48)
    rows = await Opportunity.select(Opportunity.id, Opportunity.name, Opportunity.owner).where(
        (Opportunity.state == "open") & (Opportunity.stage_entered_at < cutoff)
        & Opportunity.id.not_in(Activity.select(Activity.opportunity).where(
            Activity.opportunity.is_not_null() & (Activity.created_at >= cutoff))))
    async with db.atomic():
        await insert_rows(Notification, [
            {"user_id": r["owner"], "title": f"No activity for 48 h: {r['name']}", "body": "", "url": "",
             "kind": "automation", "source": "bench", "dedup_key": f"bench:{r['id']}"} for r in rows])
    elapsed = time.perf_counter() - started
    await Notification.delete().where(Notification.source == "bench")
    return elapsed, len(rows)


async def time_based(records: int, threads: int) -> tuple[float, int, int]:
    from core import jobs
    from core.automation import rules, scans
    from core.automation.models import AutomationRun
    from core.models import Notification
    from core.security import principal
    from core.security.access import policy
    from core.security.users import create_user

    admin = await principal.load(await create_user("bench_admin", "Admin", "Correct-Horse-42!", roles=["admin"]),
                                 implied=policy().implied)
    saved = await rules.create(admin, {
        "name": "Idle deals", "model": "crm_sales.opportunity", "is_active": True,
        "trigger": {"type": "idle", "hours": 48}, "condition": {"field": "state", "op": "eq", "value": "open"},
        "actions": [{"kind": "notify", "params": {"to": "owner", "title_en": "No activity for 48 h: {{ record.name }}",
                                                  "title_zh": "48 小时没有跟进：{{ record.name }}"}}]})
    worker = jobs.start_worker(threads)
    try:
        now = dt.datetime.now(dt.UTC)
        started = time.perf_counter()
        inserted = await scans.scan(saved["id"], now - dt.timedelta(minutes=1), now)
        scanned = time.perf_counter() - started
        while True:
            left = await AutomationRun.count().where(AutomationRun.state.is_in(["pending", "running"]))
            if not left:
                break
            await asyncio.sleep(1.0)
        elapsed = time.perf_counter() - started
    finally:
        worker.stop()
    done = await AutomationRun.count().where(AutomationRun.state == "done")
    told = await Notification.count().where(Notification.kind == "automation")
    print(f"  scan (select + insert {inserted} runs + enqueue): {scanned:.1f} s")
    assert done == records == told, (done, records, told)
    return elapsed, done, told


async def creates(client: Any, n: int, tag: str) -> list[float]:
    out = []
    for i in range(n):
        started = time.perf_counter()
        answer = await client.post("/api/sales/opportunities", json={"name": f"{tag} {i}", "source": "web"})
        out.append(time.perf_counter() - started)
        assert answer.status_code == 201, answer.text[:300]
    return out


async def create_cost(runtime: Any, n: int) -> tuple[list[float], list[float]]:
    import httpx

    from core.app import create_app
    from core.automation import registry, rules
    from core.automation.models import AutomationRule
    from core.security import principal
    from core.security.access import policy
    from core.security.sessions import create_token
    from core.security.users import create_user

    uid = await create_user("bench_root", "Root", "Correct-Horse-42!", roles=["admin"])
    admin = await principal.load(uid, implied=policy().implied)
    notify = {"kind": "notify", "params": {"to": "owner", "title_en": "{{ record.name }}"}}
    triggers = [({"type": "created"}, {"field": "source", "op": "eq", "value": "web"}),
                ({"type": "created"}, {"field": "expected_revenue", "op": "gt", "value": 1000}),
                ({"type": "created"}, {"field": "person.province", "op": "eq", "value": "广东"}),
                ({"type": "updated"}, {}),
                ({"type": "changed", "field": "state", "to": "won"}, {}),
                ({"type": "changed", "field": "stage"}, {}),
                ({"type": "created"}, {"any": [{"field": "region", "op": "in", "value": ["华南", "华东"]},
                                               {"field": "tags", "op": "contains", "value": "vip"}]}),
                ({"type": "created"}, {"not": {"field": "name", "op": "contains", "value": "test"}}),
                ({"type": "deleted"}, {}),
                ({"type": "updated"}, {"field": "probability", "op": "gte", "value": 50})]
    ids = [(await rules.create(admin, {"name": f"bench {i}", "model": "crm_sales.opportunity", "trigger": t,
                                       "condition": c, "actions": [notify], "is_active": False}))["id"]
           for i, (t, c) in enumerate(triggers)]
    await AutomationRule.update({AutomationRule.is_active: False}).where(AutomationRule.id.not_in(ids))
    app = create_app(runtime=runtime, run_jobs=False)
    token = await create_token(uid, "bench", roles=["admin"])
    without: list[float] = []
    with_rules: list[float] = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench",
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        await creates(client, 20, "warm-up")
        block = max(1, n // 4)
        for round_ in range(4):
            for active, sink in ((False, without), (True, with_rules)):
                await AutomationRule.update({AutomationRule.is_active: active,
                                             AutomationRule.version: AutomationRule.version + 1}).where(
                    AutomationRule.id.is_in(ids))
                registry.invalidate()
                assert len(await registry.active("crm_sales.opportunity")) == (10 if active else 0)
                sink += await creates(client, block, f"r{round_}{active}")
    return without, with_rules


async def run(url: str, records: int, n: int, threads: int, label: str) -> None:
    from core import db, lifecycle
    from core.discovery import discover
    from core.runtime import boot
    from core.settings import Settings

    settings = Settings(data_dir=Path(tempfile.mkdtemp()), database_url=url, redis_url=None, secret_key="bench")
    db.configure(url)
    await lifecycle.ensure_kernel()
    await lifecycle.install(["crm_sales"], discover())
    runtime = await boot(settings)
    started = time.perf_counter()
    await seed(records)
    print(f"{label}: {records} idle open deals seeded in {time.perf_counter() - started:.1f} s")
    floor, found = await baseline_time_based()
    elapsed, done, told = await time_based(records, threads)
    print(f"  time-based rule, {done} records: {elapsed:.1f} s from scan to the last run done "
          f"({done / elapsed:,.0f} records/s, {threads} worker threads; target <= 60 s)")
    print(f"  baseline: plain SQL select of the {found} candidates + one bulk insert of the notifications: "
          f"{floor:.1f} s")
    without, with_rules = await create_cost(runtime, n)
    added = (statistics.median(with_rules) - statistics.median(without)) * 1000
    print(f"  POST /api/sales/opportunities, {len(without)} + {len(with_rules)} creates, alternating blocks:")
    print(f"    0 active rules (baseline): p50 {pct(without, .5):6.2f} ms  p95 {pct(without, .95):6.2f} ms  "
          f"mean {statistics.mean(without) * 1000:6.2f} ms")
    print(f"    10 active rules:           p50 {pct(with_rules, .5):6.2f} ms  p95 {pct(with_rules, .95):6.2f} ms  "
          f"mean {statistics.mean(with_rules) * 1000:6.2f} ms")
    print(f"    added by the rules: {added:+.2f} ms at the median (target <= 5 ms)")


async def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  (figures show up as they come)
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--creates", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pg", default="", help="also run on PostgreSQL (an admin URL, a database is made)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    await run(f"sqlite:///{folder / 'bench.sqlite3'}", args.records, args.creates, args.threads, "SQLite")
    if args.pg:
        from core.testing import pg_admin

        name = f"crm_bench_{uuid.uuid4().hex[:8]}"
        await pg_admin(url=args.pg, sql=f'CREATE DATABASE "{name}"')
        try:
            await run(args.pg.rsplit("/", 1)[0] + "/" + name, args.records, args.creates, args.threads,
                      "PostgreSQL")
        finally:
            await pg_admin(url=args.pg, sql=f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())
