"""What finance reads of a reconciliation: the lines as filtered, words for codes, subtotals per status and
currency, what changed since the previous run, and the XLSX/CSV tables. Pages and exports share it (views.py)."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from core.errors import ValidationError
from core.i18n import N_, gettext
from erp_bridge import ledger
from erp_bridge.money import exponent
from erp_bridge.reconcile import LABELS, STATUSES


def _(message: str) -> str:
    return message


#: Tryton's own state names (sales and invoices) and ours, as words
STATES = {"draft": _("Draft"), "quotation": _("Quotation"), "confirmed": _("Confirmed"),
          "processing": _("Processing"), "done": _("Done"), "cancelled": _("Cancelled"), "validated": _("Validated"),
          "posted": _("Posted"), "paid": _("Paid"), "invoice": _("Invoice"), "credit_note": _("Credit note"),
          "payment": _("Payment")}
AGEING = {"current": _("not yet due"), "1-30": _("1–30 days overdue"), "31-60": _("31–60 days overdue"),
          "61-90": _("61–90 days overdue"), "90+": _("over 90 days overdue")}
CHANGES = {"new": _("New since the previous run"), "resolved": _("Resolved since the previous run")}
MONEY_COLUMNS = ("crm_untaxed", "crm_tax", "crm_total", "erp_untaxed", "erp_tax", "erp_total", "difference",
                 "erp_paid", "erp_outstanding")
SUMMED = ("crm_untaxed", "crm_tax", "crm_total", "erp_untaxed", "erp_tax", "erp_total", "erp_paid",
          "erp_outstanding")
FILTERS = ("status", "customer", "currency", "date_from", "date_to", "amount_min", "amount_max", "changed", "review")


def state_word(code: str) -> str:
    return ", ".join(gettext(STATES.get(c, c)) for c in code.split(",")) if code else ""


def status_word(code: str) -> str:
    return gettext(LABELS.get(code, code))


def change_of(row: dict[str, Any]) -> str:
    """"new": not matched now and a different status before (or absent); "resolved": matched now, not before."""
    before, now = row.get("previous_status") or "", row["status"]
    if now != "matched" and before != now:
        return "new"
    if now == "matched" and before not in ("", "matched"):
        return "resolved"
    return ""


def documents(row: dict[str, Any]) -> list[dict[str, Any]]:
    raw = row.get("documents") or []
    return json.loads(raw) if isinstance(raw, str) else list(raw)


def ageing(row: dict[str, Any]) -> tuple[int | None, str]:
    days, bucket = ledger.ageing(row.get("due_date"), row.get("erp_outstanding"))
    return days, gettext(AGEING[bucket]) if bucket else ""


def filters_from(query: Any) -> dict[str, Any]:
    out: dict[str, Any] = {k: (query.get(k) or "").strip() for k in FILTERS}
    try:
        for k in ("date_from", "date_to"):
            out[k + "_v"] = dt.date.fromisoformat(out[k]) if out[k] else None
    except ValueError:
        raise ValidationError({"date": N_("use YYYY-MM-DD")}) from None
    try:
        for k in ("amount_min", "amount_max"):
            out[k + "_v"] = Decimal(out[k]) if out[k] else None
    except InvalidOperation:
        raise ValidationError({"amount": N_("must be a number")}) from None
    if out["status"] and out["status"] not in STATUSES:
        raise ValidationError({"status": N_("unknown status")})
    return out


def applied(f: dict[str, Any]) -> list[tuple[str, str]]:
    """The filters in force, as (label, value) words for the PDF's header."""
    names = {"status": _("Status"), "customer": _("Customer"), "currency": _("Currency"), "date_from": _("From"),
             "date_to": _("To"), "amount_min": _("Min amount"), "amount_max": _("Max amount"),
             "changed": _("Changes"), "review": _("Review")}
    def word(key: str, value: str) -> str:
        if key == "status":
            return status_word(value)
        if key == "changed":
            return gettext(CHANGES.get(value, value))
        if key == "review":
            return gettext(_("Reviewed") if value == "yes" else _("Not reviewed"))
        return value

    return [(gettext(names[k]), word(k, str(f[k]))) for k in FILTERS if f.get(k)]


def keep(row: dict[str, Any], f: dict[str, Any]) -> bool:
    """The filters SQL does not apply: amounts (either side's total), changes, review."""
    lo, hi = f["amount_min_v"], f["amount_max_v"]
    if lo is not None or hi is not None:
        amounts = [a for a in (row["crm_total"], row["erp_total"]) if a is not None]
        if not any((lo is None or a >= lo) and (hi is None or a <= hi) for a in amounts):
            return False
    if f["changed"] and change_of(row) != f["changed"]:
        return False
    if f["review"] == "yes" and not row.get("reviewed_at"):
        return False
    return not (f["review"] == "no" and row.get("reviewed_at"))


@dataclass
class Subtotal:
    status: str
    currency: str
    n: int = 0
    crm_untaxed: Decimal = Decimal(0)
    crm_tax: Decimal = Decimal(0)
    crm_total: Decimal = Decimal(0)
    erp_untaxed: Decimal = Decimal(0)
    erp_tax: Decimal = Decimal(0)
    erp_total: Decimal = Decimal(0)
    erp_paid: Decimal = Decimal(0)
    erp_outstanding: Decimal = Decimal(0)

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    @property
    def difference(self) -> Decimal:
        return self.crm_total - self.erp_total


