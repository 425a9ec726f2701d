"""The fault run: N orders synced to a real trytond by `crm worker` processes on a Redis of our own, while
workers are SIGKILLed again and again and Redis is restarted once (it keeps nothing on disk, so `crm
scheduler`'s outbox sweep must recover the lost messages). Loopback only, bounded, self-stopping.

Used by tests/erp/test_fault.py (small N) and bench/erp_fault.py (10k orders, ≥ 10 kills).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from erp_bridge.testing.tryton_server import TrytonConnection, build_database, free_port, running_server, tax_ids

PG_ADMIN = os.environ.get("CRM_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
CRM = str(Path(sys.executable).parent / "crm")


@dataclass
class Figures:
    orders: int
    kills: int = 0
    kills_in_flight: int = 0  # kills made while some order was not synced yet (the ones that test anything)
    redis_restarts: int = 0
    duplicates_prevented: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"fault run: orders={self.orders} worker_kills={self.kills} (in flight {self.kills_in_flight}) "
                f"redis_restarts={self.redis_restarts} "
                f"duplicates_prevented={self.duplicates_prevented} time={self.seconds:.1f}s "
                f"({self.orders / max(self.seconds, 0.001):.1f} orders/s) problems={len(self.problems)}")


@contextmanager
def redis_server(workdir: Path) -> Iterator[tuple[str, Any]]:
    """A throw-away redis-server without persistence; yields (url, restart())."""
    port = free_port()
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                 "--appendonly", "no", "--dir", str(workdir)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        procs.append(proc)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout.strip() == b"PONG":
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def restart() -> None:
        procs[-1].kill()
        procs[-1].wait(10)
        start()

    start()
    try:
        yield f"redis://127.0.0.1:{port}/0", restart
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)



def _crm(env: dict[str, str], *args: str, stdin: str = "") -> str:
    out = subprocess.run([CRM, *args], env=env, capture_output=True, text=True, input=stdin, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"crm {' '.join(args)} failed: {out.stderr[-2000:]}")
    return out.stdout


async def _make_orders(n: int, redis_url: str, env: dict[str, str]) -> list[int]:
    """N confirmed orders, recorded through crm_sales' public API (order + event in one transaction)."""
    from crm_contacts.api import add_address, find_or_create_person
    from crm_sales.api import NewOrderLine, create_order

    from core.runtime import boot
    from core.settings import Settings

    await boot(Settings(data_dir=Path(env["CRM_DATA_DIR"]), database_url=env["CRM_DATABASE_URL"],
                        redis_url=redis_url, secret_key=env["CRM_SECRET_KEY"]))
    people: list[int] = []
    for i in range(max(1, n // 20)):
        ref, _ = await find_or_create_person(name=f"Fault Customer {i}", email=f"fault{i}@example.org")
        await add_address(ref.id, line1=f"{i} Century Ave", city="Shanghai", country="CN")
        people.append(ref.id)
    line = NewOrderLine(code="P-001", description="Widget", quantity=1, unit_price=100, tax_rate="0.13")
    return [await create_order(person_id=people[i % len(people)], currency="EUR", lines=[line]) for i in range(n)]


async def _state(ids: list[int]) -> Counter[str]:
    from erp_bridge.models import Binding

    rows = await Binding.select(Binding.state).where(Binding.local_id.is_in(ids))
    counts = Counter(r["state"] for r in rows)
    counts["missing"] = len(ids) - len(rows)
    return counts


async def _verify(ids: list[int], conn: TrytonConnection, figures: Figures) -> None:
    from erp_bridge.backends.tryton import TrytonBackend
    from erp_bridge.models import Binding

    backend = TrytonBackend(conn.url, conn.database, conn.username, conn.password, timeout=120)
    try:
        sales = backend.call("model.sale.sale.search_read", [("reference", "like", "CRM-SO-%")], 0, None, None,
                             ["reference"])
    finally:
        backend.close()
    by_ref: dict[str, list[str]] = {}
    for s in sales:
        by_ref.setdefault(s["reference"], []).append(str(s["id"]))
    bindings = {r["local_id"]: r for r in await Binding.select().where(Binding.local_id.is_in(ids))}
    for oid in ids:
        found = by_ref.get(f"CRM-SO-{oid}", [])
        b = bindings.get(oid)
        if len(found) != 1:
            figures.problems.append(f"CRM-SO-{oid}: {len(found)} sale(s) in Tryton")
        elif b is None or b["state"] != "synced" or b["external_id"] != found[0]:
            figures.problems.append(f"CRM-SO-{oid}: binding {None if b is None else (b['state'], b['external_id'])}"
                                    f" but Tryton sale {found[0]}")
    figures.duplicates_prevented = sum(int(b["reruns"]) for b in bindings.values())


def run(n: int, *, workers: int = 3, threads: int = 4, kill_every: float = 4.0, min_kills: int = 3,
        max_kills: int = 6, deadline: float = 600.0, workdir: Path) -> Figures:
    """Run the whole scenario; never raises for a lost/duplicated order, it lands in ``figures.problems``.
    Kills stop at ``max_kills``: each one strands its orders until their lease runs out (10 s, the default) and
    its lost messages until the outbox sweep sends them again, so killing forever would only measure that."""
    return asyncio.run(_run(n, workers, threads, kill_every, min_kills, max_kills, deadline, workdir))


async def _run(n: int, workers: int, threads: int, kill_every: float, min_kills: int, max_kills: int,
               deadline: float, workdir: Path) -> Figures:
    from core.testing import pg_admin

    figures = Figures(orders=n)
    db_name = f"crm_fault_{uuid.uuid4().hex[:8]}"
    await pg_admin(f'CREATE DATABASE "{db_name}"', PG_ADMIN)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with running_server(build_database(), workdir / "tryton") as conn, redis_server(workdir) as (redis_url,
                                                                                                    restart):
            env = {**os.environ, "CRM_DATABASE_URL": PG_ADMIN.rsplit("/", 1)[0] + "/" + db_name,
                   "CRM_REDIS_URL": redis_url, "CRM_DATA_DIR": str(workdir / "crm"), "CRM_SECRET_KEY": "fault",
                   "CRM_ERP_PASSWORD": conn.password}
            _crm(env, "init")
            _crm(env, "addons", "install", "erp_bridge")
            _crm(env, "erp", "configure", "main", "--kind", "tryton", "--url", conn.url, "--database",
                 conn.database, "--username", conn.username)
            _crm(env, "erp", "taxes", "map", "0.13", tax_ids(conn)[Decimal("0.13")])  # the orders' 13 %
            log = open(workdir / "workers.log", "ab")  # noqa: SIM115 - closed with the processes below

            def spawn(*args: str) -> subprocess.Popen[bytes]:
                return subprocess.Popen([CRM, *args], env=env, stdout=log, stderr=log, start_new_session=True)

            started = time.monotonic()
            ids = await _make_orders(n, redis_url, env)
            pool = [spawn("worker", "--threads", str(threads)) for _ in range(workers)]
            procs.extend(pool)
            procs.append(spawn("scheduler"))
            rng = random.Random(42)
            next_kill = time.monotonic() + kill_every
            while time.monotonic() - started < deadline:
                counts = await _state(ids)
                # all synced, or the rest failed for good (nobody re-drives here): waiting longer changes nothing
                if counts["synced"] + counts["failed"] == n and figures.kills >= min_kills:
                    break
                if time.monotonic() >= next_kill and figures.kills < max_kills and (
                        counts["synced"] < n or figures.kills < min_kills):
                    victim = rng.randrange(len(pool))
                    os.kill(pool[victim].pid, signal.SIGKILL)
                    pool[victim].wait()
                    figures.kills += 1
                    figures.kills_in_flight += counts["synced"] < n
                    pool[victim] = spawn("worker", "--threads", str(threads))
                    procs.append(pool[victim])
                    next_kill = time.monotonic() + kill_every
                    if figures.kills == 2 and not figures.redis_restarts:  # every queued message is lost
                        restart()
                        figures.redis_restarts += 1
                await asyncio.sleep(0.5)
            figures.seconds = time.monotonic() - started
            counts = await _state(ids)
            if counts["synced"] != n:
                figures.problems.append(f"not all synced: {dict(counts)}")
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
            log.close()
            await _verify(ids, conn, figures)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        await pg_admin(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)', PG_ADMIN)
    return figures
