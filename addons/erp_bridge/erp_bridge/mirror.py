"""The CRM's copy of the ERP's customer invoices and credit notes (``RemoteInvoice``): written a page at a time.

The incremental pull only sees documents that changed, so a deleted one would stay in the copy forever (and a
deleted draft plus the ERP's replacement would count twice). Two guards: when a page brings a new invoice for a
sale that already has invoices here, those are checked to still exist in the ERP (one cheap id search per
page); and every reconciliation sweeps the ERP's invoice ids by keyset (`sweep_deleted`). A deleted document
keeps its row, marked ``deleted_at``, and never counts again.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from core import db, hooks
from core.bulk import any_of, insert_rows
from erp_bridge import connection, ledger
from erp_bridge.backends.base import ErpBackend, SaleState
from erp_bridge.backends.base import RemoteInvoice as Pulled
from erp_bridge.models import Binding, RemoteInvoice

_CHUNK = 5000
DOC_COLUMNS = (RemoteInvoice.external_id, RemoteInvoice.number, RemoteInvoice.order_reference, RemoteInvoice.state,
               RemoteInvoice.currency, RemoteInvoice.untaxed, RemoteInvoice.tax, RemoteInvoice.total,
               RemoteInvoice.amount_to_pay, RemoteInvoice.is_paid, RemoteInvoice.invoice_date, RemoteInvoice.kind,
               RemoteInvoice.reference, RemoteInvoice.sale_id, RemoteInvoice.credited_ids, RemoteInvoice.move_id,
               RemoteInvoice.cancel_move_id, RemoteInvoice.due_date, RemoteInvoice.payments,
               RemoteInvoice.deleted_at)


def _now() -> Any:
    from erp_bridge.sync import now

    return now()


def values(inv: Pulled) -> dict[str, Any]:
    """Column name → value of one pulled document."""
    return {"number": inv.number or "", "order_reference": (inv.order_reference or "")[:60], "state": inv.state,
            "currency": inv.currency, "untaxed": inv.untaxed, "tax": inv.tax, "total": inv.total,
            "amount_to_pay": inv.amount_to_pay, "is_paid": inv.is_paid, "invoice_date": inv.invoice_date,
            "cursor": inv.cursor, "pulled_at": _now(), "kind": inv.kind, "reference": inv.reference[:60],
            "sale_id": inv.sale_id, "credited_ids": ",".join(inv.credited_ids)[:300], "move_id": inv.move_id,
            "cancel_move_id": inv.cancel_move_id, "due_date": inv.due_date,
            "payments": [{**dataclasses.asdict(p), "date": str(p.date or ""), "amount": str(p.amount)}
                         for p in inv.payments],
            "deleted_at": None}


async def _rows(backend_id: int, external_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for start in range(0, len(external_ids), _CHUNK):
        for r in await RemoteInvoice.select(RemoteInvoice.id, RemoteInvoice.external_id, RemoteInvoice.sale_id,
                                            RemoteInvoice.paid_notified_at).where(
                (RemoteInvoice.backend == backend_id)
                & any_of(RemoteInvoice.external_id, list(external_ids[start:start + _CHUNK]))):
            out[r["external_id"]] = r
    return out


@dataclass
class PageFacts:
    """What the ERP says about a page besides its documents: which documents of its sales are gone, and the
    sales' current state (a sale is done once its invoices are paid: the order page follows it)."""

    gone: list[str] = field(default_factory=list)
    sales: list[SaleState] = field(default_factory=list)


async def vanished(cfg: connection.Backend, backend: ErpBackend, page: Sequence[Pulled]) -> PageFacts:
    """Documents of this copy the ERP no longer has, among those of the sales that got a *new* invoice in
    ``page`` (Tryton replaces a deleted draft invoice of a sale with a new one), and the state of the page's
    sales. Asks the ERP: call it outside any transaction."""
    facts = PageFacts()
    sale_ids = sorted({i.sale_id for i in page if i.sale_id})
    if sale_ids:
        facts.sales = await asyncio.to_thread(backend.sale_states, sale_ids)
    known = await _rows(cfg.id, [i.external_id for i in page])
    sales = sorted({i.sale_id for i in page if i.sale_id and i.external_id not in known and i.kind == "invoice"})
    if not sales:
        return facts
    rows = await RemoteInvoice.select(RemoteInvoice.external_id).where(
        (RemoteInvoice.backend == cfg.id) & any_of(RemoteInvoice.sale_id, sales)
        & RemoteInvoice.deleted_at.is_null())
    mine = sorted({r["external_id"] for r in rows} - {i.external_id for i in page})
    if mine:
        alive = await asyncio.to_thread(backend.existing_invoices, mine)
        facts.gone = [i for i in mine if i not in alive]
    return facts


