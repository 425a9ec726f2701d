"""Saved reports: their spec checked against the dataset on save, who sees them (the owner, the users and roles
they are shared with), and their results, always computed as the viewer through ``core.datasets``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any

from core import datasets
from core.errors import CrmError, NotAuthenticated, NotFound, UserError, ValidationError
from core.i18n import N_, gettext
from core.security import audit
from core.security.access import Access
from core.security.principal import Principal
from crm_reports import cache, churn
from crm_reports.manifest import REPORT
from crm_reports.models import Report

CHARTS = ("bar", "stacked_bar", "line", "pie", "funnel", "table", "pivot")
CHART_LABELS = {"bar": N_("Bar"), "stacked_bar": N_("Stacked bar"), "line": N_("Line"), "pie": N_("Pie"),
                "funnel": N_("Funnel"), "table": N_("Table"), "pivot": N_("Pivot")}
MAX_ROWS_SHOWN = 500


def query_of(dataset: str, spec: Mapping[str, Any], *, limit: int | None = None) -> datasets.Query:
    """The kernel query a report spec stands for (lists of names, a condition tree, sort, limit, totals)."""
    def names(key: str) -> tuple[str, ...]:
        raw = spec.get(key) or ()
        if isinstance(raw, str):
            raw = [p.strip() for p in raw.split(",") if p.strip()]
        if not isinstance(raw, (list, tuple)) or not all(isinstance(n, str) for n in raw):
            raise ValidationError({key: "must be a list of names"})
        return tuple(raw)

    try:
        wanted = int(spec.get("limit") or MAX_ROWS_SHOWN)
    except (TypeError, ValueError):
        raise ValidationError({"limit": "must be a whole number"}) from None
    return datasets.Query(dataset=dataset, dimensions=names("dimensions"), measures=names("measures") or ("count",),
                          condition=spec.get("condition") or None, sort=str(spec.get("sort") or ""),
                          limit=limit or wanted, totals=bool(spec.get("totals")))


def clean(name: str, dataset: str, spec: Mapping[str, Any], chart: str) -> dict[str, Any]:
    if not name.strip():
        raise ValidationError({"name": "is required"})
    if chart not in CHARTS:
        raise ValidationError({"chart": f"unknown chart type {chart!r}"})
    q = query_of(dataset, spec)
    if chart in ("stacked_bar", "pivot") and len(q.dimensions) < 2:
        raise ValidationError({"dimensions": f"a {chart} chart needs two dimensions"})
    if chart in ("bar", "line", "pie", "funnel") and not q.dimensions:
        raise ValidationError({"dimensions": f"a {chart} chart needs a dimension"})
    try:
        falls = int(spec.get("warn_falls") or 0)
    except (TypeError, ValueError):
        raise ValidationError({"warn_falls": "must be a whole number"}) from None
    if falls and not 2 <= falls <= 24:
        raise ValidationError({"warn_falls": "must be between 2 and 24 periods"})
    if falls and not any(":" in d for d in q.dimensions):
        raise ValidationError({"warn_falls": "needs a dimension by day, week, month, quarter or year"})
    try:
        stale_days = int(spec.get("stale_days") or 0)
    except (TypeError, ValueError):
        raise ValidationError({"stale_days": "must be a whole number"}) from None
    per_tier = churn.by_tier(spec.get("stale_days_by_tier"))
    if (stale_days or per_tier) and not (0 <= stale_days <= 3650 and q.dimensions
                                         and q.measures[0].startswith("max:")):
        raise ValidationError({"stale_days": "needs 1 to 3650 days, a dimension and the latest date first "
                                             "(max of a date)"})
    return {"dimensions": list(q.dimensions), "measures": list(q.measures), "condition": q.condition,
            "sort": q.sort, "limit": q.limit, "totals": q.totals or chart == "pivot", "warn_falls": falls,
            "stale_days": stale_days, "stale_days_by_tier": per_tier}


def _ids(raw: Any, field: str) -> list[Any]:
    if not isinstance(raw, (list, tuple)):
        raise ValidationError({field: "must be a list"})
    return list(raw)


async def save(acc: Access, values: Mapping[str, Any], report_id: int | None = None) -> int:
    """Create or update a report: the spec is run once (limit 1) as the author, so an unknown dataset or field
    is a 422 and a field the author may not read a 403, both naming it, before anything is stored."""
    name, dataset, chart = str(values.get("name") or ""), str(values.get("dataset") or ""), str(
        values.get("chart") or "bar")
    spec = clean(name, dataset, values.get("spec") or {}, chart)
    await run(acc, query_of(dataset, spec, limit=1))
    row: dict[str, Any] = {"name": name.strip()[:200], "dataset": dataset, "spec": spec, "chart": chart,
                           "shared_roles": _ids(values.get("shared_roles", []), "shared_roles"),
                           "shared_users": [int(u) for u in _ids(values.get("shared_users", []), "shared_users")]}
    if report_id is None:
        await acc.require(REPORT, "create")
        created = await Report.insert(Report(**row, owner=me(acc).user_id)).returning(Report.id)
        report_id = int(created[0]["id"])
        await audit.record("create", model=REPORT, record_id=report_id, changes=audit.diff(None, row))
        return report_id
    before = await acc.get(Report, REPORT, report_id, action="update")
    await Report.update({**{getattr(Report, k): v for k, v in row.items()},
                         Report.version: Report.version + 1}).where(Report.id == report_id)
    await audit.record("update", model=REPORT, record_id=report_id, changes=audit.diff(
        {k: before.get(k) for k in row}, row))
    return report_id


def loaded(row: Mapping[str, Any]) -> dict[str, Any]:
    """The row with its JSON columns decoded (Piccolo hands them back as text)."""
    out = dict(row)
    for key in ("spec", "cards", "shared_roles", "shared_users", "recipients", "roles"):
        if isinstance(out.get(key), str):
            out[key] = json.loads(out[key])
    return out


def me(acc: Access) -> Principal:
    """The signed-in user behind ``acc`` (every route has one: anonymous requests never get this far)."""
    if acc.principal is None:
        raise NotAuthenticated("sign in first")
    return acc.principal


def shared_with(acc: Access, row: Mapping[str, Any]) -> bool:
    who = me(acc)
    if who.is_admin or row.get("owner") == who.user_id:
        return True
    return who.user_id in (row.get("shared_users") or []) or bool(set(who.roles) & set(row.get("shared_roles") or []))


async def visible(acc: Access) -> list[dict[str, Any]]:
    """The reports this user may open: their own and those shared with them or one of their roles."""
    if not acc.can(REPORT):
        return []
    rows = await (await acc.select(Report, REPORT, Report.id, Report.name, Report.dataset, Report.chart,
                                   Report.owner, Report.shared_roles, Report.shared_users, Report.template_key)
                  ).order_by(Report.name).limit(1000)
    return [loaded(r) for r in rows if shared_with(acc, loaded(r))]


async def get(acc: Access, report_id: int) -> dict[str, Any]:
    row = loaded(await acc.get(Report, REPORT, report_id))
    if not shared_with(acc, row):
        raise NotFound(f"no report {report_id}")
    return row


async def run(acc: Access, q: datasets.Query) -> datasets.Result:
    """``q`` run as ``acc``: a dataset that is not installed (or over a model the user may not read) is a 422
    naming it, like an unknown field; a statement cancelled by the time limit says so in the user's language."""
    try:
        return await cache.cached(acc, q, lambda: datasets.run(acc, q))
    except NotFound:
        raise ValidationError({"dataset": f"no dataset {q.dataset!r}"}) from None
    except datasets.QueryTimeout as exc:
        raise UserError(gettext("The report took longer than %(seconds)s s and was cancelled: narrow its filters "
                                "or group by fewer fields.") % {"seconds": f"{exc.params['seconds']:g}"}) from None


