"""Warnings from reports, each stating the rule and the figures that fired it, sent once (a dedup key):

- trend: a report grouped by a date grain (and optionally by something else, a region) warns its owner when its
  first measure falls ``warn_falls`` periods in a row (once per group and last period);
- churn: a report grouped by a reference (customers) whose first measure is the latest date of something
  (``max:confirmed_at`` over orders) warns when that date is more than ``stale_days`` days ago — or the days of the
  customer's tier (``stale_days_by_tier``, :mod:`crm_reports.churn`) — once per customer and last date (a
  customer who orders again and lapses again is flagged again); the customer's owner gets an activity."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from core import datasets, db
from core.hooks import Notification
from core.i18n import gettext
from core.notifications import notify
from core.security import access, principal
from crm_reports import charts, churn, reports
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


def stale(result: datasets.Result, days: int, now: dt.datetime) -> list[dict[str, Any]]:
    """Groups whose latest date (the first measure) is more than ``days`` days before ``now``."""
    group = next((c for c in result.columns if c.kind == "dimension"), None)
    measure = next(c for c in result.columns if c.kind == "measure")
    out = []
    for row in result.rows:
        last = row.get(measure.key)
        if isinstance(last, str):
            last = dt.datetime.fromisoformat(last)
        if not isinstance(last, dt.datetime) or group is None or row.get(group.key) is None:
            continue
        last = last if last.tzinfo else last.replace(tzinfo=dt.UTC)
        if (now - last).days > days:
            out.append({"group": charts.category(row, group), "key": row.get(group.key), "last": last,
                        "days": (now - last).days, "measure": measure.label})
    return out


def describe_stale(report: dict[str, Any], warning: dict[str, Any], days: int) -> tuple[str, str]:
    title = gettext("%(report)s: %(who)s has nothing for %(days)s days") % {
        "report": report["name"], "who": warning["group"], "days": warning["days"]}
    if warning.get("tier"):
        body = gettext("Rule: warn when %(measure)s is more than %(limit)s days ago for tier %(tier)s. "
                       "Last: %(last)s") % {"measure": warning["measure"], "limit": days, "tier": warning["tier"],
                                            "last": charts.display(warning["last"])}
    else:
        body = gettext("Rule: warn when %(measure)s is more than %(limit)s days ago. Last: %(last)s") % {
            "measure": warning["measure"], "limit": days, "last": charts.display(warning["last"])}
    return title, body


async def lapsed(acc: access.Access, result: datasets.Result, spec: dict[str, Any],
                 now: dt.datetime) -> list[tuple[dict[str, Any], int]]:
    """Customers past their limit: ``stale_days``, or their tier's (``stale_days_by_tier``), with that limit."""
    default = int(spec.get("stale_days") or 0)
    per_tier = churn.by_tier(spec.get("stale_days_by_tier"))
    floor = min([d for d in (default, *per_tier.values()) if d] or [0])
    if not floor:
        return []
    found = stale(result, floor, now)
    tier_of = await churn.tiers(acc, [w["key"] for w in found]) if per_tier else {}
    out = []
    for w in found:
        tier = tier_of.get(w["key"])
        limit = per_tier.get(tier or "", default)
        if limit and w["days"] > limit:
            out.append(({**w, "tier": tier if tier in per_tier else ""}, limit))
    return out


async def check(report_ids: Sequence[int] | None = None, now: dt.datetime | None = None) -> int:
    """Evaluate every report asking for warnings, as its owner; returns how many new warnings were sent."""
    now = now or dt.datetime.now(dt.UTC)
    rows = await Report.select(Report.id, Report.spec, Report.owner).where(Report.owner.is_not_null())
    sent = 0
    for row in map(reports.loaded, rows):
        falls = int((row["spec"] or {}).get("warn_falls") or 0)
        days = int((row["spec"] or {}).get("stale_days") or 0) or bool((row["spec"] or {}).get("stale_days_by_tier"))
        if not (falls or days) or (report_ids is not None and row["id"] not in report_ids):
            continue
        who = await principal.load(row["owner"], implied=access.policy().implied)
        if who is None:
            continue
        acc = access.Access(who)
        report = await reports.get(acc, row["id"])
        result = await reports.result(acc, report)
        found = [(describe(report, w, falls), f"trend:{w['group']}:{w['periods'][-1]}", None)
                 for w in (falling(result, falls) if falls else [])]
        found += [(describe_stale(report, w, limit), f"stale:{w['key']}:{w['last'].date()}", w["key"])
                  for w, limit in (await lapsed(acc, result, report["spec"] or {}, now) if days else [])]
        for (title, body), what, customer in found:
            key = f"crm_reports.{report['id']}:{what}"
            async with db.atomic():  # the flag (the notification's dedup key) and the activity, or neither
                before = await notify_count(key)
                await notify(Notification(user_id=who.user_id, title=title, body=body,
                                          url=f"/reports/reports/{report['id']}", kind="warning",
                                          source="crm_reports"), dedup_key=key)
                new = await notify_count(key) > before
                if new and customer is not None:  # the customer's owner gets a call to make
                    await churn.activity(report, customer, who.user_id, title, body, key)
            sent += int(new)
    return sent


async def notify_count(key: str) -> int:
    from core.models import Notification as Row

    return int(await Row.count().where(Row.dedup_key == key[:200]))
