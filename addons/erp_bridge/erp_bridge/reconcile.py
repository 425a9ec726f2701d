"""Reconciliation: every synced order and every ERP invoice carrying our reference, classified for finance.

Both sides are compared in the currency's minor unit (``money.minor``). The ERP side is the sum of the
order's non-cancelled invoices as last pulled (the sale's own amounts while it is not invoiced). Every synced
order is also looked up in the ERP by reference, a few at a time, so a second sale carrying our reference
shows as a duplicate and a deleted one as missing. One run is one snapshot: lines of older runs stay for audit.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from core import db
from core.models import Outbox
from erp_bridge import connection, sales
from erp_bridge.backends.base import RemoteOrder
from erp_bridge.models import Binding, ReconciliationLine, ReconciliationRun, RemoteInvoice
from erp_bridge.money import minor
from erp_bridge.sync import now

STATUSES = ("matched", "amount_mismatch", "currency_mismatch", "missing_in_erp", "missing_in_crm", "duplicate",
            "in_flight", "failed")
AMOUNTS = ("untaxed", "tax", "total")
OUR_PREFIX = "CRM-SO-"
LOOKUPS = 8  # ERP look-ups in flight at once: quick for 10k orders, gentle on the ERP


@dataclass
class Side:
    currency: str = ""
    untaxed: Decimal | None = None
    tax: Decimal | None = None
    total: Decimal | None = None


@dataclass
class Line:
    status: str
    reference: str
    crm: Side = field(default_factory=Side)
    erp: Side = field(default_factory=Side)
    order_id: int | None = None
    person_id: int | None = None
    order_date: Any = None
    external_ids: str = ""
    invoice_ids: str = ""
    invoice_number: str = ""
    is_paid: bool = False
    mismatched: str = ""
    detail: str = ""


def compare(crm: Side, erp: Side) -> tuple[str, str]:
    """(status, mismatched amounts) for two sides of one order: currency first, then each amount in minor units."""
    if crm.currency.upper() != erp.currency.upper():
        return "currency_mismatch", ""
    diff = [name for name in AMOUNTS
            if minor(getattr(crm, name), crm.currency) != minor(getattr(erp, name), erp.currency)]
    return ("amount_mismatch" if diff else "matched"), ",".join(diff)


def _side_of_invoices(invoices: list[dict[str, Any]]) -> Side:
    cur = invoices[0]["currency"]
    return Side(cur, *(sum((minor(i[n], cur) for i in invoices), Decimal(0)) for n in AMOUNTS))


def _side_of_order(remote: RemoteOrder) -> Side:
    return Side(remote.currency, remote.untaxed, remote.tax, remote.total)


async def _queued_order_ids() -> set[int]:
    rows = await Outbox.select(Outbox.payload).where(
        (Outbox.actor == "erp_bridge.push_order") & Outbox.state.is_in(["pending", "running"]))
    out: set[int] = set()
    for r in rows:
        payload = json.loads(r["payload"]) if isinstance(r["payload"], str) else r["payload"]
        out.add(int(payload["order_id"]))
    return out


async def _lookup(find_orders: Any, refs: list[str]) -> dict[str, list[RemoteOrder]]:
    slots = asyncio.Semaphore(LOOKUPS)

    async def one(ref: str) -> tuple[str, list[RemoteOrder]]:
        async with slots:
            return ref, await asyncio.to_thread(find_orders, ref)

    return dict(await asyncio.gather(*(one(r) for r in refs)))


async def classify(backend_id: int, find_orders: Any) -> list[Line]:
    """Every line of a reconciliation; ``find_orders(ref)`` asks the ERP (blocking, run in threads)."""
    bindings = {r["local_id"]: r for r in await Binding.select().where(
        (Binding.backend == backend_id) & (Binding.model == sales.ORDER_MODEL))}
    orders = await sales.get_orders(await sales.order_ids())
    queued = await _queued_order_ids()
    remote_of = await _lookup(find_orders, sorted(
        b["reference"] for oid, b in bindings.items()
        if b["state"] == "synced" and oid in orders and orders[oid].state == "confirmed"))
    invoices: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for inv in await RemoteInvoice.select().where(
            (RemoteInvoice.backend == backend_id) & (RemoteInvoice.state != "cancelled")).order_by(RemoteInvoice.id):
        invoices[inv["order_reference"]].append(inv)
    lines: list[Line] = []
    for order_id, order in sorted(orders.items()):
        b = bindings.get(order_id)
        ref = order.reference
        crm = Side(order.currency, order.untaxed, order.tax, order.total)
        line = Line("matched", ref, crm, order_id=order_id, person_id=order.person_id,
                    order_date=order.confirmed_at.date() if order.confirmed_at else None)
        lines.append(line)
        mine = invoices.pop(ref, [])
        line.invoice_ids = ",".join(i["external_id"] for i in mine)
        line.invoice_number = ", ".join(i["number"] for i in mine if i["number"])
        line.is_paid = bool(mine) and all(i["is_paid"] for i in mine)
        if b is None and order_id in queued:
            line.status, line.detail = "in_flight", "queued"
            continue
        if b is None:
            if order.state == "cancelled" and not mine:
                lines.pop()  # never sent, cancelled: nothing for finance
                continue
            line.status, line.detail = "missing_in_erp", "never sent to the ERP"
            continue
        line.external_ids = b["external_id"]
        if b["state"] in ("failed", "in_flight"):
            line.status, line.detail = b["state"], b["last_error"]
            continue
        if order.state == "cancelled":
            ok = b["remote_state"] in ("cancelled", "")
            line.status = "matched" if ok else "in_flight"
            line.detail = "cancelled on both sides" if ok else "cancellation not yet in the ERP"
            continue
        remote = remote_of.get(b["reference"], [])
        line.external_ids = ",".join(o.external_id for o in remote)
        if not remote:
            line.status, line.detail = "missing_in_erp", "the ERP has no sale with this reference"
            continue
        if len(remote) > 1:
            line.status, line.detail = "duplicate", f"{len(remote)} ERP sales carry {ref}"
            line.erp = _side_of_order(remote[0])
            continue
        line.erp = _side_of_invoices(mine) if mine else _side_of_order(remote[0])
        line.status, line.mismatched = compare(crm, line.erp)
        if not mine:
            line.detail = "not invoiced yet: compared with the ERP sale"
    for ref, rest in sorted(invoices.items()):
        if ref.startswith(OUR_PREFIX):  # ours by its reference, unknown to this CRM
            lines.append(Line("missing_in_crm", ref, erp=_side_of_invoices(rest),
                              invoice_ids=",".join(i["external_id"] for i in rest),
                              invoice_number=", ".join(i["number"] for i in rest if i["number"]),
                              is_paid=all(i["is_paid"] for i in rest), detail="no CRM order has this reference"))
    return lines


async def run(trigger: str = "cli") -> dict[str, Any]:
    """Classify, store the run and its lines; returns ``{"run_id", "counts", "lines"}``."""
    cfg = await connection.active()
    backend = connection.open_backend(cfg)
    rows = await ReconciliationRun.insert(ReconciliationRun(backend=cfg.id, trigger=trigger)).returning(
        ReconciliationRun.id)
    run_id = int(rows[0]["id"])
    try:
        lines = await classify(cfg.id, backend.find_orders)
    except Exception as exc:
        await ReconciliationRun.update({ReconciliationRun.error: f"{type(exc).__name__}: {exc}"[:4000],
                                        ReconciliationRun.finished_at: now()}).where(ReconciliationRun.id == run_id)
        raise
    counts = {s: 0 for s in STATUSES}
    customers = await _customer_names({ln.person_id for ln in lines if ln.person_id})
    async with db.atomic():
        for chunk in range(0, len(lines), 500):
            await ReconciliationLine.insert(*[_row(run_id, ln, customers) for ln in lines[chunk:chunk + 500]])
        for ln in lines:
            counts[ln.status] += 1
        await ReconciliationRun.update({ReconciliationRun.counts: counts,
                                        ReconciliationRun.finished_at: now()}).where(ReconciliationRun.id == run_id)
    return {"run_id": run_id, "counts": counts, "lines": len(lines)}


def _row(run_id: int, ln: Line, customers: dict[int, str]) -> ReconciliationLine:
    return ReconciliationLine(
        run=run_id, status=ln.status, reference=ln.reference, order_id=ln.order_id, person_id=ln.person_id,
        customer=customers.get(ln.person_id or 0, "")[:200], order_date=ln.order_date,
        crm_currency=ln.crm.currency, crm_untaxed=ln.crm.untaxed, crm_tax=ln.crm.tax, crm_total=ln.crm.total,
        erp_currency=ln.erp.currency, erp_untaxed=ln.erp.untaxed, erp_tax=ln.erp.tax, erp_total=ln.erp.total,
        external_ids=ln.external_ids[:300], invoice_ids=ln.invoice_ids[:300], invoice_number=ln.invoice_number[:60],
        is_paid=ln.is_paid, mismatched=ln.mismatched, detail=ln.detail[:4000])


async def _customer_names(person_ids: set[int]) -> dict[int, str]:
    from crm_contacts.api import get_contact

    out: dict[int, str] = {}
    for pid in person_ids:
        try:
            ref = await get_contact(pid)
        except Exception:  # merged away or erased: the line keeps its id
            continue
        out[pid] = f"{ref.organization_name} / {ref.display_name}" if ref.organization_name else ref.display_name
    return out
