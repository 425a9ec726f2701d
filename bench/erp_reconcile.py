"""Reconciliation of N orders against a real trytond on PostgreSQL: orders/s, seconds, share waiting for Tryton.

    .venv/bin/python bench/erp_reconcile.py [-n 5000] [--seed 20] [--keep]

Setup (not timed):
- Tryton on PostgreSQL: a template database with ``sale`` and ``account_invoice`` activated and the test
  company (``erp_bridge.testing.tryton_server``'s setup) is built once (``trytond-admin``, a few minutes) and
  kept as ``crm_bench_tryton_tpl_<version>_r<rev>``; each run copies it (``CREATE DATABASE … TEMPLATE``).
- ``--seed`` orders are confirmed in a throw-away CRM database (PostgreSQL) and pushed by erp_bridge (sale,
  quote, confirm, process: a draft invoice each), and their invoices pulled into the CRM's copy.
- Making 100k sales through Tryton's workflow would take hours (~13 sales/s in-process, bench/erp_tryton_floor.py),
  so the seed is copied in SQL to reach N: in Tryton's database every row of the seed's sales, sale lines,
  invoices, invoice lines and taxes (ids shifted, references and the invoice lines' origins rewritten, so
  Tryton reads them exactly as the ones its workflow made), and in the CRM's the orders, their bindings and
  the invoice copy. The invoice pull cursor is set past the copies (the incremental pull already saw them).
Timed: ``erp_bridge.reconcile.run`` — the catch-up pull, the keyset sweep of Tryton's invoice ids, the keyset
sweep of the sales carrying ``CRM-SO-``, the bulk comparison and the lines written. Printed: orders/s, seconds,
and the seconds ERP calls were in flight (they overlap the CRM's reads, so CRM + ERP can exceed the total).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

PG = "postgresql://postgres@127.0.0.1:5432"
LINES = (("P-001", "Widget, blue", "2", "100.00"), ("P-003", "Gadget 小工具", "3", "19.99"))
# Tryton's tables a processed sale and its draft invoice occupy: table → {foreign key column: table it points to}
TRYTON_TABLES: dict[str, dict[str, str]] = {
    "sale_sale": {},
    "sale_line": {"sale": "sale_sale"},
    "sale_line-account_tax": {"line": "sale_line"},
    "account_invoice": {},
    "account_invoice_line": {"invoice": "account_invoice"},
    "account_invoice_line-account_tax": {"line": "account_invoice_line"},
    "account_invoice_tax": {"invoice": "account_invoice"},
}


def _psql(sql: str, db: str = "postgres") -> str:
    return subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-Atqc", sql], check=True,
                          capture_output=True, text=True).stdout.strip()


def _conf(directory: Path, port: int = 0) -> Path:
    conf = directory / "trytond.conf"
    conf.write_text(f"[database]\nuri = {PG}/\n\n[web]\nlisten = 127.0.0.1:{port}\n")
    return conf


def tryton_template() -> str:
    """The name of the set-up Tryton template database, built if missing (a few minutes, once)."""
    from erp_bridge.testing.tryton_server import ADMIN_PASSWORD, SETUP_REVISION, trytond_version

    name = f"crm_bench_tryton_tpl_{trytond_version().replace('.', '_')}_r{SETUP_REVISION}"
    if _psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'") == "1":
        return name
    work = Path(tempfile.mkdtemp(prefix="tryton-tpl-"))
    building = f"{name}_building"
    _psql(f'DROP DATABASE IF EXISTS "{building}"')
    _psql(f'CREATE DATABASE "{building}"')
    conf = _conf(work)
    (work / "pass").write_text(ADMIN_PASSWORD)
    env = {**os.environ, "TRYTONPASSFILE": str(work / "pass")}
    started = time.monotonic()
    subprocess.run([str(Path(sys.executable).parent / "trytond-admin"), "-c", str(conf), "-d", building, "-u",
                    "sale", "account_invoice", "--activate-dependencies"], env=env, input="\n", text=True,
                   check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "erp_bridge.testing.tryton_server", "setup", str(conf), building],
                   env=env, check=True, capture_output=True)
    _psql(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
    print(f"{'tryton template built':<40} {time.monotonic() - started:8.1f} s")
    return name


def clone_tryton(db: str, copies: int, crm_span: int) -> None:
    """Copy every seed row ``copies`` times, ids shifted by ``k × max(id)``; sale references ``CRM-SO-<n>`` become
    ``CRM-SO-<n + k × crm_span>`` (the CRM orders copied the same way), invoice line origins follow their sale line."""
    import psycopg

    with psycopg.connect(f"{PG}/{db}") as con:
        cur = con.cursor()
        span: dict[str, int] = {}
        columns: dict[str, list[str]] = {}
        for t in TRYTON_TABLES:
            cur.execute(f'SELECT coalesce(max(id), 0) FROM "{t}"')
            span[t] = int(cur.fetchone()[0])  # type: ignore[index]
            cur.execute("SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                        "ORDER BY ordinal_position", (t,))
            columns[t] = [r[0] for r in cur.fetchall()]
        for t, fks in TRYTON_TABLES.items():
            exprs = []
            for c in columns[t]:
                if c == "id":
                    exprs.append(f'"id" + g.k * {span[t]}')
                elif c in fks:
                    exprs.append(f'"{c}" + g.k * {span[fks[c]]}')
                elif (t, c) == ("sale_sale", "reference"):
                    exprs.append(f"'CRM-SO-' || (substr(\"reference\", 8)::int + g.k * {crm_span})")
                elif (t, c) == ("sale_sale", "number"):
                    exprs.append(f'("id" + g.k * {span[t]})::text')
                elif (t, c) == ("account_invoice_line", "origin"):
                    exprs.append(f"CASE WHEN \"origin\" LIKE 'sale.line,%%' THEN 'sale.line,' || "
                                 f"(substr(\"origin\", 11)::int + g.k * {span['sale_line']}) ELSE \"origin\" END")
                else:
                    exprs.append(f'"{c}"')
            names = ", ".join(f'"{c}"' for c in columns[t])
            cur.execute(f'INSERT INTO "{t}" ({names}) SELECT {", ".join(exprs)} FROM "{t}", '
                        f"generate_series(1, {copies}) AS g(k)")
        for t in TRYTON_TABLES:
            cur.execute(f"SELECT setval(pg_get_serial_sequence('\"{t}\"', 'id'), (SELECT max(id) FROM \"{t}\"))")
        con.commit()


async def clone_crm(copies: int, crm_span: int, sale_span: int, invoice_span: int) -> None:
    """The same copies on the CRM side: orders, bindings and the invoice copy (``CRM-SO-<n + k × span>``)."""
    from core import db

    ref = f"'CRM-SO-' || (substr(order_reference, 8)::int + g.k * {crm_span})"
    changed: dict[str, dict[str, str]] = {  # table → column → expression (id left out: a new serial)
        "crm_sales_order": {"id": f"id + g.k * {crm_span}", "reference": f"'CRM-SO-' || (id + g.k * {crm_span})"},
        "erp_bridge_binding": {"local_id": f"local_id + g.k * {crm_span}",
                               "reference": f"'CRM-SO-' || (local_id + g.k * {crm_span})",
                               "external_id": f"(external_id::int + g.k * {sale_span})::text",
                               "external_number": f"(external_id::int + g.k * {sale_span})::text"},
        "erp_bridge_invoice": {"external_id": f"(external_id::int + g.k * {invoice_span})::text",
                               "order_reference": ref, "sale_id": f"(sale_id::int + g.k * {sale_span})::text"},
    }
    async with db.atomic():
        con = db.current().current_transaction.get().connection  # type: ignore[union-attr]
        for table, exprs in changed.items():
            names = [r["column_name"] for r in await con.fetch(
                "SELECT column_name FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position",
                table) if r["column_name"] != "id" or "id" in exprs]
            values = ", ".join(exprs.get(c, f'"{c}"') for c in names)
            await con.execute(f'INSERT INTO "{table}" ({", ".join(chr(34) + c + chr(34) for c in names)}) '
                              f'SELECT {values} FROM "{table}", generate_series(1, {copies}) AS g(k)')
            await con.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")


async def main(n: int, seed: int, keep: bool) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "addons" / "erp_bridge" / "tests"))
    from erp_bridge import reconcile, sync
    from erp_bridge.models import Binding, PullCursor
    from erp_bridge.testing.tryton_server import _LAUNCHER, ADMIN_PASSWORD, ADMIN_USER, _wait_ready, free_port
    from erp_helpers import customer, drain, order

    from core import db, lifecycle
    from core.discovery import discover
    from core.runtime import boot
    from core.settings import Settings

    template = tryton_template()
    tag = uuid.uuid4().hex[:8]
    tryton_db, crm_db = f"crm_bench_tryton_{tag}", f"crm_bench_{tag}"
    _psql(f'CREATE DATABASE "{tryton_db}" TEMPLATE "{template}"')
    _psql(f'CREATE DATABASE "{crm_db}"')
    work = Path(tempfile.mkdtemp(prefix="erp-reconcile-"))
    port = free_port()
    log = work / "trytond.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", _LAUNCHER, "-c", str(_conf(work, port)), "-d", tryton_db],
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        import erp_bridge.testing.tryton_server as ts

        ts.DB_NAME = tryton_db  # _wait_ready logs in to this database
        _wait_ready(proc, port, log, 300)
        url = f"{PG}/{crm_db}"
        db.configure(url)
        found = discover()
        await lifecycle.install(["erp_bridge"], found)
        await boot(Settings(data_dir=work, database_url=url, redis_url=None, secret_key="bench"), found=found)
        from erp_bridge import connection

        await connection.configure("main", "tryton", url=f"http://127.0.0.1:{port}/", database=tryton_db,
                                   username=ADMIN_USER, password=ADMIN_PASSWORD)
        try:  # where the bridge maps CRM tax rates to the ERP's taxes: 13 % → Tryton's 13 % tax
            from erp_bridge import taxes  # type: ignore[attr-defined,unused-ignore]

            await taxes.set_mapping("0.13", _psql("SELECT min(id) FROM account_tax WHERE rate = 0.13", tryton_db))
        except ImportError:
            pass
        started = time.monotonic()
        people = [await customer(f"Bench Customer {i}") for i in range(max(1, seed // 4))]
        ids = [await order(people[i % len(people)], lines=LINES) for i in range(seed)]
        await drain()
        assert await Binding.count().where(Binding.state == "synced") == seed
        pull_started = time.perf_counter()
        pulled = await sync.pull_invoices()
        pull_rate = pulled / (time.perf_counter() - pull_started)
        print(f"{'seed: orders pushed, invoices pulled':<40} {time.monotonic() - started:8.1f} s  "
              f"(pull: {pull_rate:.0f} invoices/s)")
        copies = max(0, -(-n // seed) - 1)
        if copies:
            started = time.monotonic()
            sale_span = int(_psql("SELECT max(id) FROM sale_sale", tryton_db))
            invoice_span = int(_psql("SELECT max(id) FROM account_invoice", tryton_db))
            clone_tryton(tryton_db, copies, max(ids))
            await clone_crm(copies, max(ids), sale_span, invoice_span)
            last = _psql("SELECT to_char(max(last_modified_at), 'YYYY-MM-DD\"T\"HH24:MI:SS.US') || '|' || max(id) "
                         "FROM (SELECT coalesce(write_date, create_date) AS last_modified_at, id "
                         "FROM account_invoice) s", tryton_db)
            await PullCursor.update({PullCursor.cursor: last}).where(PullCursor.kind == "invoice")
            print(f"{'copies made in SQL (Tryton and CRM)':<40} {time.monotonic() - started:8.1f} s")
        orders = (seed * (copies + 1))
        result = await reconcile.run(trigger="bench")
        stats = result["stats"]
        assert result["counts"]["matched"] == orders, result["counts"]
        seconds, waiting = stats["seconds"], stats["erp_seconds"]
        print(f"{'reconciliation':<40} n={orders:<7} {orders / seconds:8.0f} orders/s  {seconds:7.1f} s  "
              f"waiting for Tryton {waiting:6.1f} s ({waiting / seconds:.0%}, {stats['erp_calls']} calls)")
        print(f"{'':<40} phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in stats["phases"].items()))
    finally:
        proc.kill()
        proc.wait(timeout=10)
        if not keep:
            for name in (tryton_db, crm_db):
                _psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=5000, help="orders to reconcile (default 5000)")
    parser.add_argument("--seed", type=int, default=20,
                        help="orders pushed through Tryton's workflow (the rest: copies)")
    parser.add_argument("--keep", action="store_true", help="keep both databases")
    args = parser.parse_args()
    asyncio.run(main(args.n, args.seed, args.keep))