async def stream(acc: Access, report: Mapping[str, Any]) -> tuple[list[datasets.ResultColumn], Any]:
    """Every row of ``report`` as ``acc`` sees it, in batches (``datasets.stream``: an export of any size, never
    cut short, not cached); errors as :func:`run` words them."""
    try:
        return await datasets.stream(acc, query_of(report["dataset"], report["spec"] or {}))
    except NotFound:
        raise ValidationError({"dataset": f"no dataset {report['dataset']!r}"}) from None


async def result(acc: Access, report: Mapping[str, Any], *, limit: int | None = None) -> datasets.Result:
    return await run(acc, query_of(report["dataset"], report["spec"] or {}, limit=limit))


#: a dashboard's cards computed at once on PostgreSQL, each on a pool connection of its own: its figures come in
#: the time of the slowest few, not of their sum (a few, so one dashboard does not take the whole pool)
PARALLEL_CARDS = 6


async def results(acc: Access, found: Sequence[Mapping[str, Any]]) -> list[datasets.Result | CrmError]:
    """The result of each report in ``found`` as ``acc`` sees it, or the error that stopped it (a card shows it)."""
    from core import db

    async def one(report: Mapping[str, Any]) -> datasets.Result | CrmError:
        try:
            return await result(acc, report)
        except CrmError as exc:
            return exc

    if not db.is_postgres() or len(found) < 2:  # SQLite: one connection, one statement at a time
        return [await one(r) for r in found]
    gate = asyncio.Semaphore(PARALLEL_CARDS)

    async def gated(report: Mapping[str, Any]) -> datasets.Result | CrmError:
        async with gate:
            return await one(report)

    return list(await asyncio.gather(*(gated(r) for r in found)))


async def delete(acc: Access, report_id: int) -> None:
    await acc.get(Report, REPORT, report_id, action="delete")
    await Report.delete().where(Report.id == report_id)
    await audit.record("delete", model=REPORT, record_id=report_id)