async def store(cfg: connection.Backend, page: Sequence[Pulled], facts: PageFacts | None = None) -> None:
    """Write ``page`` (and mark the documents ``facts`` found gone deleted) in the caller's transaction; then the
    order summaries and sale states on the bindings of the sales touched, and ``erp_bridge_invoice_paid`` once
    per newly paid invoice."""
    facts = facts or PageFacts()
    gone = facts.gone
    known = await _rows(cfg.id, [i.external_id for i in page])
    fresh = [{"backend": cfg.id, "external_id": i.external_id, **values(i)} for i in page if i.external_id not in known]
    await insert_rows(RemoteInvoice, fresh)
    for inv in page:
        if inv.external_id in known:
            await RemoteInvoice.update(**values(inv)).where(RemoteInvoice.id == known[inv.external_id]["id"])
    if gone:
        await mark_deleted(cfg.id, gone)
    await refresh_bindings(cfg.id, {i.sale_id for i in page if i.sale_id} | set(await _sales_of(cfg.id, gone)),
                           {i.order_reference for i in page if i.order_reference and not i.sale_id})
    for sale in facts.sales:  # the order page follows the sale (done once its invoices are paid)
        await Binding.update({Binding.remote_state: sale.state, Binding.external_number: sale.number or ""}).where(
            (Binding.backend == cfg.id) & (Binding.external_id == sale.external_id) & (Binding.state == "synced")
            & ((Binding.remote_state != sale.state) | (Binding.external_number != (sale.number or ""))))
    newly_paid = [i for i in page if i.is_paid and i.kind == "invoice"
                  and (i.external_id not in known or known[i.external_id]["paid_notified_at"] is None)]
    if not newly_paid:
        return
    owners = await _orders_of(cfg.id, newly_paid)
    for inv in newly_paid:
        order_id = owners.get(inv.external_id)
        if order_id is None:
            continue  # not ours, or unknown here: reconciliation reports it as missing in the CRM
        await RemoteInvoice.update({RemoteInvoice.paid_notified_at: _now()}).where(
            (RemoteInvoice.backend == cfg.id) & (RemoteInvoice.external_id == inv.external_id))
        await hooks.publish("erp_bridge_invoice_paid", order_id=order_id, invoice_external_id=inv.external_id)


async def _sales_of(backend_id: int, external_ids: Sequence[str]) -> list[str]:
    if not external_ids:
        return []
    rows = await RemoteInvoice.select(RemoteInvoice.sale_id).where(
        (RemoteInvoice.backend == backend_id) & any_of(RemoteInvoice.external_id, list(external_ids)))
    return [r["sale_id"] for r in rows if r["sale_id"]]


async def _orders_of(backend_id: int, docs: Sequence[Pulled]) -> dict[str, int]:
    """Invoice external id → CRM order id, through the binding of its sale (else of its reference)."""
    sale_ids = sorted({d.sale_id for d in docs if d.sale_id})
    refs = sorted({d.order_reference for d in docs if d.order_reference})
    by_sale: dict[str, int] = {}
    by_ref: dict[str, int] = {}
    if sale_ids:
        for b in await Binding.select(Binding.external_id, Binding.local_id).where(
                (Binding.backend == backend_id) & any_of(Binding.external_id, sale_ids)):
            by_sale[b["external_id"]] = int(b["local_id"])
    if refs:
        for b in await Binding.select(Binding.reference, Binding.local_id).where(
                (Binding.backend == backend_id) & any_of(Binding.reference, refs)):
            by_ref[b["reference"]] = int(b["local_id"])
    out = {}
    for d in docs:
        found = by_sale.get(d.sale_id) if d.sale_id else None
        found = found if found is not None else by_ref.get(d.order_reference or "")
        if found is not None:
            out[d.external_id] = found
    return out


