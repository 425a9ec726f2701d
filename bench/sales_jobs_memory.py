"""Peak RSS and seconds of crm_sales' scheduled jobs over N deals, batched and as they were before batching.

In the embedded shape (SQLite, or PostgreSQL with in-process jobs) the web process runs the scheduled jobs;
before batching the win-probability job loaded every deal and took it to 6.2 GB at 5M deals. This creates a
throwaway PostgreSQL database, installs crm_sales, seeds N deals in SQL (40 % closed, 60 % open over the open
stages, ~0.8 activities and one stage-history row a deal, 0.1 % of the open deals idle for 100 days), then runs
each job in a fresh process and prints its peak RSS (VmHWM, reset after boot) beside the RSS after boot. The
baseline, in the same run, is the job's code before batching (``git show BEFORE:…``, loaded as a module).

    .venv/bin/python bench/sales_jobs_memory.py [--deals 1000000] [--batch 2000]
        [--before flag_stalled_deals,train_win_model]   # the old train_win_model: ~19 ms a deal, keep N small
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

BEFORE = "cd9be1c~1"  # the last commit whose jobs read every deal at once
ROOT = Path(__file__).resolve().parent.parent
SEED = [
    """INSERT INTO crm_sales_opportunity (name, stage, state, owner, team, source, region, expected_revenue,
       probability, stage_entered_at, closed_at)
       SELECT 'Deal ' || g,
              CASE WHEN g % 10 < 2 THEN $1 WHEN g % 10 < 4 THEN $2 ELSE ($3::int[])[1 + g % cardinality($3)] END,
              CASE WHEN g % 10 < 2 THEN 'won' WHEN g % 10 < 4 THEN 'lost' ELSE 'open' END,
              $4, $5, (ARRAY['web', 'referral', 'fair'])[1 + g % 3], (ARRAY['north', 'south', 'east'])[1 + g % 5 % 3],
              (g % 7) * 30000, 20,
              now() - CASE WHEN g % 1000 = 5 THEN interval '100 days' ELSE interval '1 minute' * (g % 100) END,
              CASE WHEN g % 10 < 4 THEN now() END
       FROM generate_series(1, $6) g""",
    """INSERT INTO crm_sales_stage_history (opportunity, stage, entered_at)
       SELECT id, ($1::int[])[1 + id % cardinality($1)], now() FROM crm_sales_opportunity""",
    """INSERT INTO crm_sales_activity (kind, subject, due_at, owner, opportunity, created_at, reminded_at)
       SELECT 'call', 'Call', now(), owner, id, now() - interval '1 hour' * (id % 50), now()
       FROM crm_sales_opportunity WHERE id % 5 <> 0 AND id % 1000 <> 5""",
]


def _module(path: str) -> object:
    """The file at ``path`` as it was in ``BEFORE``, imported under another name."""
    text = subprocess.run(["git", "show", f"{BEFORE}:{path}"], cwd=ROOT, check=True, capture_output=True).stdout
    file = Path(tempfile.mkdtemp()) / "before.py"
    file.write_bytes(text)
    spec = importlib.util.spec_from_file_location(f"before_{Path(path).stem}", file)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def child(url: str, job: str, version: str, batch: int) -> None:
    from core import db
    from core.runtime import boot
    from core.settings import Settings

    db.configure(url)
    await boot(Settings(data_dir=Path(tempfile.mkdtemp()), database_url=url, redis_url=None, secret_key="bench"))
    from crm_sales import activities, win

    if version == "before":
        win = _module("addons/crm_sales/crm_sales/win.py")  # type: ignore[assignment]
        activities = _module("addons/crm_sales/crm_sales/activities.py")  # type: ignore[assignment]
    kw = {} if version == "before" else {"batch": batch}
    booted = _rss_mb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM: the peak measured is the job's, not boot's
    start = time.perf_counter()
    if job == "train_win_model":
        result = await win.rescore(await win.train(**kw), **kw)
    else:
        result = len(await activities.flag_stalled(**kw))
    seconds = time.perf_counter() - start
    peak = _rss_mb("VmHWM")
    print(json.dumps({"booted": booted, "peak": peak, "seconds": seconds, "result": result}))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deals", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument(
        "--before",
        default="flag_stalled_deals,train_win_model",
        help="jobs to run as before batching too (the baseline; '' for none)",
    )
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--child", nargs=3, metavar=("URL", "JOB", "VERSION"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        await child(*args.child, args.batch)
        return
    import asyncpg

    from core import db, lifecycle
    from core.discovery import discover
    from core.security.users import create_team, create_user
    from core.testing import pg_admin

    name = f"crm_bench_{uuid.uuid4().hex[:8]}"
    await pg_admin(url=args.pg, sql=f'CREATE DATABASE "{name}"')
    url = args.pg.rsplit("/", 1)[0] + "/" + name
    try:
        db.configure(url)
        await lifecycle.ensure_kernel()
        await lifecycle.install(["crm_sales"], discover())
        from crm_sales.models import PipelineStage

        rep = await create_user("bench_rep", "Rep", "Correct-Horse-42!", roles=["sales_rep"])
        team = await create_team("Bench team", leader=rep, members=[rep])
        stages = list(await PipelineStage.select())
        open_ = [s["id"] for s in stages if not s["is_won"] and not s["is_lost"]]
        won = next(s["id"] for s in stages if s["is_won"])
        lost = next(s["id"] for s in stages if s["is_lost"])
        conn = await asyncpg.connect(url)
        try:
            start = time.perf_counter()
            await conn.execute(SEED[0], won, lost, open_, rep, team, args.deals)
            await conn.execute(SEED[1], open_)
            await conn.execute(SEED[2])
            await conn.execute("ANALYZE")
            print(f"seeded {args.deals:,} deals in {time.perf_counter() - start:.0f} s")
            for job in ("flag_stalled_deals", "train_win_model"):
                figures = {}
                for version in ("batched", "before") if job in args.before.split(",") else ("batched",):
                    await conn.execute(
                        "UPDATE crm_sales_opportunity SET stall_alerted_at = NULL WHERE stall_alerted_at IS NOT NULL"
                    )
                    load = os.getloadavg()
                    run = subprocess.run(
                        [sys.executable, __file__, "--batch", str(args.batch), "--child", url, job, version],
                        cwd=ROOT,
                        capture_output=True,
                        text=True,
                    )
                    if run.returncode:  # the code before batching may not cope with N deals at all: say how
                        print(f"{job:20} {version:8} FAILED: {run.stderr.strip().splitlines()[-1][:300]}")
                        continue
                    out = run.stdout
                    f = figures[version] = json.loads(out.strip().splitlines()[-1])
                    print(
                        f"{job:20} {version:8} peak RSS {f['peak']:7.0f} MB (after boot {f['booted']:4.0f} MB)"
                        f"  {f['seconds']:7.1f} s  result {f['result']:,}"
                        f"  load {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
                    )
                if "before" in figures:
                    b, a = figures["before"], figures["batched"]
                    print(
                        f"{job:20} ratio    peak RSS {a['peak'] / b['peak']:.2f}  seconds "
                        f"{a['seconds'] / b['seconds']:.2f}  same result: {a['result'] == b['result']}"
                    )
        finally:
            await conn.close()
    finally:
        await pg_admin(url=args.pg, sql=f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())
