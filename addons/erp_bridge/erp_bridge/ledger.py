"""The ERP side of an order as finance counts it: which of its documents carry money, and how much is paid.

Rules (docs/finance.md, "What the ERP side of an order is"):
- an order's documents are the invoices of its ERP sale, the credit notes that credit them (Tryton links a
  credit note to the invoice, not to the sale) and invoices made by hand whose own reference is the order's;
- draft, validated, posted and paid documents count, credit notes with their negative amounts;
- a cancelled document does not count — except an invoice cancelled *by crediting it* (Tryton's "credit with
  refund" posts the credit note and cancels the invoice with the note's move): that invoice was posted, so it
  counts and its credit note takes it back to zero; a document deleted in the ERP never counts;
- outstanding: what Tryton says is still to pay on a posted document, the whole amount of a draft one, nothing
  on a paid one; paid = total − outstanding, so paid + outstanding is always the ERP total.
Amounts are summed in the currency's minor unit, per currency: documents in two currencies are never added.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from erp_bridge.money import minor

COUNTED = frozenset({"draft", "validated", "posted", "paid"})
AGEING = ((0, "current"), (30, "1-30"), (60, "31-60"), (90, "61-90"))  # days overdue → bucket; past 90: "90+"


@dataclass
class Summary:
    """What the documents of one order add up to (``currencies``: more than one means they cannot be added)."""

    documents: list[dict[str, Any]] = field(default_factory=list)  # every document, counted or not (JSON-ready)
    currencies: list[str] = field(default_factory=list)
    untaxed: Decimal | None = None
    tax: Decimal | None = None
    total: Decimal | None = None
    paid: Decimal | None = None
    outstanding: Decimal | None = None
    invoice_numbers: list[str] = field(default_factory=list)
    credit_notes: list[str] = field(default_factory=list)
    invoice_date: dt.date | None = None
    due_date: dt.date | None = None
    is_paid: bool = False

    @property
    def has_documents(self) -> bool:
        """Anything invoiced at all (cancelled documents included): the sale's own amounts no longer stand."""
        return any(not d["deleted"] for d in self.documents)


def _get(doc: Mapping[str, Any], key: str, default: Any = None) -> Any:
    value = doc.get(key, default)
    return default if value is None else value


def counts(doc: Mapping[str, Any], credit_moves: set[str]) -> bool:
    if doc.get("deleted_at") is not None:
        return False
    if doc["state"] in COUNTED:
        return True
    return doc["state"] == "cancelled" and bool(doc.get("cancel_move_id")) and doc["cancel_move_id"] in credit_moves


def outstanding(doc: Mapping[str, Any]) -> Decimal:
    if doc["state"] == "posted":
        return minor(doc["amount_to_pay"], doc["currency"])
    if doc["state"] in ("draft", "validated"):
        return minor(doc["total"], doc["currency"])
    return Decimal(0)


def _payments(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    raw = doc.get("payments") or []
    if raw == "[]":
        return []
    if isinstance(raw, str):
        import json

        raw = json.loads(raw)
    return [{"date": str(p.get("date") or ""), "amount": str(minor(p["amount"], doc["currency"])),
             "kind": p.get("kind", "payment")} for p in raw]


def summarize(docs: Iterable[Mapping[str, Any]]) -> Summary:
    docs = sorted(docs, key=lambda d: (d["kind"] != "invoice", int(d["external_id"]) if str(
        d["external_id"]).isdigit() else 0, str(d["external_id"])))
    credit_moves = {str(d["move_id"]) for d in docs if d["kind"] == "credit_note" and d.get("move_id")
                    and d["state"] in COUNTED and d.get("deleted_at") is None}
    out = Summary()
    counted = []
    for d in docs:
        cur = d["currency"]
        is_counted = counts(d, credit_moves)
        owed = outstanding(d) if is_counted else Decimal(0)
        out.documents.append({
            "external_id": str(d["external_id"]), "kind": d["kind"], "number": d.get("number") or "",
            "state": d["state"], "currency": cur, "date": str(d.get("invoice_date") or ""),
            "due_date": str(d.get("due_date") or ""), "untaxed": str(minor(d["untaxed"], cur)),
            "tax": str(minor(d["tax"], cur)), "total": str(minor(d["total"], cur)), "outstanding": str(owed),
            "counted": is_counted, "deleted": d.get("deleted_at") is not None, "payments": _payments(d)})
        if is_counted:
            counted.append((d, owed))
    if not counted:
        return out
    out.currencies = sorted({d["currency"] for d, _ in counted})
    cur = out.currencies[0]
    if len(out.currencies) == 1:
        out.untaxed = sum((minor(d["untaxed"], cur) for d, _ in counted), Decimal(0))
        out.tax = sum((minor(d["tax"], cur) for d, _ in counted), Decimal(0))
        out.total = sum((minor(d["total"], cur) for d, _ in counted), Decimal(0))
        out.outstanding = sum((owed for _, owed in counted), Decimal(0))
        out.paid = out.total - out.outstanding
    out.invoice_numbers = [d.get("number") or "" for d, _ in counted if d["kind"] == "invoice" and d.get("number")]
    out.credit_notes = [d.get("number") or f"({d['external_id']})" for d, _ in counted if d["kind"] == "credit_note"]
    dates = [d["invoice_date"] for d, _ in counted if d.get("invoice_date")]
    out.invoice_date = min(dates) if dates else None
    dues = [d["due_date"] for d, owed in counted if d.get("due_date") and owed > 0]
    out.due_date = min(dues) if dues else None
    # paid: nothing owed and money received (a fully credited order owes nothing, but was not paid either)
    out.is_paid = all(owed == 0 for _, owed in counted) and any(
        d["kind"] == "invoice" and minor(d["total"], d["currency"]) > 0 for d, _ in counted) and (
        out.paid is None or out.paid > 0)
    return out


def ageing(due: dt.date | None, owed: Decimal | None, today: dt.date | None = None) -> tuple[int | None, str]:
    """(days overdue, bucket) for an amount still owed: "" when nothing is owed or no due date is known."""
    if due is None or not owed or owed <= 0:
        return None, ""
    days = ((today or dt.date.today()) - due).days
    for limit, bucket in AGEING:
        if days <= limit:
            return days, bucket
    return days, "90+"
