"""How long a SIGKILLed worker's orders wait, in the production shape: `crm worker` processes and `crm scheduler`
on a Redis of our own, PostgreSQL, a real trytond. N orders are queued; once a quarter is in Tryton one worker is
killed (not restarted: the other carries on). The orders it held — leased at the kill and never renewed after —
are followed until another worker takes them (their lease changes hands) and until they are in Tryton.

    .venv/bin/python bench/erp_lease_recovery.py --orders 300

2026-12-02, 2-core machine (shared), lease 15 s (the default), 2 workers × 2 threads, 300 orders: see
docs/finance.md ("A killed worker's orders") for the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any


async def _run(n: int, workers: int, threads: int, workdir: Path) -> dict[str, Any]:
    from erp_bridge.models import Binding
    from erp_bridge.testing import fault
    from erp_bridge.testing.tryton_server import build_database, running_server, tax_ids

    from core.testing import pg_admin

    db_name = f"crm_lease_{uuid.uuid4().hex[:8]}"
    await pg_admin(f'CREATE DATABASE "{db_name}"', fault.PG_ADMIN)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with running_server(build_database(), workdir / "tryton") as conn, fault.redis_server(workdir) as (redis_url,
                                                                                                          _):
            env = {**os.environ, "CRM_DATABASE_URL": fault.PG_ADMIN.rsplit("/", 1)[0] + "/" + db_name,
                   "CRM_REDIS_URL": redis_url, "CRM_DATA_DIR": str(workdir / "crm"), "CRM_SECRET_KEY": "lease",
                   "CRM_ERP_PASSWORD": conn.password}
            fault._crm(env, "init")
            fault._crm(env, "addons", "install", "erp_bridge")
            fault._crm(env, "erp", "configure", "main", "--kind", "tryton", "--url", conn.url, "--database",
                       conn.database, "--username", conn.username)
            fault._crm(env, "erp", "taxes", "map", "0.13", tax_ids(conn)[Decimal("0.13")])
            log = open(workdir / "workers.log", "ab")  # noqa: SIM115 - closed below

            def spawn(*args: str) -> subprocess.Popen[bytes]:
                return subprocess.Popen([fault.CRM, *args], env=env, stdout=log, stderr=log, start_new_session=True)

            ids = await fault._make_orders(n, redis_url, env)
            pool = [spawn("worker", "--threads", str(threads)) for _ in range(workers)]
            procs.extend(pool)
            procs.append(spawn("scheduler"))
            while (await fault._state(ids))["synced"] < n // 4:
                await asyncio.sleep(0.2)
            os.kill(pool[0].pid, signal.SIGKILL)
            pool[0].wait()
            killed = time.monotonic()

            async def leases() -> dict[int, tuple[str, Any]]:
                rows = await Binding.select(Binding.id, Binding.state, Binding.locked_until).where(
                    Binding.local_id.is_in(ids))
                return {r["id"]: (r["state"], r["locked_until"]) for r in rows}

            at_kill = await leases()
            held = {i for i, (state, until) in at_kill.items() if state == "in_flight" and until is not None}
            taken: dict[int, float] = {}
            synced: dict[int, float] = {}
            first: dict[int, tuple[str, Any]] = {}
            deadline = killed + 300
            while time.monotonic() < deadline:
                now = await leases()
                t = time.monotonic() - killed
                if t >= 6.0 and not first:  # the live worker renewed or released its own by now (every 5 s)
                    first = {i: now[i] for i in held if now[i] == at_kill[i]}
                for i in held:
                    if now[i] != at_kill[i]:
                        taken.setdefault(i, t)
                    if now[i][0] == "synced":
                        synced.setdefault(i, t)
                if first and all(i in synced for i in first):
                    break
                await asyncio.sleep(0.2)
            dead = sorted(first)
            counts = await fault._state(ids)
            while counts["synced"] + counts["failed"] < n and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                counts = await fault._state(ids)
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
            log.close()
            figures = fault.Figures(orders=n)
            await fault._verify(ids, conn, figures)
            return {"orders": n, "held_by_killed": len(dead),
                    "taken_again_max_s": max((taken.get(i, float("nan")) for i in dead), default=0.0),
                    "synced_max_s": max((synced.get(i, float("nan")) for i in dead), default=0.0),
                    "all": dict(counts), "problems": figures.problems[:10]}
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        await pg_admin(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)', fault.PG_ADMIN)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="erp-lease-") as tmp:
        result = asyncio.run(_run(args.orders, args.workers, args.threads, Path(tmp)))
    lease = os.environ.get("CRM_X_ERP_LEASE_SECONDS", "15")
    print(f"lease recovery: lease={lease}s orders={result['orders']} held by the killed worker="
          f"{result['held_by_killed']} taken again after ≤{result['taken_again_max_s']:.1f}s, in Tryton after "
          f"≤{result['synced_max_s']:.1f}s; end states {result['all']} problems={result['problems']}")
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
