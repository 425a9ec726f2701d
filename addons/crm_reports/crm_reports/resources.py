"""The JSON API of crm_reports as kernel resources (``core.api.Resource``): saved reports and dashboards at
``/api/reports/reports`` and ``/api/reports/dashboards`` (list, read, create, update with versions, delete,
Idempotency-Key, OpenAPI), and their figures by the named action ``result``.

What the pages check, the API checks: a report's spec is run once (one row) as the caller before it is stored,
so an unknown dataset or field is a 422 and a field the caller may not read a 403, naming it; a dashboard's card
is a reference, checked like a read of its report. A definition is reached by its owner and by the users and
roles it is shared with (``Resource.reach``): the record rule alone (read: all) would list everyone's private
ones. Figures are always computed as the caller (``crm_reports.reports.result``), never as the author.
"""

from __future__ import annotations

from typing import Any

from piccolo.table import Table
from starlette.requests import Request

from core import datasets
from core.api import Resource
from core.errors import CrmError, NotAuthenticated, ValidationError
from core.i18n import N_
from core.openapi import ID, NON_BLANK
from core.security.access import Access
from crm_reports import charts, dashboards, reports
from crm_reports.manifest import DASHBOARD, REPORT, STAFF
from crm_reports.models import Dashboard, Report

_CALLER = N_("sign in first")


def _caller() -> Access:
    """The API caller's rights (the kernel's ``validate`` gets no Access): the spec is checked as them."""
    from core.security import context

    who = context.principal()
    if who is None:
        raise NotAuthenticated(_CALLER)
    return Access(who)


def _shared(table: type[Table]) -> Any:
    async def reach(acc: Access) -> Any:
        """The definitions ``acc`` may open: their own and those shared with them or one of their roles (all for
        an administrator). Worked out over the table's sharing columns: definitions are few (hundreds)."""
        if acc.principal is None or acc.principal.is_admin:
            return None
        pk, cols = table._meta.primary_key, table._meta.get_column_by_name
        rows = await table.select(pk, cols("owner"), cols("shared_roles"), cols("shared_users"))
        found = [r["id"] for r in rows if reports.shared_with(acc, reports.loaded(r))]
        return pk.is_in(found) if found else pk == 0  # ids start at 1: nothing

    return reach


def _ids(values: dict[str, Any]) -> None:
    roles, users = values.get("shared_roles"), values.get("shared_users")
    if "shared_roles" in values and (not isinstance(roles, list) or any(r not in STAFF for r in roles)):
        raise ValidationError({"shared_roles": f"must be a list of roles among {', '.join(STAFF)}"})
    if "shared_users" in values and (not isinstance(users, list) or any(
            not isinstance(u, int) or isinstance(u, bool) or u < 1 for u in users)):
        raise ValidationError({"shared_users": N_("must be a list of user ids")})


