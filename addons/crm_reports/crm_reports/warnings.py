"""Trend warnings: a report grouped by a date grain (and optionally by something else, a region) may ask to warn
its owner when its first measure falls ``falls`` periods in a row. Each warning states the rule and the figures
that fired it, and is sent once per report, group and last period (the notification's dedup key)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from core import datasets
from core.hooks import Notification
from core.i18n import gettext
from core.notifications import notify
from core.security import access, principal
from crm_reports import charts, reports
from crm_reports.models import Report

MIN_FALLS, MAX_FALLS = 2, 24


def falling(result: datasets.Result, falls: int) -> list[dict[str, Any]]:
    """Groups whose first measure fell at each of the last ``falls`` periods: the period dimension is the first
    date-grain one (its values sort in time order), the other dimension (if any) names the group."""
    dims = [c for c in result.columns if c.kind == "dimension"]
    measure = next(c for c in result.columns if c.kind == "measure")
    period = next((c for c in dims if "__" in c.key and c.key.rsplit("__", 1)[1] in datasets.GRAINS), None)
    if period is None:
        return []
    group = next((c for c in dims if c is not period), None)
    series: dict[Any, dict[str, Any]] = defaultdict(dict)
    names: dict[Any, str] = {}
    for row in result.rows:
        key = row.get(group.key) if group else None
        series[key][str(row.get(period.key))] = row.get(measure.key) or 0
        names[key] = charts.category(row, group) if group else ""
    out = []
    for key, points in series.items():
        periods = sorted(points)[-(falls + 1):]
        figures = [points[p] for p in periods]
        if len(figures) == falls + 1 and all(b < a for a, b in zip(figures, figures[1:], strict=False)):
            out.append({"group": names[key], "periods": periods, "figures": figures, "measure": measure.label})
    return out


def describe(report: dict[str, Any], warning: dict[str, Any], falls: int) -> tuple[str, str]:
    """The notification's title and body: the rule, then each period's figure."""
    where = f" — {warning['group']}" if warning["group"] else ""
    title = gettext("%(report)s: falling %(n)s periods in a row") % {"report": report["name"], "n": falls} + where
    figures = ", ".join(f"{p}: {charts.display(v)}" for p, v in zip(warning["periods"], warning["figures"],
                                                                    strict=True))
    body = gettext("Rule: warn when %(measure)s falls %(n)s periods in a row. Figures: %(figures)s") % {
        "measure": warning["measure"], "n": falls, "figures": figures}
    return title, body


async def check(report_ids: Sequence[int] | None = None) -> int:
    """Evaluate every report asking for trend warnings, as its owner; returns how many new warnings were sent."""
    rows = await Report.select(Report.id, Report.spec, Report.owner).where(Report.owner.is_not_null())
    sent = 0
    for row in map(reports.loaded, rows):
        falls = int((row["spec"] or {}).get("warn_falls") or 0)
        if not falls or (report_ids is not None and row["id"] not in report_ids):
            continue
        who = await principal.load(row["owner"], implied=access.policy().implied)
        if who is None:
            continue
        acc = access.Access(who)
        report = await reports.get(acc, row["id"])
        for warning in falling(await reports.result(acc, report), falls):
            title, body = describe(report, warning, falls)
            key = f"crm_reports.trend:{report['id']}:{warning['group']}:{warning['periods'][-1]}"
            before = await notify_count(key)
            await notify(Notification(user_id=who.user_id, title=title, body=body,
                                      url=f"/reports/reports/{report['id']}", kind="warning",
                                      source="crm_reports"), dedup_key=key)
            sent += int(await notify_count(key) > before)
    return sent


async def notify_count(key: str) -> int:
    from core.models import Notification as Row

    return int(await Row.count().where(Row.dedup_key == key[:200]))