async def mark_deleted(backend_id: int, external_ids: Sequence[str]) -> None:
    for start in range(0, len(external_ids), _CHUNK):
        await RemoteInvoice.update({RemoteInvoice.deleted_at: _now()}).where(
            (RemoteInvoice.backend == backend_id) & any_of(RemoteInvoice.external_id,
                                                           list(external_ids[start:start + _CHUNK]))
            & RemoteInvoice.deleted_at.is_null())


async def documents(backend_id: int, *, sale_ids: Sequence[str] = (), references: Sequence[str] = (),
                    include_deleted: bool = True) -> list[dict[str, Any]]:
    """The copy's documents of these sales, and those without a sale carrying these references."""
    out: list[dict[str, Any]] = []
    base: Any = RemoteInvoice.backend == backend_id
    if not include_deleted:
        base = base & RemoteInvoice.deleted_at.is_null()
    for start in range(0, len(sale_ids), _CHUNK):
        out += await RemoteInvoice.select(*DOC_COLUMNS).where(
            base & any_of(RemoteInvoice.sale_id, list(sale_ids[start:start + _CHUNK])))
    for start in range(0, len(references), _CHUNK):
        out += await RemoteInvoice.select(*DOC_COLUMNS).where(
            base & (RemoteInvoice.sale_id == "")
            & any_of(RemoteInvoice.order_reference, list(references[start:start + _CHUNK])))
    return out


async def refresh_bindings(backend_id: int, sale_ids: set[str], references: set[str]) -> None:
    """The order summary kept on each binding (invoice numbers, paid) for the sales and references touched,
    by the rules of `ledger`: the order page reads it without reading the documents."""
    if not sale_ids and not references:
        return
    where = Binding.backend == backend_id
    rows: list[dict[str, Any]] = []
    if sale_ids:
        rows += await Binding.select(Binding.id, Binding.external_id, Binding.reference, Binding.invoice_number,
                                     Binding.is_paid).where(where & any_of(Binding.external_id, sorted(sale_ids)))
    if references:
        rows += await Binding.select(Binding.id, Binding.external_id, Binding.reference, Binding.invoice_number,
                                     Binding.is_paid).where(where & any_of(Binding.reference, sorted(references)))
    if not rows:
        return
    docs = await documents(backend_id, sale_ids=sorted({r["external_id"] for r in rows if r["external_id"]}),
                           references=sorted({r["reference"] for r in rows}))
    by_sale: dict[str, list[dict[str, Any]]] = defaultdict(list)
    by_ref: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in docs:
        (by_sale[d["sale_id"]] if d["sale_id"] else by_ref[d["order_reference"]]).append(d)
    for r in {r["id"]: r for r in rows}.values():
        summary = ledger.summarize(by_sale.get(r["external_id"], []) + by_ref.get(r["reference"], []))
        number = ", ".join(summary.invoice_numbers + summary.credit_notes)[:60]
        if (number, summary.is_paid) != (r["invoice_number"], r["is_paid"]):
            await Binding.update({Binding.invoice_number: number, Binding.is_paid: summary.is_paid}).where(
                Binding.id == r["id"])


async def sweep_deleted(cfg: connection.Backend, backend: ErpBackend, limit: int = 10000) -> tuple[int, float]:
    """Every invoice id the ERP has, by keyset; the copy's documents it no longer has are marked deleted.
    Returns (how many were marked, seconds spent waiting for the ERP)."""
    import time

    alive: set[str] = set()
    after: str | None = None
    waited = 0.0
    while True:
        started = time.perf_counter()
        ids = await asyncio.to_thread(backend.invoice_ids, after, limit)
        waited += time.perf_counter() - started
        alive.update(ids)
        if len(ids) < limit:
            break
        after = ids[-1]
    rows = await RemoteInvoice.select(RemoteInvoice.external_id).where(
        (RemoteInvoice.backend == cfg.id) & RemoteInvoice.deleted_at.is_null())
    gone = sorted({r["external_id"] for r in rows} - alive)
    if gone:
        async with db.atomic():
            sales = await _sales_of(cfg.id, gone)
            await mark_deleted(cfg.id, gone)
            await refresh_bindings(cfg.id, set(sales), set())
    return len(gone), waited
