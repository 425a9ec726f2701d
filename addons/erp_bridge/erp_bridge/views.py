"""Pages: failed syncs with re-drive, reconciliation (filters, totals, drill-down, CSV/XLSX/PDF)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from core.errors import ValidationError
from core.security import audit
from core.web import access, pdf_response, render
from crm_sales.api import order_url
from erp_bridge.manifest import BINDING, RECONCILIATION

COLUMNS = ("status", "reference", "customer", "order_date", "crm_currency", "crm_untaxed", "crm_tax", "crm_total",
           "erp_currency", "erp_untaxed", "erp_tax", "erp_total", "mismatched", "invoice_number", "is_paid", "detail")
_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def neutralize(value: Any) -> str:
    """A cell safe to open in a spreadsheet: text starting like a formula is prefixed with a quote."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_DANGEROUS) else text


async def failed_list(request: Request) -> Response:
    from erp_bridge import status

    acc = access(request)
    await acc.require(BINDING)
    return await render(request, "erp_bridge/failed.html", rows=await status.failed(),
                  can_redrive=acc.can(BINDING, "update"), order_url=order_url)


async def binding_redrive(request: Request) -> Response:
    from erp_bridge import status
    from erp_bridge.models import Binding

    acc = access(request)
    await acc.require(BINDING, "update")
    binding_id = int(request.path_params["id"])
    await acc.get(Binding, BINDING, binding_id)
    await status.redrive(binding_id)
    await audit.record("redrive", model=BINDING, record_id=binding_id, principal=acc.principal)
    return RedirectResponse(request.headers.get("referer") or "/erp/failed", status_code=303)


def _filters(request: Request) -> dict[str, Any]:
    q = request.query_params
    out: dict[str, Any] = {k: q.get(k, "").strip() for k in ("status", "customer", "date_from", "date_to",
                                                           "amount_min", "amount_max")}
    try:
        for k in ("date_from", "date_to"):
            out[k + "_v"] = dt.date.fromisoformat(out[k]) if out[k] else None
    except ValueError:
        raise ValidationError({"date": "use YYYY-MM-DD"}) from None
    try:
        for k in ("amount_min", "amount_max"):
            out[k + "_v"] = Decimal(out[k]) if out[k] else None
    except InvalidOperation:
        raise ValidationError({"amount": "must be a number"}) from None
    return out


async def _lines(request: Request, action: str = "read") -> tuple[dict[str, Any] | None, list[dict[str, Any]],
                                                                  dict[str, Any]]:
    from erp_bridge.models import ReconciliationLine as L
    from erp_bridge.models import ReconciliationRun

    acc = access(request)
    await acc.require(RECONCILIATION, action)
    f = _filters(request)
    run = await ReconciliationRun.select().where(ReconciliationRun.finished_at.is_not_null()).order_by(
        ReconciliationRun.id, ascending=False).first()
    if run is None:
        return None, [], f
    query = L.select().where(L.run == run["id"])
    if f["status"]:
        query = query.where(L.status == f["status"])
    if f["customer"]:
        query = query.where(L.customer.ilike(f"%{f['customer']}%"))
    if f["date_from_v"]:
        query = query.where(L.order_date >= f["date_from_v"])
    if f["date_to_v"]:
        query = query.where(L.order_date <= f["date_to_v"])
    rows = [dict(r) for r in await query.order_by(L.id)]
    lo, hi = f["amount_min_v"], f["amount_max_v"]
    if lo is not None or hi is not None:  # either side's total in range
        def within(r: dict[str, Any]) -> bool:
            amounts = [a for a in (r["crm_total"], r["erp_total"]) if a is not None]
            return any((lo is None or a >= lo) and (hi is None or a <= hi) for a in amounts)
        rows = [r for r in rows if within(r)]
    return dict(run), rows, f


def _totals(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    from erp_bridge.reconcile import STATUSES

    out: dict[str, dict[str, Any]] = {s: {"n": 0, "crm": Decimal(0), "erp": Decimal(0)} for s in STATUSES}
    for r in rows:
        t = out[r["status"]]
        t["n"] += 1
        t["crm"] += r["crm_total"] or 0
        t["erp"] += r["erp_total"] or 0
    return out


async def reconciliation(request: Request) -> Response:
    from erp_bridge.reconcile import STATUSES

    run, rows, f = await _lines(request)
    acc = access(request)
    return await render(request, "erp_bridge/reconciliation.html", run=run, rows=rows[:1000], total_rows=len(rows),
                  totals=_totals(rows), f=f, statuses=STATUSES, can_export=acc.can(RECONCILIATION, "export"),
                  query=request.url.query)


async def reconciliation_run(request: Request) -> Response:
    from erp_bridge import reconcile

    acc = access(request)
    await acc.require(RECONCILIATION, "create")
    result = await reconcile.run(trigger="web")
    await audit.record("reconcile", model=RECONCILIATION, record_id=result["run_id"], principal=acc.principal)
    return RedirectResponse("/erp/reconciliation", status_code=303)


async def reconciliation_export(request: Request) -> Response:
    fmt = request.path_params["fmt"]
    run, rows, _ = await _lines(request, action="export")
    acc = access(request)
    await audit.record("export", model=RECONCILIATION, record_id=run["id"] if run else "",
                       detail=f"{fmt}: {len(rows)} rows", principal=acc.principal)
    name = f"reconciliation-{run['id'] if run else 0}"
    if fmt == "pdf":
        return await pdf_response(request, "erp_bridge/reconciliation_pdf.html", f"{name}.pdf", run=run, rows=rows,
                                  totals=_totals(rows))
    table = [[neutralize(r[c]) for c in COLUMNS] for r in rows]
    if fmt == "xlsx":
        from openpyxl import Workbook

        book = Workbook(write_only=True)
        sheet = book.create_sheet("reconciliation")
        sheet.append(list(COLUMNS))
        for row in table:
            sheet.append(row)  # strings only: no cell is ever stored as a formula
        buf = io.BytesIO()
        book.save(buf)
        return Response(buf.getvalue(), headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
                        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    if fmt != "csv":
        raise ValidationError({"format": "must be csv, xlsx or pdf"})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    writer.writerows(table)
    return Response(("\ufeff" + out.getvalue()).encode(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})


async def reconciliation_line(request: Request) -> Response:
    """Drill-down: both sides of one line, the binding and the mirrored invoices."""
    from erp_bridge import status
    from erp_bridge.models import ReconciliationLine, RemoteInvoice

    acc = access(request)
    line = await acc.get(ReconciliationLine, RECONCILIATION, int(request.path_params["id"]))
    invoices = await RemoteInvoice.select().where(RemoteInvoice.order_reference == line["reference"])
    sync = await status.order_status(line["order_id"]) if line["order_id"] else None
    return await render(request, "erp_bridge/reconciliation_line.html", line=line, invoices=invoices, sync=sync,
                        order_url=order_url)


ROUTES = [
    Route("/failed", failed_list, name="failed_list"),
    Route("/bindings/{id:int}/redrive", binding_redrive, methods=["POST"], name="binding_redrive"),
    Route("/reconciliation", reconciliation, name="reconciliation"),
    Route("/reconciliation/run", reconciliation_run, methods=["POST"], name="reconciliation_run"),
    Route("/reconciliation/export.{fmt:str}", reconciliation_export, name="reconciliation_export"),
    Route("/reconciliation/lines/{id:int}", reconciliation_line, name="reconciliation_line"),
]
