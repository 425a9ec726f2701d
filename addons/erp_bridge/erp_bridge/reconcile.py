"""Reconciliation: every CRM order and every ERP sale or invoice carrying our reference, classified for finance.

One run (docs/finance.md, "Reconciliation"):
1. the invoice copy is brought up to date (the incremental pull) and the ERP's invoice ids are swept by keyset,
   so documents deleted in the ERP stop counting (`mirror.sweep_deleted`);
2. the ERP's sales carrying our prefix are read by keyset (``id > last``, 20,000 a call, cheap fields
   only), while the CRM's orders, bindings and the invoice copy are read in bulk; bound sales the sweep did not
   see (reference renamed in the ERP, or deleted) are read by id;
3. each order is compared in memory: the ERP side is what its documents add up to (`ledger`), the sale's own
   amounts only while nothing is invoiced (read by id, for those sales only);
4. the lines are written in bulk with the status each had in the previous run and the reviews whose figures
   still hold. Bindings take the sale's current state and number (the order page follows the ERP).
One run is one snapshot: lines of older runs stay for audit.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from core import db
from core.bulk import insert_rows
from core.models import Outbox
from erp_bridge import connection, ledger, mirror, sales
from erp_bridge.backends.base import ErpBackend, RemoteOrder, SaleState
from erp_bridge.models import Binding, ReconciliationLine, ReconciliationReview, ReconciliationRun, RemoteInvoice
from erp_bridge.money import minor
from erp_bridge.sync import now

T = TypeVar("T")


def _(message: str) -> str:
    """Marks a message for translation where it is shown (the page translates what the run stores)."""
    return message


STATUSES = ("matched", "amount_mismatch", "currency_mismatch", "missing_in_erp", "missing_in_crm", "duplicate",
            "in_flight", "failed")
LABELS = {"matched": _("Matched"), "amount_mismatch": _("Amounts differ"), "currency_mismatch": _("Currencies differ"),
          "missing_in_erp": _("Missing in the ERP"), "missing_in_crm": _("Missing in the CRM"),
          "duplicate": _("Duplicate in the ERP"), "in_flight": _("Being sent"), "failed": _("Sync failed")}
AMOUNTS = ("untaxed", "tax", "total")
OUR_PREFIX = "CRM-SO-"
AUTOMATIC = _("ERP bridge")  # who synced an order nobody re-drove: the job run on its confirmation
SWEEP = 20000  # sales per keyset call (~2 s of Tryton's time): Tryton's cost per call is high, per row low
BY_ID = 1000  # ids per read of sales the sweep did not see


class Detail:
    """Why a line has its status (stored in English, shown translated)."""

    QUEUED = _("Queued for sending to the ERP")
    NEVER_SENT = _("Never sent to the ERP")
    NO_SALE = _("The ERP has no sale with this reference any more")
    CANCELLED_BOTH = _("Cancelled on both sides")
    CANCEL_PENDING = _("Cancelled in the CRM; the cancellation is not in the ERP yet")
    NOT_INVOICED = _("Not invoiced yet: compared with the ERP sale")
    NO_ORDER = _("No CRM order has this reference")
    DUPLICATE = _("More than one ERP sale carries this reference")
    CREDITED = _("Credited in the ERP")
    INVOICE_CANCELLED = _("An invoice was cancelled in the ERP")
    SALE_CANCELLED = _("The ERP sale is cancelled")
    RENAMED = _("The ERP sale's reference was changed")
    INVOICE_ONLY = _("Invoiced in the ERP without a sale")


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
    erp_state: str = ""
    sale_number: str = ""
    summary: ledger.Summary = field(default_factory=ledger.Summary)
    synced_at: Any = None
    synced_by: str = ""
    is_cancelled: bool = False  # the CRM order: its side is zero
    binding: dict[str, Any] | None = None  # the order's binding as read (its state and number, to follow the ERP)


def compare(crm: Side, erp: Side) -> tuple[str, str]:
    """(status, mismatched amounts) for two sides of one order: currency first, then each amount in minor units."""
    if crm.currency.upper() != erp.currency.upper():
        return "currency_mismatch", ""
    diff = [name for name in AMOUNTS
            if minor(getattr(crm, name), crm.currency) != minor(getattr(erp, name), erp.currency)]
    return ("amount_mismatch" if diff else "matched"), ",".join(diff)


class Waiting:
    """ERP calls run in threads; the seconds they were in flight are summed (the bench's "waiting for Tryton")."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        started = time.perf_counter()
        try:
            return await asyncio.to_thread(fn, *args)
        finally:
            self.seconds += time.perf_counter() - started
            self.calls += 1


async def _queued_order_ids() -> set[int]:
    rows = await Outbox.select(Outbox.payload).where(
        (Outbox.actor == "erp_bridge.push_order") & Outbox.state.is_in(["pending", "running"]))
    out: set[int] = set()
    for r in rows:
        payload = json.loads(r["payload"]) if isinstance(r["payload"], str) else r["payload"]
        out.add(int(payload["order_id"]))
    return out


async def _sweep(backend: ErpBackend, wait: Waiting) -> list[SaleState]:
    out: list[SaleState] = []
    after: str | None = None
    while True:
        page = await wait.call(backend.sweep_orders, OUR_PREFIX, after, SWEEP)
        out += page
        if len(page) < SWEEP:
            return out
        after = page[-1].external_id


async def _by_ids(fn: Callable[[Sequence[str]], list[T]], ids: Sequence[str], wait: Waiting) -> list[T]:
    out: list[T] = []
    for start in range(0, len(ids), BY_ID):
        out += await wait.call(fn, list(ids[start:start + BY_ID]))
    return out


async def _redrivers() -> dict[str, str]:
    """Binding id → who last re-drove it (from the audit log); other syncs ran on their own."""
    from core.security.models import AuditLog
    from erp_bridge.manifest import BINDING

    rows = await AuditLog.select(AuditLog.record_id, AuditLog.user_login).where(
        (AuditLog.action == "redrive") & (AuditLog.model == BINDING)).order_by(AuditLog.id)
    return {r["record_id"]: r["user_login"] for r in rows}


_BINDING_COLUMNS = (Binding.id, Binding.local_id, Binding.reference, Binding.external_id, Binding.external_number,
                    Binding.state, Binding.last_error, Binding.remote_state, Binding.sync_date)


async def classify(backend_id: int, backend: ErpBackend, wait: Waiting | None = None,
                   sweeping: asyncio.Future[list[SaleState]] | None = None) -> list[Line]:
    """Every line of a reconciliation (the ERP read in threads, at the same time as the CRM's tables)."""
    wait = wait or Waiting()
    sweeping = sweeping or asyncio.ensure_future(_sweep(backend, wait))
    try:
        bindings = {int(r["local_id"]): r for r in await Binding.select(*_BINDING_COLUMNS).where(
            (Binding.backend == backend_id) & (Binding.model == sales.ORDER_MODEL))}
        orders = await sales.get_orders(await sales.order_ids(), with_lines=False)
        queued = await _queued_order_ids()
        redrivers = await _redrivers()
        by_sale: dict[str, list[dict[str, Any]]] = defaultdict(list)
        by_ref: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for d in await RemoteInvoice.select(*mirror.DOC_COLUMNS).where(
                (RemoteInvoice.backend == backend_id) & RemoteInvoice.deleted_at.is_null()):
            (by_sale[d["sale_id"]] if d["sale_id"] else by_ref[d["order_reference"]]).append(d)
        # while the ERP is swept: what each bound order's documents add up to (most orders keep their sale)
        early = {oid: ledger.summarize(by_sale.get(b["external_id"], []) + by_ref.get(orders[oid].reference, []))
                 for oid, b in bindings.items() if oid in orders and b["external_id"]}
        swept = await sweeping
    finally:
        sweeping.cancel()
    sale_of: dict[str, SaleState] = {s.external_id: s for s in swept}
    bound = {b["external_id"] for b in bindings.values() if b["state"] == "synced" and b["external_id"]}
    for s in await _by_ids(backend.sale_states, sorted(bound - sale_of.keys(), key=int_or_str), wait):
        sale_of[s.external_id] = s  # renamed in the ERP: still the order's sale
    sales_of_ref: dict[str, list[SaleState]] = defaultdict(list)
    for s in sale_of.values():
        sales_of_ref[s.reference].append(s)

    lines: list[Line] = []
    pending: list[tuple[Line, list[SaleState], list[dict[str, Any]], Any]] = []
    used: set[str] = set()
    for order_id, order in sorted(orders.items()):
        b = bindings.get(order_id)
        ref = order.reference
        cancelled = order.state == "cancelled"
        crm = Side(order.currency, *((Decimal(0),) * 3 if cancelled else (order.untaxed, order.tax, order.total)))
        line = Line("matched", ref, crm, order_id=order_id, person_id=order.person_id,
                    order_date=order.confirmed_at.date() if order.confirmed_at else None, is_cancelled=cancelled)
        remote = {s.external_id: s for s in sales_of_ref.get(ref, [])}
        if b is not None and b["external_id"] in sale_of:
            remote.setdefault(b["external_id"], sale_of[b["external_id"]])
        used.update(remote)
        docs = [d for sid in remote for d in by_sale.pop(sid, [])] + by_ref.pop(ref, [])
        if b is not None:
            line.binding = b
            line.synced_at = b["sync_date"]
            line.synced_by = redrivers.get(str(b["id"]), "") or (AUTOMATIC if b["sync_date"] else "")
        if b is None and order_id in queued:
            lines.append(_status(line, "in_flight", Detail.QUEUED))
            continue
        if b is None and not remote and not docs:
            if not cancelled:  # never sent, cancelled: nothing for finance
                lines.append(_status(line, "missing_in_erp", Detail.NEVER_SENT))
            continue
        if b is not None and b["state"] in ("failed", "in_flight"):
            line.external_ids = b["external_id"]
            lines.append(_status(line, b["state"], b["last_error"]))
            continue
        if b is not None and set(remote) == {b["external_id"]} and order_id in early:
            line.summary = early[order_id]  # the same documents as summed while the ERP was swept
        pending.append((line, sorted(remote.values(), key=lambda s: int_or_str(s.external_id)), docs, b))
        lines.append(line)

    # the sale's own amounts count while nothing is invoiced: read them for those sales only
    uninvoiced = sorted({sl[0].external_id for _, sl, docs, _ in pending if len(sl) == 1 and not docs},
                        key=int_or_str)
    amounts: dict[str, RemoteOrder] = {o.external_id: o for o in await _by_ids(backend.read_orders, uninvoiced, wait)}
    for line, its_sales, docs, b in pending:
        _settle(line, its_sales, docs, b, amounts)

    for sid, docs in by_sale.items():  # documents of sales no order claimed: ours if the reference says so
        for d in docs:
            by_ref[d["order_reference"]].append(d)
        if sid in sale_of:
            used.discard(sid)
    stray = defaultdict(list)
    for s in sale_of.values():
        if s.external_id not in used and s.reference.startswith(OUR_PREFIX):
            stray[s.reference].append(s)
    for ref in sorted(set(stray) | {r for r in by_ref if r.startswith(OUR_PREFIX)}):
        line = Line("missing_in_crm", ref, detail=Detail.NO_ORDER)
        _erp_side(line, stray.get(ref, []), by_ref.get(ref, []), {})
        lines.append(line)
    return lines


def int_or_str(value: str) -> tuple[int, str]:
    return (int(value), "") if value.isdigit() else (0, value)


def _status(line: Line, status: str, detail: str) -> Line:
    line.status, line.detail = status, detail
    return line


def _erp_side(line: Line, remote: list[SaleState], docs: list[dict[str, Any]],
              amounts: dict[str, RemoteOrder]) -> None:
    if not line.summary.documents or len(line.summary.documents) != len(docs):
        line.summary = ledger.summarize(docs)
    s = line.summary
    line.external_ids = ",".join(r.external_id for r in remote)
    line.sale_number = ", ".join(r.number or "" for r in remote if r.number)
    line.erp_state = ",".join(sorted({r.state for r in remote}))
    line.invoice_ids = ",".join(d["external_id"] for d in s.documents if not d["deleted"])
    line.invoice_number = ", ".join(s.invoice_numbers)
    line.is_paid = s.is_paid
    if s.has_documents and len(s.currencies) > 1:
        line.erp = Side("")  # documents in several currencies: never added up (each is listed)
    elif s.has_documents and s.currencies:
        line.erp = Side(s.currencies[0], s.untaxed, s.tax, s.total)
    elif s.has_documents:  # every document cancelled: nothing invoiced any more
        line.erp = Side(line.crm.currency or docs[0]["currency"], Decimal(0), Decimal(0), Decimal(0))
    elif len(remote) == 1 and remote[0].external_id in amounts:
        o = amounts[remote[0].external_id]
        zero = remote[0].state == "cancelled"
        line.erp = Side(o.currency, *((Decimal(0),) * 3 if zero else (o.untaxed, o.tax, o.total)))


def _settle(line: Line, remote: list[SaleState], docs: list[dict[str, Any]], b: dict[str, Any] | None,
            amounts: dict[str, RemoteOrder]) -> None:
    _erp_side(line, remote, docs, amounts)
    cancelled = line.is_cancelled
    if len(remote) > 1:
        line.status, line.detail = "duplicate", Detail.DUPLICATE
        return
    if not remote and not docs:
        if cancelled and (b is None or b["remote_state"] in ("cancelled", "")):
            line.status, line.detail = "matched", Detail.CANCELLED_BOTH
        else:
            line.status, line.detail = "missing_in_erp", Detail.NO_SALE
        return
    sale = remote[0] if remote else None
    if sale is not None and cancelled and not docs and sale.state != "cancelled":
        line.status, line.detail = "in_flight", Detail.CANCEL_PENDING
        return
    line.status, line.mismatched = compare(line.crm, line.erp)
    if sale is not None and sale.reference != line.reference:
        line.detail = Detail.RENAMED
        line.sale_number = f"{sale.number or sale.external_id} [{sale.reference}]"
    elif line.summary.credit_notes:
        line.detail = Detail.CREDITED
    elif any(d["state"] == "cancelled" and not d["counted"] for d in line.summary.documents):
        line.detail = Detail.INVOICE_CANCELLED
    elif sale is None:
        line.detail = Detail.INVOICE_ONLY
    elif not docs:
        line.detail = Detail.SALE_CANCELLED if sale.state == "cancelled" else Detail.NOT_INVOICED
    elif cancelled and line.status == "matched":
        line.detail = Detail.CANCELLED_BOTH


def fingerprint(line: Line) -> str:
    """The figures a review holds for: another status, amount, payment or document makes it lapse."""
    s = line.summary
    figures = [line.status, line.crm.currency, *(str(getattr(line.crm, a)) for a in AMOUNTS), line.erp.currency,
               *(str(getattr(line.erp, a)) for a in AMOUNTS), str(s.paid), str(s.outstanding),
               *(f"{d['external_id']}:{d['state']}:{d['total']}:{d['outstanding']}" for d in s.documents)]
    return hashlib.sha256("|".join(figures).encode()).hexdigest()


async def run(trigger: str = "cli") -> dict[str, Any]:
    """Pull, sweep, classify, store the run and its lines; returns ``{"run_id", "counts", "lines", "stats"}``."""
    from erp_bridge import sync

    started = time.perf_counter()
    cfg = await connection.active()
    backend = connection.open_backend(cfg)
    rows = await ReconciliationRun.insert(ReconciliationRun(backend=cfg.id, trigger=trigger)).returning(
        ReconciliationRun.id)
    run_id = int(rows[0]["id"])
    wait = Waiting()
    sweeping = asyncio.ensure_future(_sweep(backend, wait))  # Tryton reads its sales while the CRM works
    try:
        pull_started = time.perf_counter()
        await sync.pull_invoices()
        pulled = time.perf_counter() - pull_started  # waiting and writing: counted as waiting below
        deleted, swept = await mirror.sweep_deleted(cfg, backend)
        wait.seconds += pulled + swept
        phases = {"pull_and_deletions": time.perf_counter() - started}
        context = await _context(cfg.id, run_id)
        lines = await classify(cfg.id, backend, wait, sweeping)
        phases["classify"] = time.perf_counter() - started - sum(phases.values())
        counts = await _store(cfg.id, run_id, lines, context)
        phases["store"] = time.perf_counter() - started - sum(phases.values())
    except Exception as exc:
        sweeping.cancel()
        await ReconciliationRun.update({ReconciliationRun.error: f"{type(exc).__name__}: {exc}"[:4000],
                                        ReconciliationRun.finished_at: now()}).where(ReconciliationRun.id == run_id)
        raise
    seconds = time.perf_counter() - started
    stats = {"orders": sum(1 for ln in lines if ln.order_id), "lines": len(lines), "seconds": round(seconds, 3),
             "erp_seconds": round(wait.seconds, 3), "erp_calls": wait.calls, "deleted_documents": deleted,
             "phases": {k: round(v, 3) for k, v in phases.items()}}
    await ReconciliationRun.update({ReconciliationRun.stats: stats}).where(ReconciliationRun.id == run_id)
    return {"run_id": run_id, "counts": counts, "lines": len(lines), "stats": stats}


async def _context(backend_id: int, run_id: int) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """Each reference's status in the previous run, and the reviews (read while the ERP is swept)."""
    before = await ReconciliationRun.select(ReconciliationRun.id).where(
        (ReconciliationRun.backend == backend_id) & (ReconciliationRun.id < run_id)
        & ReconciliationRun.finished_at.is_not_null() & (ReconciliationRun.error == "")).order_by(
        ReconciliationRun.id, ascending=False).first()
    previous = {r["reference"]: r["status"] for r in await ReconciliationLine.select(
        ReconciliationLine.reference, ReconciliationLine.status).where(
        ReconciliationLine.run == before["id"])} if before else {}
    reviews = {r["reference"]: r for r in await ReconciliationReview.select().where(
        ReconciliationReview.backend == backend_id)}
    return previous, reviews


async def _store(backend_id: int, run_id: int, lines: list[Line],
                 context: tuple[dict[str, str], dict[str, dict[str, Any]]]) -> dict[str, int]:
    from crm_contacts.api import contact_names

    customers = await contact_names({ln.person_id for ln in lines if ln.person_id})
    previous, reviews = context
    counts = {s: 0 for s in STATUSES}
    async with db.atomic():
        await _write([_row(run_id, ln, customers, previous, reviews) for ln in lines])
        for ln in lines:
            counts[ln.status] += 1
        await _follow_sales(lines)
        await ReconciliationRun.update({ReconciliationRun.counts: counts,
                                        ReconciliationRun.finished_at: now()}).where(ReconciliationRun.id == run_id)
    return counts


async def _follow_sales(lines: list[Line]) -> None:
    """Bindings take the sale's current state and number (not its write marker: that is the baseline of the
    cancel's conflict check, set by our own writes only)."""
    for ln in lines:
        b = ln.binding
        if b is None or b["state"] != "synced" or not ln.erp_state or "," in ln.erp_state:
            continue
        number = ln.sale_number.split(" [")[0] or b["external_number"]
        if (ln.erp_state, number) != (b["remote_state"], b["external_number"]):
            await Binding.update({Binding.remote_state: ln.erp_state, Binding.external_number: number}).where(
                Binding.id == b["id"])


async def _write(rows: list[dict[str, Any]]) -> None:
    """The lines in the caller's transaction: PostgreSQL's COPY (a run writes every order's line: 100k rows of
    ~40 columns take ~25 s as multi-row INSERTs, a few seconds as COPY), else multi-row INSERTs."""
    if not rows or not db.is_postgres():
        await insert_rows(ReconciliationLine, rows)
        return
    names = list(rows[0])
    json_columns = {n for n in names if n in ("documents",)}
    records = [tuple(json.dumps(r[n], default=str) if n in json_columns else r[n] for n in names) for r in rows]
    connection = db.current().current_transaction.get().connection  # type: ignore[union-attr]
    await connection.copy_records_to_table(ReconciliationLine._meta.tablename, records=records, columns=names)


def _row(run_id: int, ln: Line, customers: dict[int, str], previous: dict[str, str],
         reviews: dict[str, dict[str, Any]]) -> dict[str, Any]:
    s = ln.summary
    mark = fingerprint(ln)
    review = reviews.get(ln.reference)
    held = review is not None and review["fingerprint"] == mark
    same = ln.crm.currency == ln.erp.currency and ln.crm.total is not None and ln.erp.total is not None
    return {
        "run": run_id, "status": ln.status, "reference": ln.reference[:60], "order_id": ln.order_id,
        "person_id": ln.person_id, "customer": customers.get(ln.person_id or 0, "")[:200],
        "order_date": ln.order_date, "crm_currency": ln.crm.currency, "crm_untaxed": ln.crm.untaxed,
        "crm_tax": ln.crm.tax, "crm_total": ln.crm.total, "erp_currency": ln.erp.currency,
        "erp_untaxed": ln.erp.untaxed, "erp_tax": ln.erp.tax, "erp_total": ln.erp.total,
        "external_ids": ln.external_ids[:300], "invoice_ids": ln.invoice_ids[:300],
        "invoice_number": ln.invoice_number[:60], "is_paid": ln.is_paid, "mismatched": ln.mismatched,
        "detail": (ln.detail or "")[:4000],
        "difference": (minor(ln.crm.total, ln.crm.currency) - minor(ln.erp.total, ln.erp.currency)) if same else None,
        "erp_state": ln.erp_state[:30], "sale_number": ln.sale_number[:60], "invoice_date": s.invoice_date,
        "due_date": s.due_date, "erp_paid": s.paid, "erp_outstanding": s.outstanding,
        "credit_notes": ", ".join(s.credit_notes)[:300], "documents": s.documents, "synced_at": ln.synced_at,
        "synced_by": ln.synced_by[:150], "previous_status": previous.get(ln.reference, ""), "fingerprint": mark,
        "review_note": review["note"] if held and review else "",
        "reviewed_by": review["reviewed_by"] if held and review else "",
        "reviewed_at": review["reviewed_at"] if held and review else None,
    }
