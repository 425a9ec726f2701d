"""Activities (calls, meetings, e-mails, to-dos), their reminders, and the stall alert on idle deals.

Both jobs are idempotent by an atomic claim: a reminder sets ``reminded_at`` with ``WHERE reminded_at IS
NULL`` and notifies in the same transaction, so a retried or duplicated job finds nothing left to claim; the
stall alert does the same with ``stall_alerted_at`` (reset when the deal moves or gets a new activity).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from core import bulk, db
from core.automation import record_changed
from core.errors import ValidationError
from core.i18n import N_
from core.security import audit
from core.security.access import Access
from core.security.models import Team
from core.values import integer, record_id
from crm_sales import batching
from crm_sales.manifest import ACTIVITY, OPPORTUNITY
from crm_sales.models import Activity, Opportunity, PipelineStage
from crm_sales.notify import notify, now

KINDS = ("call", "meeting", "email", "todo")
# Reminders are looked for this far ahead; an activity may ask for at most this much notice.
MAX_NOTICE = dt.timedelta(days=7)


async def create_activity(acc: Access, values: dict[str, Any]) -> int:
    await acc.require(ACTIVITY, "create")
    kind = values.get("kind") or "todo"
    if kind not in KINDS:
        raise ValidationError({"kind": N_("must be one of %(choices)s") % {"choices": ", ".join(KINDS)}})
    if not (values.get("subject") or "").strip():
        raise ValidationError({"subject": N_("is required")})
    due = values.get("due_at")
    if isinstance(due, str):
        try:
            due = dt.datetime.fromisoformat(due)
        except ValueError:
            raise ValidationError({"due_at": N_("is not a date and time")}) from None
    if not isinstance(due, dt.datetime):
        raise ValidationError({"due_at": N_("is required")})
    if due.tzinfo is None:
        due = due.replace(tzinfo=dt.UTC)
    raw = values.get("remind_minutes")
    if isinstance(raw, str) and raw.strip().isascii() and raw.strip().isdigit():
        raw = int(raw)  # from a form
    remind = 30 if raw in (None, "") else integer(raw, "remind_minutes")
    if not 0 <= remind <= MAX_NOTICE.total_seconds() // 60:
        raise ValidationError({"remind_minutes": N_("must be between 0 and 10080")})
    ids = {name: record_id(values[name], name) if values.get(name) not in (None, "") else None
           for name in ("opportunity", "lead", "person")}
    await acc.check_references(Activity, ids)  # each linked record must be one the user may read
    opp_id = ids["opportunity"]
    team = None
    if opp_id:
        opp = await acc.get(Opportunity, OPPORTUNITY, opp_id)
        team = opp["team"]
    who = acc.principal.user_id if acc.principal else None
    data = {"kind": kind, "subject": values["subject"].strip()[:200], "note": values.get("note") or "",
            "due_at": due, "remind_minutes": remind, "opportunity": opp_id,
            "lead": ids["lead"], "person": ids["person"],
            "owner": values.get("owner") or who, "team": team}
    async with db.atomic():
        row = Activity(_data={Activity._meta.get_column_by_name(k): v for k, v in data.items()})
        await row.save()
        if opp_id:  # the deal is alive again: a later stall may alert anew
            await Opportunity.update({Opportunity.stall_alerted_at: None}).where(Opportunity.id == opp_id)
        await audit.record("create", model=ACTIVITY, record_id=row.id, changes=audit.diff(None, data))
        await record_changed(ACTIVITY, int(row.id), None, data)
    return int(row.id)


async def mark_done(acc: Access, activity_id: int) -> None:
    async with db.atomic():
        before = await acc.get(Activity, ACTIVITY, activity_id, action="update")
        done = await Activity.update({Activity.done_at: now(), Activity.version: Activity.version + 1}).where(
            (Activity.id == activity_id) & Activity.done_at.is_null()).returning(Activity.done_at)
        await audit.record("update", model=ACTIVITY, record_id=activity_id, detail="done")
        if done:
            await record_changed(ACTIVITY, activity_id, before, {"done_at": done[0]["done_at"]})


async def send_reminders(at: dt.datetime | None = None, *, batch: int | None = None) -> int:
    """Remind owners of activities whose reminder time has come; returns how many were sent.

    Reads ``batch`` activities at a time (:mod:`crm_sales.batching`): a backlog of any size stays bounded.
    """
    at = at or now()
    sent = 0
    async for rows in batching.batches(
            Activity, (Activity.id, Activity.subject, Activity.due_at, Activity.remind_minutes, Activity.owner),
            Activity.reminded_at.is_null() & Activity.done_at.is_null() & (Activity.is_archived == False)  # noqa: E712
            & (Activity.due_at <= at + MAX_NOTICE), batch):
        for row in sorted(rows, key=lambda r: r["due_at"]):
            if row["due_at"] - dt.timedelta(minutes=row["remind_minutes"]) > at:
                continue
            async with db.atomic():
                claimed = await Activity.update({Activity.reminded_at: at}).where(
                    (Activity.id == row["id"]) & Activity.reminded_at.is_null()).returning(Activity.id)
                if not claimed:
                    continue  # another run reminded it already
                if await notify(row["owner"], "reminder", N_("Reminder: %(subject)s") % {"subject": row["subject"]},
                                url="/sales/activities", dedup_key=f"remind:{row['id']}"):
                    sent += 1
    return sent


async def touched_since(opp_ids: list[int], since: dt.datetime) -> set[int]:
    """The deals among ``opp_ids`` with an activity created or completed at ``since`` or later."""
    if not opp_ids:
        return set()
    rows = await Activity.select(Activity.opportunity).where(
        bulk.any_of(Activity.opportunity, opp_ids) & ((Activity.created_at >= since) | (Activity.done_at >= since))
    ).distinct()
    return {row["opportunity"] for row in rows}


async def flag_stalled(at: dt.datetime | None = None, *, batch: int | None = None) -> list[int]:
    """Alert owner and team leader of each open deal idle in its stage past the stage's limit.

    A deal is idle since the later of its stage entry and its last activity touch, so it is stalled when
    both are before ``at - limit``. The database picks, stage by stage, the open deals that entered before
    that cutoff (``batch`` at a time) and which of them had a touch since: memory stays bounded whatever
    the number of deals.
    """
    at = at or now()
    flagged: list[int] = []
    stages = await PipelineStage.select(PipelineStage.id, PipelineStage.name, PipelineStage.stall_hours).where(
        PipelineStage.stall_hours > 0)
    for stage in stages:
        limit = stage["stall_hours"]
        cutoff = at - dt.timedelta(hours=limit)
        async for candidates in batching.batches(
                Opportunity, (Opportunity.id, Opportunity.name, Opportunity.owner, Opportunity.team,
                              Opportunity.stage_entered_at),
                (Opportunity.stage == stage["id"]) & (Opportunity.state == "open")
                & Opportunity.stall_alerted_at.is_null() & (Opportunity.is_archived == False)  # noqa: E712
                & (Opportunity.stage_entered_at < cutoff), batch):
            touched = await touched_since([c["id"] for c in candidates], cutoff)
            for opp in candidates:
                if opp["id"] not in touched and await _alert_stalled(opp, stage["name"], limit, at):
                    flagged.append(int(opp["id"]))
    return sorted(flagged)


async def _alert_stalled(opp: dict[str, Any], stage_name: str, limit: int, at: dt.datetime) -> bool:
    async with db.atomic():
        claimed = await Opportunity.update({Opportunity.stall_alerted_at: at}).where(
            (Opportunity.id == opp["id"]) & Opportunity.stall_alerted_at.is_null()).returning(Opportunity.id)
        if not claimed:
            return False
        leader = None
        if opp["team"] is not None:
            team = await Team.select(Team.leader).where(Team.id == opp["team"]).first()
            leader = team["leader"] if team else None
        key = f"stall:{opp['id']}:{opp['stage_entered_at'].isoformat()}"
        title = f"Deal stalled in {stage_name} for over {limit} h: {opp['name']}"
        for user_id in {opp["owner"], leader} - {None}:
            await notify(user_id, "stall", title, url=f"/sales/opportunities/{opp['id']}",
                         dedup_key=f"{key}:{user_id}")
    return True