def subtotals(rows: Iterable[dict[str, Any]]) -> list[Subtotal]:
    """Per status and currency — amounts of two currencies are never added. A side in another currency than
    the line's (a currency mismatch) is added to its own currency's row. Sorted by status, then currency."""
    out: dict[tuple[str, str], Subtotal] = {}
    for r in rows:
        for side in ("crm", "erp"):
            cur = r[f"{side}_currency"]
            if not cur or r[f"{side}_total"] is None:
                continue
            key = (r["status"], cur)
            t = out.get(key) or out.setdefault(key, Subtotal(*key))
            for col in SUMMED:
                if col.startswith(side) and r.get(col) is not None:
                    setattr(t, col, getattr(t, col) + Decimal(r[col]))
        cur = r["crm_currency"] or r["erp_currency"]
        key = (r["status"], cur)
        (out.get(key) or out.setdefault(key, Subtotal(*key))).n += 1
    order = {s: i for i, s in enumerate(STATUSES)}
    return sorted(out.values(), key=lambda t: (order.get(t.status, 99), t.currency))


def per_currency(totals: list[Subtotal]) -> list[Subtotal]:
    """All statuses together, one row per currency."""
    out: dict[str, Subtotal] = {}
    for t in totals:
        s = out.setdefault(t.currency, Subtotal("", t.currency))
        s.n += t.n
        for col in SUMMED:
            setattr(s, col, getattr(s, col) + getattr(t, col))
    return [out[c] for c in sorted(out)]


# --- exports ------------------------------------------------------------------------------------

_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def neutralize(value: Any) -> str:
    """A cell safe to open in a spreadsheet: text starting like a formula is prefixed with a quote."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_DANGEROUS) else text


EXPORT = (  # (column, header): one row per line, the same in CSV and XLSX
    ("status", _("Status")), ("reference", _("Order")), ("customer", _("Customer")), ("order_date", _("Date")),
    ("crm_currency", _("CRM currency")), ("crm_untaxed", _("CRM untaxed")), ("crm_tax", _("CRM tax")),
    ("crm_total", _("CRM total")), ("erp_currency", _("ERP currency")), ("erp_untaxed", _("ERP untaxed")),
    ("erp_tax", _("ERP tax")), ("erp_total", _("ERP total")), ("difference", _("Difference")),
    ("mismatched", _("Amounts that differ")), ("sale_number", _("ERP sale")), ("erp_state", _("ERP state")),
    ("invoice_number", _("Invoice")), ("invoice_date", _("Invoice date")), ("credit_notes", _("Credit notes")),
    ("is_paid", _("Paid")), ("erp_paid", _("Paid amount")), ("erp_outstanding", _("Outstanding")),
    ("due_date", _("Due date")), ("ageing", _("Ageing")), ("change", _("Changes")), ("detail", _("Detail")),
    ("review_note", _("Review note")), ("reviewed_by", _("Reviewed by")), ("synced_by", _("Synced by")),
    ("synced_at", _("Synced at")),
)


def _cell(row: dict[str, Any], column: str) -> Any:
    if column == "status":
        return status_word(row["status"])
    if column == "erp_state":
        return state_word(row["erp_state"])
    if column == "is_paid":
        return gettext(_("paid") if row["is_paid"] else _("not paid"))
    if column == "ageing":
        return ageing(row)[1]
    if column == "change":
        change = change_of(row)
        return gettext(CHANGES[change]) if change else ""
    if column == "detail":
        return gettext(row["detail"]) if row["detail"] else ""
    value = row.get(column)
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    return value


def number_format(currency: str) -> str:
    digits = exponent(currency) if currency else 2
    return "#,##0" + ("." + "0" * digits if digits else "")


def xlsx(rows: list[dict[str, Any]], totals: list[Subtotal]) -> bytes:
    """Numbers as numbers (with the currency's decimals), dates as dates, words for codes; no cell is ever a
    formula (text that starts like one is prefixed with a quote)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    book = Workbook(write_only=True)
    sheet = book.create_sheet(gettext(_("Reconciliation"))[:31])
    sheet.append([gettext(h) for _c, h in EXPORT])
    for r in rows:
        out = []
        for column, _h in EXPORT:
            value = _cell(r, column)
            cell = WriteOnlyCell(sheet, value=neutralize(value) if isinstance(value, str) else value)
            if isinstance(value, Decimal):
                cur = r["erp_currency"] if column.startswith("erp") else r["crm_currency"]
                cell.number_format = number_format(cur or r["crm_currency"] or r["erp_currency"])
            elif isinstance(value, dt.datetime):
                cell.number_format = "yyyy-mm-dd hh:mm"
            elif isinstance(value, dt.date):
                cell.number_format = "yyyy-mm-dd"
            out.append(cell)
        sheet.append(out)
    summary = book.create_sheet(gettext(_("Subtotals"))[:31])
    heads = [_("Status"), _("Currency"), _("Lines"), *(h for c, h in EXPORT if c in SUMMED), _("Difference")]
    summary.append([gettext(h) for h in heads])
    for t in totals:
        cells = [WriteOnlyCell(summary, value=status_word(t.status)), WriteOnlyCell(summary, value=t.currency),
                 WriteOnlyCell(summary, value=t.n)]
        for value in [*(t[c] for c, _h in EXPORT if c in SUMMED), t.difference]:
            cell = WriteOnlyCell(summary, value=value)
            cell.number_format = number_format(t.currency)
            cells.append(cell)
        summary.append(cells)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def csv_rows(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """For machines as much as people: status codes and plain decimals, plus the status in words."""
    columns = [c for c, _h in EXPORT]
    header = [*columns, "status_label"]
    table = [[neutralize(_cell(r, c) if c in ("ageing", "change") else r.get(c)) for c in columns]
             + [neutralize(status_word(r["status"]))] for r in rows]
    return header, table
