"""Pages and JSON endpoints of crm_reports: dashboards (cards, full-screen mode), the report builder, a report's
page with its chart, exports and schedules. Every figure is computed as the viewer (``core.datasets``)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from piccolo.columns import Date, Timestamp, Timestamptz
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from core import datasets
from core.errors import CrmError, PermissionDenied, ValidationError
from core.hooks import Dataset
from core.i18n import N_, gettext
from core.security.access import Access
from core.web import access, form_str, render
from crm_reports import cache, charts, dashboards, drill, exports, reports, schedules
from crm_reports.manifest import DASHBOARD, REPORT, SCHEDULE, STAFF
from crm_reports.models import Report, Schedule, ScheduleRun
from crm_reports.reports import me
from crm_reports.resources import result_json

GRAIN_LABELS = {"day": N_("by day"), "week": N_("by week"), "month": N_("by month"), "quarter": N_("by quarter"),
                "year": N_("by year")}
AGG_LABELS = {"distinct": N_("Distinct count"), "sum": N_("Sum"), "avg": N_("Average"), "min": N_("Minimum"),
              "max": N_("Maximum")}


def _roles() -> list[tuple[str, str]]:
    """The staff roles a report or dashboard may be shared with, as (key, label in the reader's language)."""
    from core.security.access import policy

    known = policy().roles
    return [(r, gettext(known[r].label) if r in known else r) for r in STAFF]


async def _users(acc: Access) -> list[dict[str, Any]]:
    """Active colleagues a report or dashboard may be shared with (the viewer left out), by name."""
    from core.security.models import User

    mine = acc.principal.user_id if acc.principal else 0
    return list(await User.select(User.id, User.name).where(User.is_active.eq(True) & (User.id != mine)).order_by(
        User.name).limit(MAX_SHARE_USERS))


MAX_SHARE_USERS = 500


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _id(request: Request) -> int:
    return int(request.path_params["id"])


def _error(exc: CrmError) -> dict[str, Any]:
    field = getattr(exc, "field", None)
    fields = getattr(exc, "fields", None) or ({field: exc.message} if field else {})
    return {"error": exc.code, "message": exc.message, "fields": fields}


def _json_error(exc: CrmError) -> JSONResponse:
    return JSONResponse(_error(exc), status_code=exc.status)


# --- what a card or a report page shows ------------------------------------------------------------------


async def _view(acc: Access, report: dict[str, Any], *, width: int = 640,
                computed: datasets.Result | CrmError | None = None) -> dict[str, Any]:
    """Chart SVG, table, pivot and (no dimension) the KPI figure of ``report`` as ``acc`` sees it (``computed``:
    its result, or the error, worked out already); an error (a dataset gone, a field now hidden) becomes the
    card's message instead of breaking the page."""
    try:
        if isinstance(computed, CrmError):
            raise computed
        result = computed if computed is not None else await reports.result(acc, report)
        if report["chart"] == "pivot":
            dims = (report["spec"] or {}).get("dimensions") or []
            if len(dims) >= 2:  # column totals: the same figures grouped by the column dimension alone
                by_col = await reports.run(acc, reports.query_of(report["dataset"], {
                    **report["spec"], "dimensions": [dims[1]], "totals": False}))
                result.totals += [{**r, "_level": -1} for r in by_col.rows]
    except CrmError as exc:
        return {"report": report, "error": exc.message}
    vl = charts.spec(result, report["chart"])
    measures = [c for c in result.columns if c.kind == "measure"]
    kpi = None
    if not any(c.kind == "dimension" for c in result.columns) and result.rows and measures:
        kpi = {"value": result.rows[0].get(measures[0].key), "label": measures[0].label,
               "text": charts.display(result.rows[0].get(measures[0].key), money=measures[0].money)}
    funnel = charts.funnel(result) if report["chart"] == "funnel" else []
    if funnel:  # each stage links to its rows on the page the dataset names (its deals), over the same filter
        ds = await datasets.dataset(report["dataset"], acc)
        spec = report["spec"] or {}
        for stage in funnel:
            stage["url"] = drill.link(ds, spec.get("condition"), (spec.get("dimensions") or [""])[0], stage["key"])
    return {"report": report, "result": result, "svg": await charts.svg(vl, width=width), "spec": vl,
            "svg_narrow": await charts.svg(charts.narrow(vl), width=charts.NARROW),
            "table": charts.table(result), "kpi": kpi,
            "pivot": charts.pivot(result) if report["chart"] == "pivot" else None, "funnel": funnel}


# --- dashboards -------------------------------------------------------------------------------------------


async def home(request: Request) -> Response:
    acc = access(request)
    first = await dashboards.home(acc)
    if first is not None:
        return _see_other(f"/reports/dashboards/{first['id']}")
    return await render(request, "crm_reports/dashboard.html", dashboard=None, cards=[],
                        boards=await dashboards.visible(acc), reports=[], fullscreen=False)


async def dashboard_page(request: Request) -> Response:
    acc = access(request)
    board = await dashboards.get(acc, _id(request))
    cards = []
    shown_cards = []
    readable = {d.key for d in await datasets.datasets(acc)}
    for card in board["cards"] or []:
        try:
            report = await reports.get(acc, int(card["report"]))
        except CrmError:
            continue  # a report no longer shared with this user: its card is not theirs to see
        if report["dataset"] in readable:  # a role that may not read its model (ROI without orders) skips it
            shown_cards.append((card, report))
    # every card's cached figure in one round trip to the shared cache, not one a card
    await cache.prefetch(acc, [reports.query_of(r["dataset"], r["spec"] or {}) for _, r in shown_cards
                               if isinstance(r["spec"] or {}, dict)])
    computed = await reports.results(acc, [r for _, r in shown_cards])  # the cards at once, on the pool
    for (card, report), figures in zip(shown_cards, computed, strict=True):
        shown = await _view(acc, report, width=480 if card.get("width", 1) == 1 else 960, computed=figures)
        shown["card"] = card
        shown["colour"] = dashboards.colour(shown["kpi"]["value"], card) if shown.get("kpi") else ""
        cards.append(shown)
    fullscreen = request.query_params.get("fullscreen") == "1"
    return await render(request, "crm_reports/dashboard.html", dashboard=board, cards=cards,
                        boards=await dashboards.visible(acc), reports=await reports.visible(acc),
                        fullscreen=fullscreen, roles=_roles(),
                        users=await _users(acc) if board["owner"] == me(acc).user_id and not fullscreen else [])


async def dashboard_cards(request: Request) -> Response:
    """One action on the cards: ``add`` (pin a report), ``remove``, ``up``/``down`` (arrange), ``set``
    (width and KPI thresholds). Editing a dashboard one does not own edits one's own copy of it."""
    acc = access(request)
    form = await request.form()
    board = await dashboards.get(acc, _id(request))
    cards = [dict(c) for c in board["cards"] or []]
    action = form_str(form, "action", required=True)
    index = int(form_str(form, "index") or -1)
    if action == "add":
        target = await dashboards.pin(acc, board["id"], int(form_str(form, "report", required=True)))
        return _see_other(f"/reports/dashboards/{target}")
    if not 0 <= index < len(cards):
        raise ValidationError({"index": "no such card"})
    if action == "remove":
        cards.pop(index)
    elif action in ("up", "down"):
        other = index - 1 if action == "up" else index + 1
        if 0 <= other < len(cards):
            cards[index], cards[other] = cards[other], cards[index]
    elif action == "set":
        cards[index].update(width=form_str(form, "width") or 1, warn_below=form_str(form, "warn_below"),
                            good_above=form_str(form, "good_above"))
    else:
        raise ValidationError({"action": f"unknown action {action!r}"})
    target = await dashboards.set_cards(acc, board["id"], cards)
    return _see_other(f"/reports/dashboards/{target}")


async def dashboard_create(request: Request) -> Response:
    acc = access(request)
    form = await request.form()
    name = form_str(form, "name", required=True, max_length=200)
    await acc.require(DASHBOARD, "create")
    from crm_reports.models import Dashboard

    new = await Dashboard.insert(Dashboard(name=name, owner=me(acc).user_id, edited=True)).returning(
        Dashboard.id)
    return _see_other(f"/reports/dashboards/{new[0]['id']}")


async def dashboard_share(request: Request) -> Response:
    acc = access(request)
    form = await request.form()
    roles = [r for r in form.getlist("roles") if isinstance(r, str) and r in STAFF]
    users = [int(u) for u in form.getlist("users") if isinstance(u, str) and u.isdigit()]
    await dashboards.share(acc, _id(request), roles, users)
    return _see_other(f"/reports/dashboards/{_id(request)}")


# --- reports ---------------------------------------------------------------------------------------------


async def report_list(request: Request) -> Response:
    acc = access(request)
    return await render(request, "crm_reports/report_list.html", reports=await reports.visible(acc),
                        charts=reports.CHART_LABELS,
                        datasets=await datasets.datasets(acc), may_create=acc.can(REPORT, "create"))


def _options(ds: Dataset) -> dict[str, Any]:
    """What the builder offers for ``ds``: dimensions (a date one once per grain) and measures (the declared
    ones, then count distinct / sum / average / min / max over the declared columns)."""
    dims: list[tuple[str, str]] = []
    for d in ds.dimensions:
        try:
            column = ds.table._meta.get_column_by_name(d.column)
        except ValueError:
            column = None
        if isinstance(column, (Date, Timestamp, Timestamptz)):
            dims += [(f"{d.name}:{g}", f"{d.label} ({gettext(GRAIN_LABELS[g])})") for g in datasets.GRAINS]
        else:
            dims.append((d.name, d.label))
    measures = [(m.name, m.label) for m in ds.measures]
    labels = {d.column: d.label for d in ds.dimensions} | {m.column: m.label for m in ds.measures if m.column}
    for name in datasets._declared_columns(ds):
        measures.append((f"distinct:{name}", f"{gettext(AGG_LABELS['distinct'])}: {labels.get(name, name)}"))
        for agg in ("sum", "avg", "min", "max"):
            if name in {m.column for m in ds.measures}:
                measures.append((f"{agg}:{name}", f"{gettext(AGG_LABELS[agg])}: {labels.get(name, name)}"))
    return {"dimensions": dims, "measures": measures,
            "fields": conditions_fields(ds)}


def conditions_fields(ds: Dataset) -> list[dict[str, Any]]:
    from core import conditions

    return conditions.describe(datasets.filter_schema(ds), changes=False)


def _spec_from_form(form: Any) -> dict[str, Any]:
    raw_condition = form_str(form, "condition", max_length=20_000)
    try:
        condition = json.loads(raw_condition) if raw_condition else None
    except json.JSONDecodeError:
        raise ValidationError({"condition": "is not valid JSON"}) from None
    return {"dimensions": [d for d in (form_str(form, "dim1"), form_str(form, "dim2")) if d],
            "measures": [m for m in form.getlist("measures") if isinstance(m, str) and m] or ["count"],
            "condition": condition, "sort": form_str(form, "sort"), "limit": form_str(form, "limit") or 500,
            "totals": form_str(form, "totals") == "1", "warn_falls": form_str(form, "warn_falls") or 0,
            "stale_days": form_str(form, "stale_days") or 0,
            "stale_days_by_tier": form_str(form, "stale_days_by_tier")}


async def report_form(request: Request) -> Response:
    acc = access(request)
    report_id = request.path_params.get("id")
    report = await reports.get(acc, int(report_id)) if report_id else None
    key = request.query_params.get("dataset") or (report["dataset"] if report else "")
    if not key:
        return _see_other("/reports/reports")
    return await _builder(request, acc, key, report or {"name": "", "chart": "bar", "spec": {}})


async def _builder(request: Request, acc: Access, key: str, report: dict[str, Any], *, error: str = "",
                   status: int = 200, fields: dict[str, str] | None = None) -> Response:
    ds = await datasets.dataset(key, acc)
    return await render(request, "crm_reports/report_form.html", ds=ds, options=_options(ds), report=report,
                        charts=reports.CHART_LABELS, error=error, fields=fields or {}, status=status,
                        condition=json.dumps(report.get("spec", {}).get("condition"), ensure_ascii=False)
                        if report.get("spec", {}).get("condition") else "")


async def report_save(request: Request) -> Response:
    acc = access(request)
    form = await request.form()
    report_id = int(request.path_params["id"]) if "id" in request.path_params else None
    key = form_str(form, "dataset", required=True)
    values: dict[str, Any] = {"name": form_str(form, "name", max_length=200), "dataset": key,
                              "chart": form_str(form, "chart") or "bar"}
    try:
        values["spec"] = _spec_from_form(form)
        if report_id is not None:
            current = await reports.get(acc, report_id)
            values["shared_roles"], values["shared_users"] = current["shared_roles"], current["shared_users"]
        saved = await reports.save(acc, values, report_id)
    except (ValidationError, PermissionDenied) as exc:
        if isinstance(exc, ValidationError) and "dataset" in exc.fields:
            raise
        return await _builder(request, acc, key, {**values, "spec": values.get("spec") or {}},
                              error=exc.message, status=exc.status, fields=_error(exc)["fields"])
    return _see_other(f"/reports/reports/{saved}")


async def report_page(request: Request) -> Response:
    acc = access(request)
    report = await reports.get(acc, _id(request))
    shown = await _view(acc, report)
    runs = []
    mine = []
    if acc.can(SCHEDULE):
        mine = [dict(r) for r in await (await acc.select(Schedule, SCHEDULE, Schedule.id, Schedule.cron,
                                                          Schedule.format, Schedule.next_run_at,
                                                          where=Schedule.report == report["id"])).limit(20)]
        if mine:
            runs = await ScheduleRun.select().where(ScheduleRun.schedule.is_in([s["id"] for s in mine])).order_by(
                ScheduleRun.id, ascending=False).limit(10)
    return await render(request, "crm_reports/report_page.html", shown=shown, report=report,
                        boards=await dashboards.visible(acc), may_edit=report["owner"] == me(acc).user_id,
                        charts=reports.CHART_LABELS, schedules=mine, runs=runs, roles=_roles(),
                        users=await _users(acc) if report["owner"] == me(acc).user_id else [],
                        spec_json=json.dumps(shown.get("spec"), ensure_ascii=False, default=str))


async def report_pin(request: Request) -> Response:
    acc = access(request)
    form = await request.form()
    target = await dashboards.pin(acc, int(form_str(form, "dashboard", required=True)), _id(request))
    return _see_other(f"/reports/dashboards/{target}")


async def report_share(request: Request) -> Response:
    acc = access(request)
    form = await request.form()
    report = reports.loaded(await acc.get(Report, REPORT, _id(request), action="update"))
    await reports.save(acc, {**report, "shared_roles": [r for r in form.getlist("roles") if r in STAFF],
                             "shared_users": [int(u) for u in form.getlist("users")
                                              if isinstance(u, str) and u.isdigit()]}, report["id"])
    return _see_other(f"/reports/reports/{report['id']}")


async def report_delete(request: Request) -> Response:
    await reports.delete(access(request), _id(request))
    return _see_other("/reports/reports")


async def report_export(request: Request) -> Response:
    acc = access(request)
    report = await reports.get(acc, _id(request))
    await acc.require(REPORT, "export")
    fmt = request.path_params["fmt"]
    name = "".join(c for c in report["name"] if c.isascii() and (c.isalnum() or c in "-_")) or "report"
    if fmt == "csv":
        # every row, streamed from a cursor a batch at a time: never cut short, the process's memory flat
        columns, batches = await reports.stream(acc, report)
        counted = [0]
        try:  # the first batch before the answer starts: a query cancelled by its time limit is an error page
            first = await anext(batches)
        except StopAsyncIteration:
            first = []

        async def all_batches() -> AsyncIterator[list[dict[str, Any]]]:
            yield first
            async for batch in batches:
                yield batch

        async def body() -> AsyncIterator[bytes]:
            try:
                async for piece in exports.csv_stream(columns, all_batches(), counted):
                    yield piece
            finally:
                await batches.aclose()  # the cursor's connection back to the pool, also when the client left
                await exports.audited(report, "csv", counted[0], principal=acc.principal)

        return StreamingResponse(body(), media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    result = await reports.result(acc, report, limit=exports.EXCEL_MAX_ROWS)
    if fmt == "xlsx":
        data = exports.xlsx(result, report["name"])
        await exports.audited(report, "xlsx", len(result.rows))
        return Response(data, media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'})
    if fmt == "pdf":
        data = await exports.pdf(report, result, user=acc.principal)
        await exports.audited(report, "pdf", len(result.rows))
        return Response(data, media_type="application/pdf",
                        headers={"Content-Disposition": f'inline; filename="{name}.pdf"'})
    raise ValidationError({"format": f"unknown export format {fmt!r}"})


# --- schedules --------------------------------------------------------------------------------------------


async def schedule_list(request: Request) -> Response:
    acc = access(request)
    rows = await (await acc.select(Schedule, SCHEDULE, Schedule.id, Schedule.cron, Schedule.format,
                                   Schedule.next_run_at, Schedule.last_run_at, Schedule.report.name.as_alias(
                                       "report_name"), Schedule.report)).order_by(Schedule.id).limit(200)
    return await render(request, "crm_reports/schedule_list.html", schedules=rows)


async def schedule_create(request: Request) -> Response:
    acc = access(request)
    form = await request.form()
    roles = [r for r in form.getlist("roles") if isinstance(r, str) and r in STAFF]
    await schedules.save(acc, _id(request), {"cron": form_str(form, "cron", required=True, max_length=100),
                                             "format": form_str(form, "format") or "pdf", "roles": roles})
    return _see_other(f"/reports/reports/{_id(request)}")


# --- JSON ------------------------------------------------------------------------------------------------


async def api_datasets(request: Request) -> Response:
    acc = access(request)
    out = []
    for ds in await datasets.datasets(acc):
        opts = _options(ds)
        out.append({"key": ds.key, "label": ds.label, "model": ds.model,
                    "dimensions": [{"name": n, "label": label} for n, label in opts["dimensions"]],
                    "measures": [{"name": n, "label": label} for n, label in opts["measures"]]})
    return JSONResponse({"datasets": out})


async def api_reports(request: Request) -> Response:
    acc = access(request)
    if request.method == "POST":
        try:
            body = await request.json()
            report_id = await reports.save(acc, body if isinstance(body, dict) else {})
        except CrmError as exc:
            return _json_error(exc)
        except ValueError:
            return JSONResponse({"error": "validation", "message": "the body is not JSON"}, status_code=400)
        return JSONResponse({"id": report_id}, status_code=201)
    return JSONResponse({"reports": [{k: r[k] for k in ("id", "name", "dataset", "chart", "owner")}
                                     for r in await reports.visible(acc)]})


async def api_result(request: Request) -> Response:
    acc = access(request)
    try:
        report = await reports.get(acc, _id(request))
        result = await reports.result(acc, report)
    except CrmError as exc:
        return _json_error(exc)
    return JSONResponse({"report": report["id"], **result_json(result), "chart": charts.spec(result, report["chart"])})


async def api_query(request: Request) -> Response:
    """An ad hoc question (the builder's preview): ``{"dataset", "dimensions", "measures", "condition", "sort",
    "limit", "totals"}``; 422/403 naming the dataset or field."""
    acc = access(request)
    try:
        body = await request.json()
        if not isinstance(body, dict):
            raise ValidationError({"body": "must be an object"})
        result = await reports.result(acc, {"dataset": str(body.get("dataset") or ""), "spec": body})
    except CrmError as exc:
        return _json_error(exc)
    except ValueError:
        return JSONResponse({"error": "validation", "message": "the body is not JSON"}, status_code=400)
    return JSONResponse(result_json(result))


async def api_dashboards(request: Request) -> Response:
    acc = access(request)
    await dashboards.refresh_defaults()
    out = []
    for d in await dashboards.visible(acc):
        full = await dashboards.get(acc, d["id"])
        out.append({"id": d["id"], "name": d["name"], "cards": full["cards"], "owner": d["owner"]})
    return JSONResponse({"dashboards": out})


ROUTES: list[BaseRoute] = [
    Route("/", home, name="home"),
    Route("/dashboards", dashboard_create, methods=["POST"], name="dashboard_create"),
    Route("/dashboards/{id:int}", dashboard_page, name="dashboard"),
    Route("/dashboards/{id:int}/cards", dashboard_cards, methods=["POST"], name="dashboard_cards"),
    Route("/dashboards/{id:int}/share", dashboard_share, methods=["POST"], name="dashboard_share"),
    Route("/reports", report_list, name="report_list"),
    Route("/reports/new", report_form, name="report_new"),
    Route("/reports/new", report_save, methods=["POST"], name="report_create"),
    Route("/reports/{id:int}", report_page, name="report"),
    Route("/reports/{id:int}/edit", report_form, name="report_edit"),
    Route("/reports/{id:int}/edit", report_save, methods=["POST"], name="report_save"),
    Route("/reports/{id:int}/pin", report_pin, methods=["POST"], name="report_pin"),
    Route("/reports/{id:int}/share", report_share, methods=["POST"], name="report_share"),
    Route("/reports/{id:int}/delete", report_delete, methods=["POST"], name="report_delete"),
    Route("/reports/{id:int}/export.{fmt:str}", report_export, name="report_export"),
    Route("/reports/{id:int}/schedules", schedule_create, methods=["POST"], name="schedule_create"),
    Route("/schedules", schedule_list, name="schedule_list"),
    Route("/api/datasets", api_datasets, name="api_datasets"),
    Route("/api/reports", api_reports, methods=["GET", "POST"], name="api_reports"),
    Route("/api/reports/{id:int}/result", api_result, name="api_result"),
    Route("/api/query", api_query, methods=["POST"], name="api_query"),
    Route("/api/dashboards", api_dashboards, name="api_dashboards"),
]
