"""A report's CSV export with millions of rows through the web process: rows, MB/s and the process's peak memory.

Issue 15: "A 5M-row CSV export streams with the web process's memory staying under 200 MB". Creates a throwaway
PostgreSQL database, installs crm_sales and crm_reports, generates N deals in the database (``generate_series``,
each created a second after the previous one) and saves, as an administrator, a report of the deals grouped by
their creation time (one row per deal: N rows). Then it starts ``crm serve`` in a process of its own, signs in
over HTTP and downloads ``/reports/reports/<id>/export.csv`` as a stream while sampling the server's resident
memory (``/proc/<pid>/status``: VmRSS every 20 ms, VmHWM the kernel's peak at the end).

By default the server runs in the scaled-out shape (``CRM_REDIS_URL`` set, no worker or scheduler started): the
web process serves requests only, as in production; ``--redis ''`` measures the embedded shape, where the web
process also runs every scheduled job.

Printed: rows received (must equal N: an export is never cut short), MB and MB/s, the server's RSS before, peak
during and after; and, in the same run, the baseline the database alone gives: the same GROUP BY written by
PostgreSQL's ``COPY … TO STDOUT`` (MB/s) and the ratio.

    .venv/bin/python bench/reports_export_memory.py [--rows 5000000] [--pg postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _status(pid: int, key: str) -> float:
    """A ``/proc/<pid>/status`` figure in MB (VmRSS, VmHWM)."""
    text = Path(f"/proc/{pid}/status").read_text()
    found = re.search(rf"^{key}:\s+(\d+) kB", text, re.M)
    return int(found.group(1)) / 1024 if found else 0.0


class Sampler(threading.Thread):
    """The server's RSS every 20 ms while the download runs (VmHWM covers what falls between samples)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, _status(self.pid, "VmRSS"))
            time.sleep(0.02)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def prepare(url: str, rows: int) -> int:
    """Install, seed ``rows`` deals, save the report; its id."""
    from core import datasets, db, lifecycle
    from core.discovery import discover
    from core.runtime import boot
    from core.security.access import Access, policy
    from core.security.principal import load
    from core.security.users import create_user
    from core.settings import Settings

    db.configure(url)
    await lifecycle.ensure_kernel()
    await lifecycle.install(["crm_sales", "crm_reports"], discover())
    await boot(Settings(data_dir=Path(tempfile.mkdtemp()), database_url=url, redis_url=None, secret_key="bench"))
    admin = await create_user("bench_admin", "Bench Admin", "Correct-Horse-42!", roles=["admin"])
    acc = Access(await load(admin, implied=policy().implied))
    table = (await datasets.dataset("crm_sales.opportunities", acc)).table
    stage = table._meta.get_column_by_name("stage")._foreign_key_meta.resolved_references
    first_stage = (await stage.select(stage.id).first())["id"]
    for start in range(0, rows, 1_000_000):
        await table.raw(f"""
            INSERT INTO {table._meta.tablename} (name, stage, state, owner, expected_revenue, created_at)
            SELECT 'Deal ' || i, {int(first_stage)}, 'open', {int(admin)}, 100 + (i::bigint * 7919) % 999900,
                   timestamptz '2020-01-01 00:00:00+00' + i * interval '1 second'
            FROM generate_series({start}, {min(rows, start + 1_000_000) - 1}) AS i""")
    await table.raw(f"VACUUM ANALYZE {table._meta.tablename}")
    from crm_reports import reports

    return await reports.save(acc, {"name": "Every deal", "dataset": "crm_sales.opportunities", "chart": "table",
                                     "spec": {"dimensions": ["created_at"], "measures": ["count", "expected_revenue"]}})