async def _validate_report(values: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    _ids(values)
    if before is not None and not {"name", "dataset", "spec", "chart"} & set(values):
        return values
    merged = {**(reports.loaded(before) if before else {}), **values}
    spec = merged.get("spec") or {}
    if not isinstance(spec, dict):
        raise ValidationError({"spec": N_("must be an object")})
    name, dataset, chart = (str(merged.get(k) or d) for k, d in (("name", ""), ("dataset", ""), ("chart", "bar")))
    cleaned = reports.clean(name, dataset, spec, chart)
    await reports.run(_caller(), reports.query_of(dataset, cleaned, limit=1))  # 422 / 403 naming the field
    values["spec"] = cleaned
    if "name" in values:
        values["name"] = name.strip()
    return values


async def _validate_dashboard(values: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    _ids(values)
    seconds = values.get("refresh_seconds", 60)
    if not isinstance(seconds, int) or isinstance(seconds, bool) or not 10 <= seconds <= 86_400:
        raise ValidationError({"refresh_seconds": N_("must be 10 to 86400 seconds")})
    if "cards" in values:
        values["cards"] = await dashboards.checked_cards(_caller(), values["cards"])
    if {"cards", "shared_roles", "shared_users"} & set(values):
        values["edited"] = True  # arranged by someone: an upgrade no longer refreshes it
    return values


def result_json(result: datasets.Result) -> dict[str, Any]:
    """A result as JSON: its columns, rows and (with totals) the subtotal rows, values as text where JSON has no
    type for them (decimals stay exact)."""
    def plain(row: dict[str, Any]) -> dict[str, Any]:
        return {k: (str(v) if v is not None and not isinstance(v, (int, str, bool, float)) else v)
                for k, v in row.items()}

    return {"columns": [{"key": c.key, "label": c.label, "kind": c.kind, "label_key": c.label_key,
                         "money": c.money} for c in result.columns],
            "rows": [plain(r) for r in result.rows], "totals": [plain(r) for r in result.totals]}


async def _report_result(request: Request, acc: Access, record_id: int) -> Any:
    report = await reports.get(acc, record_id)  # 404 when not the caller's nor shared with them
    found = await reports.result(acc, report)
    return {"id": record_id, **result_json(found), "chart": charts.spec(found, report["chart"])}


async def _dashboard_result(request: Request, acc: Access, record_id: int) -> Any:
    """Every card's figures as the caller; a card they may no longer compute says why instead of failing all."""
    board = await dashboards.get(acc, record_id)
    opened: list[tuple[dict[str, Any], dict[str, Any] | CrmError]] = []
    for card in board["cards"] or []:
        try:
            opened.append((card, await reports.get(acc, int(card["report"]))))
        except CrmError as exc:
            opened.append((card, exc))
    computed = iter(await reports.results(acc, [r for _, r in opened if not isinstance(r, CrmError)]))
    cards = []
    for card, report in opened:
        found = report if isinstance(report, CrmError) else next(computed)
        if isinstance(found, CrmError) or isinstance(report, CrmError):  # (the second: for the type checker)
            cards.append({**card, "error": found.message if isinstance(found, CrmError) else ""})
            continue
        cards.append({**card, "name": report["name"], "chart": report["chart"], **result_json(found)})
    return {"id": record_id, "name": board["name"], "cards": cards}


_ROLES = {"type": "array", "items": {"type": "string", "enum": list(STAFF)}, "maxItems": len(STAFF)}
_USERS = {"type": "array", "items": ID, "maxItems": 500}
_SPEC = {"type": "object", "description": "dimensions, measures, condition, sort, limit, totals (docs/reports.md)",
         "properties": {"dimensions": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
                        "measures": {"type": "array", "items": {"type": "string"}, "maxItems": 8},
                        "sort": {"type": "string"}, "limit": {"type": "integer", "minimum": 1, "maximum": 100_000},
                        "totals": {"type": "boolean"}, "condition": {}}}
_CARDS = {"type": "array", "maxItems": dashboards.MAX_CARDS, "items": {
    "type": "object", "required": ["report"], "properties": {
        "report": ID, "width": {"type": "integer", "enum": [1, 2]},
        "warn_below": {"type": ["number", "null"]}, "good_above": {"type": ["number", "null"]}}}}


def resources() -> list[Resource]:
    return [
        Resource(
            path="/reports/reports",
            model=REPORT,
            table=Report,
            summary="Saved reports: a question on a dataset and its chart",
            fields=("name", "dataset", "chart", "spec", "owner", "shared_roles", "shared_users", "template_key",
                    "created_at", "version"),
            writable=("name", "dataset", "chart", "spec", "shared_roles", "shared_users"),
            required=("name", "dataset"),
            filters=("dataset", "chart"),
            sortable=("id", "name"),
            validate=_validate_report,
            actions={"result": _report_result},
            reach=_shared(Report),
            field_schemas={"name": NON_BLANK, "chart": {"type": "string", "enum": list(reports.CHARTS)},
                           "spec": _SPEC, "shared_roles": _ROLES, "shared_users": _USERS},
        ),
        Resource(
            path="/reports/dashboards",
            model=DASHBOARD,
            table=Dashboard,
            summary="Dashboards: cards (pinned reports) in order, shared with roles and users",
            fields=("name", "cards", "owner", "shared_roles", "shared_users", "refresh_seconds", "template_key",
                    "edited", "created_at", "version"),
            writable=("name", "cards", "shared_roles", "shared_users", "refresh_seconds"),
            required=("name",),
            sortable=("id", "name"),
            validate=_validate_dashboard,
            actions={"result": _dashboard_result},
            reach=_shared(Dashboard),
            field_schemas={"name": NON_BLANK, "cards": _CARDS, "shared_roles": _ROLES, "shared_users": _USERS,
                           "refresh_seconds": {"type": "integer", "minimum": 10, "maximum": 86_400}},
        ),
    ]
