"""The tables of approval flows: the rules administrators write, the requests they raise and, per request, one
task for each person who may decide its current step.

A request freezes what it was asked under: the record's values (``snapshot`` and their ``fingerprint``), the
rule's ``rule_version`` and its ``steps``. Editing or deleting the rule later changes no request already made.
"""

from __future__ import annotations

from piccolo.columns import JSON, BigInt, Boolean, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class ApprovalRule(Table, tablename="core_approval_rule"):
    """Before ``action`` on a record of ``model`` whose values satisfy ``condition`` (core.conditions), the
    approvers of ``steps`` (in order: a role, the owner's team leader, a named user) must approve. Rules of one
    action are tried by ``sequence``, then id: the first that matches decides."""

    id: Serial
    name = Varchar(length=200)
    action = Varchar(length=100, index=True)
    model = Varchar(length=100)
    condition = JSON(default="{}")
    steps = JSON(default="[]")
    is_active = Boolean(default=True)
    sequence = Integer(default=100)
    version = Integer(default=1)
    created_by = BigInt(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class ApprovalRequest(Table, tablename="core_approval_request"):
    """One action held for approval. ``state``: pending | approved | rejected | superseded (the record changed
    while it waited: a new request replaced it). ``step`` is the index of the step awaiting a decision."""

    id: Serial
    action = Varchar(length=100)
    model = Varchar(length=100)
    record_id = BigInt(index=True)
    title = Varchar(length=300, default="")
    url = Varchar(length=500, default="")
    rule_id = BigInt(null=True, default=None)
    rule_name = Varchar(length=200, default="")
    rule_version = Integer(default=1)
    steps = JSON(default="[]")
    step = Integer(default=0)
    state = Varchar(length=20, default="pending", index=True)
    snapshot = JSON(default="{}")
    fingerprint = Varchar(length=64, default="")
    requested_by = BigInt(null=True, default=None, index=True)
    requested_at = Timestamptz(default=TimestamptzNow())
    decided_at = Timestamptz(null=True, default=None)
    comment = Text(default="")
    performed_at = Timestamptz(null=True, default=None)
    outcome = Text(default="")


class ApprovalTask(Table, tablename="core_approval_task"):
    """One person who may decide one step of a request (``via`` says why: the role, the team they lead, named).
    ``state``: pending | approved | rejected | skipped (another approver of the step decided first)."""

    id: Serial
    request_id = BigInt(index=True)
    step = Integer(default=0)
    user_id = BigInt(index=True)
    via = Varchar(length=200, default="")
    state = Varchar(length=20, default="pending", index=True)
    comment = Text(default="")
    created_at = Timestamptz(default=TimestamptzNow())
    decided_at = Timestamptz(null=True, default=None)
