"""Baseline: pushing orders to a real Tryton through TrytonBackend vs. proteus directly.

    PYTHONPATH=addons/erp_bridge .venv/bin/python bench/erp_tryton_baseline.py [N]

Reports the database build (or cache hit), server start, and per-order times for: a new order
pushed through the backend (customer lookup, product/currency checks, create, quote, confirm,
process), the same order pushed again (idempotent path), and a confirmed sale made with proteus
over XML-RPC (what a Tryton user's client does, on_changes included).
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from erp_bridge.backends.base import Address, CustomerPayload, OrderLinePayload, OrderPayload
from erp_bridge.backends.tryton import TrytonBackend
from erp_bridge.testing.tryton_server import (
    build_database,
    create_sale_directly_with_proteus,
    running_server,
)


def _order(n: int) -> OrderPayload:
    customer = CustomerPayload(
        ref=f"CRM-C-{n % 10}",
        name=f"Customer {n % 10}",
        address=Address("1 Road", "Shanghai", "200000", "CN"),
    )
    lines = (
        OrderLinePayload("P-001", "Widget", Decimal("2"), Decimal("100.00")),
        OrderLinePayload("P-003", "Gadget", Decimal("3"), Decimal("19.99")),
    )
    return OrderPayload(
        ref=f"CRM-SO-{n}",
        customer=customer,
        currency="EUR",
        order_date=dt.date.today(),
        lines=lines,
        untaxed=Decimal("259.97"),
        tax=Decimal("33.80"),
        total=Decimal("293.77"),
    )


def _stats(name: str, values: list[float]) -> None:
    ms = sorted(v * 1000 for v in values)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    print(f"{name:<34} n={len(ms):<3} median={statistics.median(ms):7.1f} ms  p95={p95:7.1f} ms")


def main(n: int) -> None:
    started = time.monotonic()
    db = build_database()
    print(f"{'db build (or cache hit)':<34} {time.monotonic() - started:7.2f} s")
    with tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        with running_server(db, Path(tmp)) as conn:
            print(f"{'server start':<34} {time.monotonic() - started:7.2f} s")
            backend = TrytonBackend(conn.url, conn.database, conn.username, conn.password)
            new, again, direct = [], [], []
            for i in range(n):
                t = time.monotonic()
                backend.push_order(_order(i))
                new.append(time.monotonic() - t)
            for i in range(n):
                t = time.monotonic()
                backend.push_order(_order(i))
                again.append(time.monotonic() - t)
            for i in range(n):
                t = time.monotonic()
                create_sale_directly_with_proteus(
                    conn, reference=f"DIRECT-{i}", lines=(("P-001", Decimal(2)), ("P-003", Decimal(3)))
                )
                direct.append(time.monotonic() - t)
            _stats("push_order, new sale", new)
            _stats("push_order, already there", again)
            _stats("proteus direct sale (confirmed)", direct)
            backend.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