async def find_report(url: str) -> int:
    """The report a kept database holds (``--reuse``)."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT id FROM crm_reports_report WHERE name = 'Every deal'"))
    finally:
        await conn.close()


async def copy_baseline(url: str) -> tuple[int, float]:
    """Bytes and seconds of the same GROUP BY written by PostgreSQL itself (COPY … TO STDOUT, CSV)."""
    import asyncpg

    conn = await asyncpg.connect(url)
    size = 0

    async def sink(chunk: bytes) -> None:
        nonlocal size
        size += len(chunk)

    try:
        started = time.perf_counter()
        await conn.copy_from_query("SELECT created_at, count(*), sum(expected_revenue) FROM crm_sales_opportunity "
                                   "WHERE is_archived = false GROUP BY created_at", output=sink, format="csv")
        return size, time.perf_counter() - started
    finally:
        await conn.close()


def download(base: str, report_id: int) -> tuple[int, int, float]:
    """Lines, bytes and seconds of the CSV export, read as a stream."""
    import httpx

    with httpx.Client(base_url=base, timeout=3600) as client:
        page = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]*)"', page.text)
        assert token, "no CSRF field on the login page"
        signed = client.post("/login", data={"login": "bench_admin", "password": "Correct-Horse-42!",
                                             "csrf_token": token.group(1), "next": "/"})
        assert signed.status_code in (200, 303), signed.status_code
        lines = size = 0
        started = time.perf_counter()
        with client.stream("GET", f"/reports/reports/{report_id}/export.csv") as answer:
            assert answer.status_code == 200, answer.read()[:300]
            for chunk in answer.iter_bytes(1 << 16):
                size += len(chunk)
                lines += chunk.count(b"\n")
        return lines, size, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14",
                        help="the scaled-out shape: jobs and the scheduler run elsewhere, not in the web process "
                             "(none is started: the web process is measured alone); '' for the embedded shape")
    parser.add_argument("--keep", action="store_true", help="keep the database (its name is printed)")
    parser.add_argument("--reuse", default="", help="a database kept by --keep: no install, no seeding")
    args = parser.parse_args()
    from core.testing import pg_admin

    name = args.reuse or f"crm_bench_export_{uuid.uuid4().hex[:8]}"
    if not args.reuse:
        asyncio.run(pg_admin(url=args.pg, sql=f'CREATE DATABASE "{name}"'))
    url = args.pg.rsplit("/", 1)[0] + "/" + name
    server = None
    try:
        started = time.perf_counter()
        report_id = asyncio.run(find_report(url) if args.reuse else prepare(url, args.rows))
        seeded = time.perf_counter() - started
        port = _port()
        env = {**os.environ, "CRM_DATABASE_URL": url, "CRM_DATA_DIR": tempfile.mkdtemp(), "CRM_SECRET_KEY": "bench",
               "CRM_LOG_LEVEL": "warning", "CRM_REDIS_URL": args.redis}
        server = subprocess.Popen([str(Path(sys.executable).parent / "crm"), "serve", "--port", str(port)], env=env,
                                  cwd=ROOT)
        base = f"http://127.0.0.1:{port}"
        import httpx

        for _ in range(300):
            try:
                if httpx.get(base + "/login", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        before = _status(server.pid, "VmRSS")
        sampler = Sampler(server.pid)
        sampler.start()
        lines, size, seconds = download(base, report_id)
        sampler.stop.set()
        sampler.join()
        hwm, after = _status(server.pid, "VmHWM"), _status(server.pid, "VmRSS")
        base_size, base_seconds = asyncio.run(copy_baseline(url))
        load = os.getloadavg()
        mb = size / 1e6
        shape = "web process without jobs (Redis shape)" if args.redis else "web process running the jobs"
        print(f"crm_reports CSV export of {args.rows:,} deals grouped by creation time on PostgreSQL (seeded in "
              f"{seeded:.0f} s), {shape}, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on "
              f"{os.cpu_count()} CPUs")
        print(f"  rows received   {lines - 1:,} of {args.rows:,} ({'complete' if lines - 1 == args.rows else 'CUT'})")
        print(f"  size            {mb:,.1f} MB in {seconds:.1f} s = {mb / seconds:.1f} MB/s")
        print(f"  server RSS      before {before:.0f} MB, peak {max(hwm, sampler.peak):.0f} MB (VmHWM {hwm:.0f}), "
              f"after {after:.0f} MB; target: peak < 200 MB")
        print(f"  baseline COPY   {base_size / 1e6:,.1f} MB in {base_seconds:.1f} s = "
              f"{base_size / 1e6 / base_seconds:.1f} MB/s; export / COPY = "
              f"{(mb / seconds) / (base_size / 1e6 / base_seconds):.2f}")
    finally:
        if server is not None:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
        if args.keep:
            print(f"kept database {name} (--reuse {name}; DROP DATABASE when done)")
        else:
            asyncio.run(pg_admin(url=args.pg, sql=f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
