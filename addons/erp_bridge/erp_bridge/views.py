"""Pages: failed syncs with re-drive, reconciliation (filters, totals, drill-down, CSV/XLSX/PDF)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from crm_sales.api import order_url
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from core import db
from core.bulk import any_of
from core.errors import ValidationError
from core.i18n import N_
from core.security import audit
from core.web import access, form_str, pdf_response, render
from erp_bridge.manifest import BINDING, RECONCILIATION


async def failed_list(request: Request) -> Response:
    from erp_bridge import status

    acc = access(request)
    await acc.require(BINDING)
    return await render(request, "erp_bridge/failed.html", rows=await status.failed(),
                  can_redrive=acc.can(BINDING, "update"), order_url=order_url)


async def binding_redrive(request: Request) -> Response:
    from core.approvals import ApprovalPending, ApprovalRejected
    from erp_bridge import status
    from erp_bridge.approvals import check_redrive
    from erp_bridge.models import Binding

    acc = access(request)
    await acc.require(BINDING, "update")
    binding_id = int(request.path_params["id"])
    await acc.get(Binding, BINDING, binding_id)
    try:
        await check_redrive(acc, binding_id)
    except (ApprovalPending, ApprovalRejected) as held:  # the request's page says who it waits for, or why not
        return RedirectResponse(f"/approvals/{held.request_id}", status_code=303)
    await status.redrive(binding_id)
    await audit.record("redrive", model=BINDING, record_id=binding_id, principal=acc.principal)
    return RedirectResponse(request.headers.get("referer") or "/erp/failed", status_code=303)


async def _lines(request: Request, action: str = "read", limit: int | None = None
                 ) -> tuple[dict[str, Any] | None, list[dict[str, Any]], dict[str, Any], list[dict[str, Any]]]:
    """The last finished run, its lines as filtered (whole rows: the first ``limit``, all without one), the
    filters, and the figures of every line that matches (for subtotals: a run has a line per order)."""
    from erp_bridge import reports
    from erp_bridge.models import ReconciliationLine as L
    from erp_bridge.models import ReconciliationRun

    acc = access(request)
    await acc.require(RECONCILIATION, action)
    f = reports.filters_from(request.query_params)
    run = await ReconciliationRun.select().where(ReconciliationRun.finished_at.is_not_null()
                                                 & (ReconciliationRun.error == "")).order_by(
        ReconciliationRun.id, ascending=False).first()
    if run is None:
        return None, [], f, []
    where = L.run == run["id"]
    if f["status"]:
        where &= L.status == f["status"]
    if f["customer"]:
        where &= L.customer.ilike(f"%{f['customer']}%") | L.reference.ilike(f"%{f['customer']}%")
    if f["currency"]:
        where &= (L.crm_currency == f["currency"].upper()) | (L.erp_currency == f["currency"].upper())
    if f["date_from_v"]:
        where &= L.order_date >= f["date_from_v"]
    if f["date_to_v"]:
        where &= L.order_date <= f["date_to_v"]
    figures = [r for r in await L.select(L.id, L.status, L.previous_status, L.reviewed_at, L.crm_currency,
                                         L.erp_currency, *(getattr(L, c) for c in reports.SUMMED)).where(
        where).order_by(L.id) if reports.keep(r, f)]
    ids = [r["id"] for r in (figures if limit is None else figures[:limit])]
    rows = []
    for start in range(0, len(ids), 5000):
        rows += await L.select().where(where & any_of(L.id, ids[start:start + 5000])).order_by(L.id).output(
            load_json=True)
    return dict(run), rows, f, figures


PAGE_ROWS = 500  # lines on the page; the exports carry them all


async def reconciliation(request: Request) -> Response:
    from erp_bridge import reports
    from erp_bridge.reconcile import STATUSES

    run, rows, f, figures = await _lines(request, limit=PAGE_ROWS)
    acc = access(request)
    cfg = await _backend_links()
    totals = reports.subtotals(figures)
    changes = {"new": sum(1 for r in figures if reports.change_of(r) == "new"),
               "resolved": sum(1 for r in figures if reports.change_of(r) == "resolved")}
    return await render(request, "erp_bridge/reconciliation.html", run=run, rows=rows,
                        total_rows=len(figures), totals=totals, currency_totals=reports.per_currency(totals), f=f,
                        statuses=STATUSES, r=reports, link=cfg, changes=changes,
                        can_export=acc.can(RECONCILIATION, "export"), can_review=acc.can(RECONCILIATION, "update"),
                        can_run=acc.can(RECONCILIATION, "create"), query=request.url.query, order_url=order_url)


async def _backend_links() -> Any:
    """``link(model, external_id)``: the document's page in the ERP's web client ("" when not configured)."""
    from erp_bridge import connection
    from erp_bridge.models import BackendConfig

    try:
        cfg = await connection.active()
    except Exception:  # no ERP configured: no links
        return lambda model, external_id: ""
    row = await BackendConfig.select(BackendConfig.web_url).where(BackendConfig.id == cfg.id).first()
    web_url = (row or {}).get("web_url") or ""
    backend = connection.open_backend(cfg)
    make = getattr(backend, "document_url", None)

    def link(model: str, external_id: str) -> str:
        return make(web_url, model, str(external_id)) if make and web_url and external_id else ""

    return link


async def reconciliation_run(request: Request) -> Response:
    from erp_bridge import reconcile

    acc = access(request)
    await acc.require(RECONCILIATION, "create")
    result = await reconcile.run(trigger="web")
    await audit.record("reconcile", model=RECONCILIATION, record_id=result["run_id"], principal=acc.principal)
    return RedirectResponse("/erp/reconciliation", status_code=303)


async def reconciliation_export(request: Request) -> Response:
    from erp_bridge import reports

    fmt = request.path_params["fmt"]
    await access(request).require(RECONCILIATION, "export")  # before any look at the input
    if fmt not in ("csv", "xlsx", "pdf"):
        raise ValidationError({"format": N_("must be csv, xlsx or pdf")})
    run, rows, f, _figures = await _lines(request, action="export")
    acc = access(request)
    await audit.record("export", model=RECONCILIATION, record_id=run["id"] if run else "",
                       detail=f"{fmt}: {len(rows)} rows", principal=acc.principal)
    name = f"reconciliation-{run['id'] if run else 0}"
    totals = reports.subtotals(rows)
    if fmt == "pdf":
        return await pdf_response(request, "erp_bridge/reconciliation_pdf.html", f"{name}.pdf", run=run, rows=rows,
                                  totals=totals, currency_totals=reports.per_currency(totals), r=reports,
                                  applied=reports.applied(f), printed_at=dt.datetime.now(dt.UTC))
    if fmt == "xlsx":
        return Response(reports.xlsx(rows, totals),
                        headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
                        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    header, table = reports.csv_rows(rows)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(table)
    return Response(("\ufeff" + out.getvalue()).encode(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})


async def reconciliation_line(request: Request) -> Response:
    """Drill-down: both sides of one line, its documents with their payments, the binding, the review."""
    from erp_bridge import reports, status
    from erp_bridge.models import ReconciliationLine

    acc = access(request)
    line = dict(await acc.get(ReconciliationLine, RECONCILIATION, int(request.path_params["id"])))
    sync = await status.order_status(line["order_id"]) if line["order_id"] else None
    return await render(request, "erp_bridge/reconciliation_line.html", line=line, docs=reports.documents(line),
                        sync=sync, order_url=order_url, r=reports, link=await _backend_links(),
                        can_review=acc.can(RECONCILIATION, "update"))


async def reconciliation_review(request: Request) -> Response:
    """Mark a line reviewed with a note: kept on later runs while the line's figures stay the same; audited."""
    from erp_bridge.models import ReconciliationLine, ReconciliationReview, ReconciliationRun

    acc = access(request)
    await acc.require(RECONCILIATION, "update")
    line = await acc.get(ReconciliationLine, RECONCILIATION, int(request.path_params["id"]))
    form = await request.form()
    note = form_str(form, "note", max_length=2000)
    run = await ReconciliationRun.select(ReconciliationRun.backend).where(
        ReconciliationRun.id == line["run"]).first()
    if run is None:
        raise ValidationError({"line": "its run is gone"})
    who = acc.principal.login if acc.principal else ""
    values: dict[str, Any] = {"fingerprint": line["fingerprint"], "note": note, "reviewed_by": who,
              "reviewer_id": acc.principal.user_id if acc.principal else None, "reviewed_at": dt.datetime.now(dt.UTC)}
    key = (ReconciliationReview.backend == run["backend"]) & (ReconciliationReview.reference == line["reference"])
    async with db.atomic():
        if await ReconciliationReview.exists().where(key):
            await ReconciliationReview.update(**values).where(key)
        else:
            await ReconciliationReview.insert(ReconciliationReview(backend=run["backend"],
                                                                   reference=line["reference"], **values))
        await ReconciliationLine.update({ReconciliationLine.review_note: note, ReconciliationLine.reviewed_by: who,
                                         ReconciliationLine.reviewed_at: values["reviewed_at"]}).where(
            ReconciliationLine.id == line["id"])
    await audit.record("review", model=RECONCILIATION, record_id=line["id"], principal=acc.principal,
                       changes={"reference": line["reference"], "status": line["status"], "note": note,
                                "fingerprint": line["fingerprint"]})
    return RedirectResponse(request.headers.get("referer") or f"/erp/reconciliation/lines/{line['id']}",
                            status_code=303)


ROUTES = [
    Route("/failed", failed_list, name="failed_list"),
    Route("/bindings/{id:int}/redrive", binding_redrive, methods=["POST"], name="binding_redrive"),
    Route("/reconciliation", reconciliation, name="reconciliation"),
    Route("/reconciliation/run", reconciliation_run, methods=["POST"], name="reconciliation_run"),
    Route("/reconciliation/export.{fmt:str}", reconciliation_export, name="reconciliation_export"),
    Route("/reconciliation/lines/{id:int}", reconciliation_line, name="reconciliation_line"),
    Route("/reconciliation/lines/{id:int}/review", reconciliation_review, methods=["POST"],
          name="reconciliation_review"),
]
