"""The tables of automation rules: the rules themselves and their run log.

A run is one rule acting on one record for one triggering event (a change, a time reached, a day's tick). Its
``key`` is unique per (rule, event): inserting it is what makes the rule act once however often the event is
delivered; ``step`` counts the actions done, so a run cut short by a killed worker resumes where it stopped.
"""

from __future__ import annotations

from piccolo.columns import JSON, BigInt, Boolean, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class AutomationRule(Table, tablename="core_automation_rule"):
    """When ``trigger`` happens to a record of ``model`` that satisfies ``condition`` (core.conditions), run
    ``actions`` in order. ``scanned_until``: how far time-based triggers have looked (set when activated)."""

    id: Serial
    name = Varchar(length=200)
    model = Varchar(length=100, index=True)
    trigger = JSON(default="{}")
    condition = JSON(default="{}")
    actions = JSON(default="[]")
    is_active = Boolean(default=False, index=True)
    version = Integer(default=1)
    created_by = BigInt(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    activated_at = Timestamptz(null=True, default=None)
    scanned_until = Timestamptz(null=True, default=None)


class AutomationRun(Table, tablename="core_automation_run"):
    """One rule acting on one record for one event: what fired, on which record, what it did, what failed.
    ``state``: pending | running | done | failed | skipped (loop protection)."""

    id: Serial
    rule_id = BigInt(index=True)
    key = Varchar(length=200, unique=True)
    model = Varchar(length=100)
    record_id = BigInt()
    trigger = Varchar(length=80)
    depth = Integer(default=0)
    chain = JSON(default="[]")
    snapshot = JSON(default="{}")
    state = Varchar(length=20, default="pending", index=True)
    step = Integer(default=0)
    attempts = Integer(default=0)
    lease_until = Timestamptz(null=True, default=None)
    result = JSON(default="[]")
    error = Text(default="")
    created_at = Timestamptz(default=TimestamptzNow())
    finished_at = Timestamptz(null=True, default=None)
