"""Reminders and stall alerts: sent when due, once — also when the job is retried or runs twice."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from crm_sales import activities, notify
from crm_sales.models import Activity, Notification, Opportunity
from sales_helpers import new_deal

from core import jobs, outbox
from core.models import Outbox


async def _notes(kind: str) -> list[dict[str, Any]]:
    return list(await Notification.select().where(Notification.kind == kind))


async def test_reminder_is_sent_when_due_and_only_once(org: Any) -> None:
    rep = await org.acc("rep1")
    now = notify.now()
    soon = await activities.create_activity(rep, {"kind": "call", "subject": "Call back",
                                                  "due_at": now + dt.timedelta(minutes=20), "remind_minutes": 30})
    await activities.create_activity(rep, {"kind": "meeting", "subject": "Later",
                                           "due_at": now + dt.timedelta(hours=5), "remind_minutes": 30})
    assert await activities.send_reminders(now) == 1
    assert await activities.send_reminders(now) == 0
    rows = await _notes("reminder")
    assert len(rows) == 1 and rows[0]["owner"] == org.ids["rep1"] and "Call back" in rows[0]["title"]
    assert (await Activity.select(Activity.reminded_at).where(Activity.id == soon).first())["reminded_at"]


async def test_reminder_job_retried_after_a_crash_reminds_once(org: Any, monkeypatch: Any) -> None:
    rep = await org.acc("rep1")
    await activities.create_activity(rep, {"subject": "Send brochure", "due_at": notify.now()})
    real = notify.notify
    calls = {"n": 0}

    async def crash_once(*args: Any, **kw: Any) -> bool:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("worker lost the database mid-job")
        return await real(*args, **kw)

    monkeypatch.setattr(activities, "notify", crash_once)
    job = await jobs.enqueue("crm_sales.send_activity_reminders")
    with pytest.raises(ConnectionError):
        await outbox.run_job(jobs.spec("crm_sales.send_activity_reminders"), job)
    assert await _notes("reminder") == []  # the claim rolled back with the failure
    await outbox.run_job(jobs.spec("crm_sales.send_activity_reminders"), job)  # Dramatiq's retry
    again = await jobs.enqueue("crm_sales.send_activity_reminders")  # and the next scheduled tick
    await outbox.run_job(jobs.spec("crm_sales.send_activity_reminders"), again)
    assert len(await _notes("reminder")) == 1
    states = {r["state"] for r in await Outbox.select(Outbox.state).where(Outbox.id.is_in([job, again]))}
    assert states == {"done"}


async def test_stall_alert_tells_owner_and_leader_once_and_rearms_on_move(org: Any) -> None:
    rep = await org.acc("rep1")
    opp_id = await new_deal(rep, "Quiet deal")
    await Opportunity.update({Opportunity.team: org.team_a}).where(Opportunity.id == opp_id)
    fresh = await new_deal(rep, "Busy deal")
    later = notify.now() + dt.timedelta(hours=49)
    await activities.create_activity(rep, {"subject": "Demo", "opportunity": fresh,
                                           "due_at": later})
    await Activity.update({Activity.created_at: later - dt.timedelta(hours=1)}).where(
        Activity.opportunity == fresh)
    assert await activities.flag_stalled(later) == [opp_id]
    assert await activities.flag_stalled(later) == []
    told = {r["owner"] for r in await _notes("stall")}
    assert told == {org.ids["rep1"], org.ids["manager"]}
    # a new activity re-arms the alert: the deal may stall again later
    follow = await activities.create_activity(rep, {"subject": "Follow up", "opportunity": opp_id, "due_at": later})
    await Activity.update({Activity.created_at: later}).where(Activity.id == follow)  # logged "at" later
    assert await activities.flag_stalled(later) == []
    assert set(await activities.flag_stalled(later + dt.timedelta(hours=49))) == {opp_id, fresh}
