"""Tables of crm_reports: saved reports, dashboards (cards are a JSON list: arranged as a whole, versioned),
schedules and the log of their runs. Figures are never stored: they are computed as the viewer each time."""

from __future__ import annotations

from piccolo.columns import JSON, Boolean, ForeignKey, Integer, OnDelete, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from core.mixins import Created, Owned, Versioned


class Report(Versioned, Owned, Created, Table, tablename="crm_reports_report"):
    """A saved question on a dataset (``spec``: dimensions, measures, condition, sort, limit, totals) and how to
    show it. ``owner`` NULL: a default report of the addon (``template_key``), shared with roles."""

    id: Serial  # added by Piccolo; declared for type checkers

    name = Varchar(length=200)
    dataset = Varchar(length=120)
    spec = JSON(default="{}")
    chart = Varchar(length=20, default="bar")
    shared_roles = JSON(default="[]")
    shared_users = JSON(default="[]")
    template_key = Varchar(length=100, default="", index=True)


class Dashboard(Versioned, Owned, Created, Table, tablename="crm_reports_dashboard"):
    """Cards (``[{"report": id, "width": 1|2, "warn_below": n, "good_above": n}]`` in display order). A default
    dashboard (``template_key``) is refreshed by upgrades until someone edits it (``edited``)."""

    id: Serial  # added by Piccolo; declared for type checkers

    name = Varchar(length=200)
    cards = JSON(default="[]")
    shared_roles = JSON(default="[]")
    shared_users = JSON(default="[]")
    template_key = Varchar(length=100, default="", index=True)
    edited = Boolean(default=False)
    refresh_seconds = Integer(default=60)


class Schedule(Versioned, Owned, Created, Table, tablename="crm_reports_schedule"):
    """E-mail ``report`` as ``format`` to users and roles on a cron expression; figures as the owner sees them."""

    id: Serial  # added by Piccolo; declared for type checkers

    report = ForeignKey(Report, on_delete=OnDelete.cascade, index=True)
    cron = Varchar(length=100)
    format = Varchar(length=5, default="pdf")
    recipients = JSON(default="[]")  # user ids
    roles = JSON(default="[]")
    is_active = Boolean(default=True)
    next_run_at = Timestamptz(null=True, default=None, index=True)
    last_run_at = Timestamptz(null=True, default=None)


class ScheduleRun(Table, tablename="crm_reports_schedule_run"):
    """One run of a schedule: when, whether it was sent, to how many, and what went wrong."""

    id: Serial  # added by Piccolo; declared for type checkers

    schedule = ForeignKey(Schedule, on_delete=OnDelete.cascade, index=True)
    started_at = Timestamptz(default=TimestamptzNow())
    ok = Boolean(default=False)
    rows = Integer(default=0)
    recipients = Integer(default=0)
    detail = Text(default="")
