"""Helpers shared by erp_bridge tests (a uniquely named module: tests of several addons run together)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

LINES = (("P-001", "Widget, blue", "2", "100.00"), ("P-003", "Gadget 小工具", "3", "19.99"))


async def boot_bridge(crm_boot: Callable[..., Awaitable[Any]], backend: Any, *, kind: str = "fake",
                      taxes: dict[str, str] | None = None, **cfg: str) -> Any:
    """Install erp_bridge (and its dependencies), configure backend ``main`` and serve ``backend`` for it.

    ``taxes`` is the tax mapping (CRM rate → ERP tax id, ``""``: no tax); by default 13 % → the fake ERP's tax
    ``"1"`` and 0 % → no tax (a real Tryton's ids differ: pass them)."""
    from erp_bridge import connection
    from erp_bridge import taxes as tax_map

    runtime = await crm_boot("erp_bridge")
    await connection.configure("main", kind, **cfg)
    for rate, erp_tax in (taxes if taxes is not None else {"0.13": "1", "0": ""}).items():
        await tax_map.set_mapping(rate, erp_tax)
    connection.use_backend("main", backend)  # None: drop an earlier test's fake, use the configured kind
    return runtime


async def customer(name: str = "上海 Acme Trading", *, address: bool = True, country: str = "CN") -> int:
    """A person (through crm_contacts' public API) with a postal address unless told otherwise."""
    from crm_contacts.api import add_address, find_or_create_person

    ref, _ = await find_or_create_person(name=name, email=f"buyer{time.time_ns() % 10**9}@example.org",
                                         language="zh_CN")
    if address:
        await add_address(ref.id, line1="1 Century Ave", city="Shanghai", postcode="200120", country=country,
                          primary=True)
    return ref.id


async def order(person_id: int | None, *, currency: str = "EUR", lines: tuple[tuple[str, str, str, str], ...] = LINES,
                tax_rate: Decimal = Decimal("0.13"), publish: bool = True) -> int:
    """A confirmed order recorded through crm_sales' public API: order, lines and the
    ``crm_sales_order_confirmed`` event in one transaction (amounts by crm_sales.pricing's rule).

    ``publish=False``: the same rows without the event (a confirmation the bridge never heard of), written into
    crm_sales' tables directly — tests may reach a dependency's internals to set up such states
    (``core/boundaries.py``); the addon's own code may not."""
    from crm_sales.api import NewOrderLine, create_order
    from crm_sales.models import Order, OrderLine

    from core import db

    if publish:
        return await create_order(person_id=person_id, currency=currency, lines=[
            NewOrderLine(code=code, description=desc, quantity=q, unit_price=p, tax_rate=tax_rate)
            for code, desc, q, p in lines])
    cent = Decimal("0.01")
    rows = [(code, desc, Decimal(q), Decimal(p)) for code, desc, q, p in lines]
    untaxed = [(q * p).quantize(cent) for _, _, q, p in rows]
    taxes = [(u * tax_rate).quantize(cent) for u in untaxed]
    async with db.atomic():
        net, tax = sum(untaxed, Decimal(0)), sum(taxes, Decimal(0))
        new = await Order.insert(Order(person=person_id, currency=currency, untaxed=net, tax=tax, total=net + tax)
                                 ).returning(Order.id)
        order_id = int(new[0]["id"])
        await Order.update({Order.reference: f"CRM-SO-{order_id}"}).where(Order.id == order_id)
        for seq, ((code, desc, q, p), u, t) in enumerate(zip(rows, untaxed, taxes, strict=True), start=1):
            await OrderLine.insert(OrderLine(order=order_id, sequence=seq * 10, code=code, description=desc, quantity=q,
                                             unit_price=p, tax_rate=tax_rate, untaxed=u, tax=t, total=u + t))
    return order_id


async def cancel(order_id: int) -> None:
    """The order cancelled without ``crm_sales_order_cancelled`` (the pull schedule must find it)."""
    from crm_sales.models import Order

    await Order.update({Order.state: "cancelled"}).where(Order.id == order_id)


async def drain(max_rounds: int = 20) -> list[tuple[str, str]]:
    """Run every runnable erp_bridge outbox row through the kernel's job runner, in this task, until none is
    left (retries included, backoff skipped: every order's next try is made due). Returns (actor, outcome) per
    run; an outcome ``retry: <error>`` is a run that left its row to run again."""
    from erp_bridge.models import Binding

    from core import jobs, outbox
    from core.models import Outbox

    ran: list[tuple[str, str]] = []
    for _ in range(max_rounds):
        await Binding.update({Binding.retry_at: None}).where(Binding.retry_at.is_not_null())
        rows = await Outbox.select(Outbox.id, Outbox.actor).where(
            (Outbox.state == "pending") & Outbox.actor.like("erp_bridge.%")).order_by(Outbox.id)
        if not rows:
            break
        for r in rows:
            try:
                await outbox.run_job(jobs.spec(r["actor"]), int(r["id"]))
                after = await Outbox.select(Outbox.state, Outbox.last_error).where(Outbox.id == r["id"]).first()
                waits = after["state"] == "pending"  # told to wait (the order's next try, another job's lock)
                ran.append((r["actor"], f"retry: {after['last_error']}" if waits else after["state"]))
            except Exception as exc:  # a retryable failure: the row is pending again
                ran.append((r["actor"], f"retry: {exc}"))
    return ran


async def binding(order_id: int) -> dict[str, Any]:
    from erp_bridge.models import Binding

    row = await Binding.select().where(Binding.local_id == order_id).first()
    assert row is not None, f"no binding for order {order_id}"
    return dict(row)


async def outbox_row(key: str) -> dict[str, Any]:
    from core.models import Outbox

    row = await Outbox.select().where(Outbox.dedup_key == key).first()
    assert row is not None, key
    return dict(row)


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")
