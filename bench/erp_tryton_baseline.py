"""Orders/s pushed to a real trytond through erp_bridge, against the same sales made with proteus directly and
against Tryton's own in-process cost (bench/erp_tryton_floor.py), all in the same run.

    .venv/bin/python bench/erp_tryton_baseline.py [-n 60] [--chunk 20] [--crm-db sqlite|postgres]

One trytond (the cached test database, SQLite) serves every side. In rounds of ``--chunk`` orders per side:
- **erp_bridge, batched**: ``chunk`` orders confirmed in a throw-away CRM database (order, lines and the
  ``crm_sales_order_confirmed`` event in one transaction: one outbox row and an in-flight binding each), then
  their outbox rows run in order by the kernel's job runner (``core.outbox.run_job`` → ``erp_bridge.push_order``):
  the first job leases every waiting binding (up to ``chunk``), reads the orders through ``crm_sales.api`` and
  customers through ``crm_contacts.api``, pushes them with ``TrytonBackend.push_orders`` (one create, each
  workflow button once) and writes the bindings; the other jobs find their order synced. Only the sync is
  timed; the time spent waiting for trytond's answers is printed apart from the CRM side's.
- **erp_bridge, one order a job**: the same with batches of 1 (the path before batching).
- **proteus (baseline)**: the same sales — under ``DIRECT-`` references and party codes — made with proteus
  over XML-RPC the way a Tryton script would: party found by code or created with its address and e-mail,
  sale with product, quantity, price and description per line (Tryton's on_changes run), quote, confirm,
  process. Products and the currency are looked up once and cached.
- **Tryton in-process**: the same sales made by trytond's models in one process, no RPC and no CRM, a chunk
  per transaction: the ceiling for any client of this Tryton on this machine.
Every side ends with sales in state ``processing`` and their draft invoices; one warm-up order each is not timed.
Also printed: ``push_order`` again on a sale that is already there (the retry path), through the backend.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

LINES = (("P-001", "Widget, blue", Decimal(2), Decimal("100.00")),
         ("P-003", "Gadget 小工具", Decimal(3), Decimal("19.99")))
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _ms(values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    return f"median={statistics.median(ms):7.1f} ms  p95={p95:7.1f} ms"



async def crm_setup(url: str, data_dir: Path, conn: Any) -> None:
    from erp_bridge import connection

    from core import db, lifecycle
    from core.discovery import discover
    from core.runtime import boot
    from core.settings import Settings

    db.configure(url)
    found = discover()
    await lifecycle.install(["erp_bridge"], found)
    await boot(Settings(data_dir=data_dir, database_url=url, redis_url=None, secret_key="bench"), found=found)
    await connection.configure("main", "tryton", url=conn.url, database=conn.database, username=conn.username,
                               password=conn.password)
    from erp_bridge import taxes
    from erp_bridge.testing.tryton_server import tax_ids

    await taxes.set_mapping("0.13", tax_ids(conn)[Decimal("0.13")])  # the CRM's 13 % → Tryton's 13 % tax


async def crm_orders(n: int) -> list[int]:
    """N confirmed orders over n/4 customers, written like crm_sales' acceptance writes them."""
    from crm_contacts.api import find_or_create_person
    from crm_contacts.models import Address
    from crm_sales.models import Order, OrderLine

    from core import db, hooks

    people = []
    for i in range(max(1, n // 4)):
        ref, _ = await find_or_create_person(name=f"Bench Customer {i} {uuid.uuid4().hex[:6]}",
                                             email=f"bench{i}.{uuid.uuid4().hex[:6]}@example.org")
        await Address.insert(Address(person=ref.id, line1=f"{i} Century Ave", city="Shanghai", postcode="200120",
                                     country="CN", is_primary=True))
        people.append(ref.id)
    cent, rate = Decimal("0.01"), Decimal("0.13")
    ids = []
    for i in range(n):
        untaxed = [(q * p).quantize(cent) for _, _, q, p in LINES]
        taxes = [(u * rate).quantize(cent) for u in untaxed]
        async with db.atomic():
            net, tax = sum(untaxed, Decimal(0)), sum(taxes, Decimal(0))
            rows = await Order.insert(Order(person=people[i % len(people)], currency="EUR", untaxed=net, tax=tax,
                                            total=net + tax)).returning(Order.id)
            oid = int(rows[0]["id"])
            await Order.update({Order.reference: f"CRM-SO-{oid}"}).where(Order.id == oid)
            for seq, ((code, desc, q, p), u, t) in enumerate(zip(LINES, untaxed, taxes, strict=True), start=1):
                await OrderLine.insert(OrderLine(order=oid, sequence=seq * 10, code=code, description=desc, quantity=q,
                                                 unit_price=p, tax_rate=rate, untaxed=u, tax=t, total=u + t))
            await hooks.publish("crm_sales_order_confirmed", order_id=oid)
        ids.append(oid)
    return ids


async def bridge_push(order_ids: list[int], batch: int) -> float:
    """Run the orders' outbox rows through the kernel's job runner, in order, with batches of ``batch``;
    seconds for all of them (the first job of a batch pushes it, the others find their order synced)."""
    from erp_bridge import sync

    from core import jobs, outbox
    from core.models import Outbox

    sync.BATCH = batch
    job = jobs.spec("erp_bridge.push_order")
    rows = [await Outbox.select(Outbox.id).where(Outbox.dedup_key == f"push-order:{oid}").first()
            for oid in order_ids]
    t = time.perf_counter()
    for row in rows:
        await outbox.run_job(job, int(row["id"]))
    return time.perf_counter() - t


class Proteus:
    """The baseline: the same sale made with proteus, as a Tryton script would (lookups it can cache, cached)."""

    def __init__(self, conn: Any) -> None:
        from erp_bridge.testing.tryton_server import proteus_config
        from proteus import Model

        self.cfg = proteus_config(conn)
        self.Party = Model.get("party.party", config=self.cfg)
        self.Sale = Model.get("sale.sale", config=self.cfg)
        self.products = {p.code: p for p in Model.get("product.product", config=self.cfg).find(
            [("code", "in", [c for c, *_ in LINES])])}
        (self.eur,) = Model.get("currency.currency", config=self.cfg).find([("code", "=", "EUR")])
        (self.cn,) = Model.get("country.country", config=self.cfg).find([("code", "=", "CN")])

    def push(self, payload: Any) -> int:
        code = f"DIRECT-{payload.customer.ref}"
        found = self.Party.find([("code", "=", code)], limit=1)
        if found:
            party = found[0]
        else:
            party = self.Party(name=payload.customer.name, code=code)
            address = party.addresses[0] if party.addresses else party.addresses.new()
            a = payload.customer.address
            address.street_unstructured, address.city, address.postal_code = a.street, a.city, a.zip
            address.country = self.cn
            if payload.customer.email:
                party.contact_mechanisms.new(type="email", value=payload.customer.email)
            party.save()
        sale = self.Sale()
        sale.party = party
        sale.reference = f"DIRECT-{payload.ref}"
        sale.currency = self.eur
        sale.sale_date = payload.order_date
        for ln in payload.lines:
            line = sale.lines.new()
            line.product = self.products[ln.product_code]
            line.quantity = float(ln.quantity)
            line.unit_price = ln.unit_price
            line.description = ln.description
        sale.save()
        sale.click("quote")
        sale.click("confirm")
        if sale.state == "confirmed":
            sale.click("process")
        assert sale.state == "processing", sale.state
        return int(sale.id)

    def timed(self, payloads: list[Any]) -> list[float]:
        times = []
        for payload in payloads:
            t = time.perf_counter()
            self.push(payload)
            times.append(time.perf_counter() - t)
        return times


async def main(n: int, chunk: int, crm_db: str) -> int:
    from erp_bridge import sales
    from erp_bridge.backends.tryton import TrytonBackend
    from erp_bridge.models import Binding
    from erp_bridge.testing.tryton_server import build_database, running_server

    from core.testing import pg_admin

    started = time.monotonic()
    tryton_db = build_database()
    print(f"{'tryton db build (or cache hit)':<34} {time.monotonic() - started:7.2f} s")
    pg_name = f"crm_bench_{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="erp-bench-") as tmp:
        if crm_db == "postgres":
            await pg_admin(f'CREATE DATABASE "{pg_name}"', PG_ADMIN)
            url = PG_ADMIN.rsplit("/", 1)[0] + "/" + pg_name
        else:
            url = f"sqlite:///{Path(tmp) / 'crm.sqlite3'}"
        try:
            started = time.monotonic()
            with running_server(tryton_db, Path(tmp) / "tryton") as conn:
                print(f"{'trytond start':<34} {time.monotonic() - started:7.2f} s")
                await crm_setup(url, Path(tmp), conn)
                direct = Proteus(conn)
                warm = await crm_orders(1)
                await bridge_push(warm, 1)  # warm-up: login, first party, model definitions
                direct.timed([await sales.build_payload(await sales.load_order(warm[0]))])
                ids: list[int] = []
                payloads: list[Any] = []
                took = {"batched": 0.0, "one by one": 0.0, "proteus": 0.0}
                in_erp = _time_erp_calls()
                for _ in range(0, n, chunk):  # rounds, so load on the machine hits every side alike
                    for side in ("batched", "one by one"):
                        round_ids = await crm_orders(chunk)
                        in_erp[side] = in_erp.get(side, 0.0) - in_erp["total"]
                        took[side] += await bridge_push(round_ids, chunk if side == "batched" else 1)
                        in_erp[side] += in_erp["total"]
                        ids += round_ids
                    round_payloads = [await sales.build_payload(await sales.load_order(i)) for i in round_ids]
                    took["proteus"] += sum(direct.timed(round_payloads))
                    payloads += round_payloads
                n = len(payloads)
                synced = await Binding.count().where(Binding.local_id.is_in(ids) & (Binding.state == "synced"))
                backend = TrytonBackend(conn.url, conn.database, conn.username, conn.password)
                again = []
                for payload in payloads[:chunk]:
                    t = time.perf_counter()
                    backend.push_order(payload)
                    again.append(time.perf_counter() - t)
                calls = _count_calls(backend, payloads[0])
                backend.close()
        finally:
            if crm_db == "postgres":
                await pg_admin(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)', PG_ADMIN)
    rate = {side: n / seconds for side, seconds in took.items()}
    floor = subprocess.run([sys.executable, str(Path(__file__).with_name("erp_tryton_floor.py")), "-n", str(n),
                            "--chunk", str(chunk)], capture_output=True, text=True, check=True).stdout.strip()
    rate["tryton"] = float(floor.split("orders/s")[0].split()[-1])
    print(f"{'erp_bridge, batches of ' + str(chunk):<34} n={n:<4} {rate['batched']:6.2f} orders/s  "
          f"({took['batched'] / n * 1000:.0f} ms/order)")
    print(f"{'  of which waiting for Tryton':<34} n={n:<4} {in_erp['batched'] / n * 1000:6.0f} ms/order "
          f"(the rest: the CRM side, {(took['batched'] - in_erp['batched']) / n * 1000:.0f} ms/order)")
    print(f"{'erp_bridge, one order a job':<34} n={n:<4} {rate['one by one']:6.2f} orders/s  "
          f"({took['one by one'] / n * 1000:.0f} ms/order)")
    print(f"{'proteus direct (baseline)':<34} n={n:<4} {rate['proteus']:6.2f} orders/s  "
          f"({took['proteus'] / n * 1000:.0f} ms/order)")
    print(floor)
    print(f"{'push_order, sale already there':<34} n={len(again):<4} {_ms(again)}")
    print(f"bindings synced: {synced}/{2 * n} (CRM on {crm_db})")
    print(calls)
    print(f"ratio erp_bridge batched / proteus: {rate['batched'] / rate['proteus']:.2f}x the baseline's orders/s; "
          f"one order a job: {rate['one by one'] / rate['proteus']:.2f}x")
    print(f"ratio erp_bridge batched / Tryton in-process: {rate['batched'] / rate['tryton']:.2f} "
          f"(the bridge's overhead over Tryton's own work: {took['batched'] / n * rate['tryton'] - 1:.0%})")
    return 0 if synced == 2 * n else 1


def _time_erp_calls() -> dict[str, float]:
    """Seconds the bridge spends waiting for trytond's answers, summed in ``["total"]``."""
    from erp_bridge.backends.tryton import TrytonBackend

    spent = {"total": 0.0}
    post = TrytonBackend._post

    def timed(self: Any, *args: Any, **kw: Any) -> Any:
        t = time.perf_counter()
        try:
            return post(self, *args, **kw)
        finally:
            spent["total"] += time.perf_counter() - t

    TrytonBackend._post = timed  # type: ignore[method-assign]
    return spent


def _count_calls(backend: Any, payload: Any) -> str:
    """RPC calls a new sale (customer already in Tryton) costs through a fresh backend, then a warm one."""
    from dataclasses import replace

    counts = []
    post = backend._post

    def counting(*args: Any, **kw: Any) -> Any:
        counts[-1] += 1
        return post(*args, **kw)

    backend._post = counting
    try:
        for run in ("cold", "warm"):
            counts.append(0)
            backend.push_order(replace(payload, ref=f"{payload.ref}-COUNT-{run}"))
    finally:
        backend._post = post
    return f"RPC calls per new sale: {counts[0]} on a fresh backend (login included), {counts[1]} after"


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=40, help="orders per side (default 40)")
    parser.add_argument("--chunk", type=int, default=20, help="orders per round and side, the batch size")
    parser.add_argument("--crm-db", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.n, args.chunk, args.crm_db)))
