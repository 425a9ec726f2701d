"""Contacts import throughput vs. a raw COPY of the same rows, on PostgreSQL and SQLite.

    .venv/bin/python bench/contacts_import.py [N=100000] [--backends=postgres,sqlite] [--workers=0]

Generates N people as CSV (Chinese and English names, CN phones in mixed formats, emails, regions, 2 %
in-file duplicates, 1 % bad phones), then imports them with ``Importer`` (standardization in worker processes
from ``Importer.PARALLEL_FROM`` rows, ``--workers=0`` for one process; exact duplicate keys against the base
and inside the file; one transaction per chunk; new people and their audit rows by COPY on PostgreSQL;
per-row result rows) into a fresh database, and, in the same run, ``COPY``s the already-standardized rows into
an indexed table with the same columns: that is the floor any importer pays for moving bytes into an index.
Prints rows/s and the ratio with the load average, and the CPU time a row costs each way (the importing
process, its workers, its database processes; the COPY's database process): on a machine others load, the wall
ratio moves with their load, the CPU figures much less.
"""

from __future__ import annotations

import asyncio
import io
import os
import random
import sys
import tempfile
import time
import uuid

N = int(next((a for a in sys.argv[1:] if a.isdigit()), "100000"))
BACKENDS = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--backends=")), "postgres,sqlite")
WORKERS = next((int(a.split("=", 1)[1]) for a in sys.argv[1:] if a.startswith("--workers=")), None)  # 0: inline
PG_ADMIN = os.environ.get("CRM_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def make_csv(n: int) -> bytes:
    rnd = random.Random(7)
    surnames = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
    given = ["伟", "芳", "娜", "敏", "静", "强", "磊", "军", "洋", "杰"]
    cities = ["北京市", "上海", "广东省深圳市", "浙江杭州", "成都", "Nanjing", "武汉市"]
    out = io.StringIO()
    out.write("姓名,手机,邮箱,公司,地区\n")
    for i in range(n):
        name = rnd.choice(surnames) + rnd.choice(given) if i % 3 else f"person {i} smith"
        phone = f"{rnd.choice(['138', '139', '150', '186'])}{i:08d}"
        phone = {0: phone, 1: f"+86 {phone[:3]} {phone[3:7]} {phone[7:]}", 2: f"{phone[:3]}-{phone[3:]}"}[i % 3]
        if i % 100 == 98:  # not 99: that row is also a repeat (i % 50 == 49) and would lose its bad phone
            phone = "12345"  # invalid: the row fails, the others go on
        if i % 50 == 49:
            phone = f"{rnd.choice(['138', '139', '150', '186'])}{i - 1:08d}"  # repeats the previous row's key
        out.write(f"{name},{phone},user{i}@Example.com,,{rnd.choice(cities)}\n")
    return out.getvalue().encode()


async def run_backend(backend: str, content: bytes) -> None:
    from crm_contacts.importing import Importer, auto_mapping
    from crm_contacts.tabular import read_table

    from core import db, lifecycle
    from core.discovery import discover
    from core.runtime import boot
    from core.security.access import Access
    from core.security.principal import Principal
    from core.settings import Settings

    tmp = tempfile.mkdtemp()
    name = f"crm_bench_{uuid.uuid4().hex[:8]}"
    if backend == "postgres":
        import asyncpg

        conn = await asyncpg.connect(PG_ADMIN)
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()
        url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    else:
        url = f"sqlite:///{tmp}/bench.sqlite3"
    try:
        db.configure(url)
        await lifecycle.ensure_kernel()
        await lifecycle.install(["crm_contacts"], discover())
        await boot(Settings(data_dir=__import__("pathlib").Path(tmp), database_url=url, redis_url=None,
                            secret_key="bench"))
        header, rows = read_table(content, "bench.csv")
        admin = Access(Principal(user_id=0, login="bench", name="bench", language="en", roles=frozenset({"admin"})))
        importer = Importer(admin, header, rows, auto_mapping(header), workers=WORKERS)
        workers_before = _children_cpu()
        started, cpu_started = time.perf_counter(), time.process_time()
        results = await importer.run()
        took, main_cpu = time.perf_counter() - started, time.process_time() - cpu_started
        database_cpu = sum(_cpu(pid) for pid in await _backends(url)) if backend == "postgres" else 0.0
        await asyncio.sleep(0.5)  # the worker processes end: their time is counted once they are reaped
        workers_cpu = _children_cpu() - workers_before
        counts: dict[str, int] = {}
        for r in results:
            counts[r.action] = counts.get(r.action, 0) + 1
        rate = len(rows) / took
        how = f"{importer.workers} worker processes" if importer.workers > 1 else "in one process"
        print(f"[{backend}] import {len(rows)} rows ({how}) in {took:.1f} s = {rate:,.0f} rows/s  {counts}  "
              f"load {_load()}")
        cpu = main_cpu + workers_cpu + database_cpu
        per = 1e6 / len(rows)
        print(f"[{backend}] CPU a row: {cpu * per:.0f} µs = importing process {main_cpu * per:.0f} + workers "
              f"{workers_cpu * per:.0f}" + (f" + database {database_cpu * per:.0f}" if backend == "postgres" else ""))
        if backend == "postgres":
            await copy_baseline(url, rate, cpu / len(rows))
    finally:
        if backend == "postgres":
            import asyncpg

            engine = db.current()
            if getattr(engine, "pool", None) is not None:  # the import's pool: closed before its database goes
                await engine.close_connection_pool()
            conn = await asyncpg.connect(PG_ADMIN)
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.close()


async def copy_baseline(url: str, import_rate: float, import_cpu: float) -> None:
    """COPY the standardized rows (as the import stored them) into an indexed copy of the table."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        cols = ["name", "email", "email_key", "phone", "phone_original", "province", "city", "search_text"]
        records = await conn.fetch(f"SELECT {', '.join(cols)} FROM crm_contacts_person")
        await conn.execute("CREATE TABLE bench_copy (LIKE crm_contacts_person INCLUDING ALL)")
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        data = [tuple(r) for r in records]
        cpu_before, started = _cpu(pid), time.perf_counter()
        await conn.copy_records_to_table("bench_copy", records=data, columns=cols)
        took = time.perf_counter() - started
        cpu = (_cpu(pid) - cpu_before) / len(records)
        rate = len(records) / took
        print(f"[postgres] raw COPY of the same {len(records)} rows into the indexed table: {took:.2f} s = "
              f"{rate:,.0f} rows/s, CPU a row {cpu * 1e6:.0f} µs; load {_load()}")
        print(f"[postgres] import/COPY ratio = {import_rate / rate:.3f} (COPY is {rate / import_rate:.1f}x); "
              f"CPU a row, COPY/import = {cpu / import_cpu:.3f} (on 2 idle cores the import could reach "
              f"~{min(1.0, 2 * cpu / import_cpu):.2f} of COPY's speed)")
    finally:
        await conn.close()


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) a process of this machine has used so far (a database backend)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    import multiprocessing
    import resource

    multiprocessing.active_children()  # reaps the pool's ended workers
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def _backends(url: str) -> list[int]:
    """The import's database processes (its pool's connections) still open."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return [int(r[0]) for r in await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")]
    finally:
        await conn.close()


async def main() -> None:
    content = make_csv(N)
    print(f"{N} rows, {len(content) / 1e6:.1f} MB of CSV")
    for backend in BACKENDS.split(","):
        await run_backend(backend, content)


if __name__ == "__main__":
    asyncio.run(main())
