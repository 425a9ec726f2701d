"""The SLA clock: a ticket's deadlines recomputed from its state history in business hours.

Nothing is counted incrementally: ``recompute`` replays the ``StateChange`` rows of a ticket against the policy
and calendar that apply *now*, so editing a policy or a calendar and recomputing gives every open ticket the
same answer it would have had from the start. The clocks run while the ticket is new or open, pause in the
pending states and stop when it is resolved or closed (a reopened ticket's resolution clock runs on). The
first-response clock stops at the first public reply. A breach flag, once set, stays set.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import holidays as holidays_lib

from core import hooks
from core.hooks import Notification
from core.i18n import N_, gettext
from core.notifications import notify
from core.security.models import Team
from crm_service import businesstime
from crm_service.businesstime import Calendar as BusinessCalendar
from crm_service.models import Calendar, CalendarDay, SlaPolicy, StateChange, Ticket

PAUSED = frozenset({"pending_customer", "pending_third_party"})
DONE = frozenset({"resolved", "closed"})
TARGETS = {"first_response": N_("First response"), "next_response": N_("Next response"),
           "resolution": N_("Resolution")}

Interval = tuple[dt.datetime, dt.datetime | None]  # None: still running


@dataclass(frozen=True)
class Clock:
    due_at: dt.datetime | None  # when the target is (or was) reached; None while paused or stopped in time
    elapsed: int  # business seconds counted so far
    target: int
    breached: bool


def _aware(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


def counting_intervals(history: list[tuple[dt.datetime, str]], now: dt.datetime,
                       stop: dt.datetime | None = None) -> list[Interval]:
    """The stretches in which the clock runs: states neither pending nor done, cut at ``stop``."""
    out: list[Interval] = []
    for i, (at, state) in enumerate(history):
        end: dt.datetime | None = history[i + 1][0] if i + 1 < len(history) else None
        if state in PAUSED or state in DONE:
            continue
        if stop is not None:
            if at >= stop:
                break
            end = stop if end is None or end > stop else end
        out.append((at, end))
    return out


def run_clock(cal: BusinessCalendar, intervals: list[Interval], target: int, now: dt.datetime) -> Clock:
    counted = 0
    for start, end in intervals:
        if end is None:
            due = businesstime.add_business(cal, start, target - counted)
            elapsed = counted + businesstime.business_seconds(cal, start, now)
            return Clock(due, elapsed, target, due is not None and due <= now)
        span = businesstime.business_seconds(cal, start, end)
        if counted + span >= target:
            due = businesstime.add_business(cal, start, target - counted)
            return Clock(due, counted + span, target, counted + span > target)
        counted += span
    return Clock(None, counted, target, False)


async def load_calendar(calendar_id: int, years: range | None = None) -> BusinessCalendar:
    row = await Calendar.select().where(Calendar.id == calendar_id).first()
    if row is None:
        return BusinessCalendar(hours=businesstime.office_hours())
    hours: dict[int, tuple[tuple[int, int], ...]] = {}
    stored = row["hours"]
    for day, windows in ((json.loads(stored) if isinstance(stored, str) else stored) or {}).items():
        hours[int(day)] = tuple((businesstime._minute(a), businesstime._minute(b)) for a, b in windows)
    this_year = dt.date.today().year
    years = years or range(this_year - 2, this_year + 3)
    public: frozenset[dt.date] = frozenset()
    if row["country"]:
        try:
            public = frozenset(holidays_lib.country_holidays(row["country"], years=years).keys())
        except NotImplementedError:
            public = frozenset()
    days = await CalendarDay.select().where(CalendarDay.calendar == calendar_id)
    return BusinessCalendar(tz=row["timezone"], hours=hours, holidays=public,
                            extra_working=frozenset(d["day"] for d in days if d["is_working"]),
                            days_off=frozenset(d["day"] for d in days if not d["is_working"]))


async def policy_for(ticket: dict[str, Any]) -> dict[str, Any] | None:
    """The most specific active policy matching the ticket's team, priority, type and a tag of its customer
    (ties: the oldest)."""
    from crm_service.dispatch import customer_tags

    best: tuple[int, int] | None = None
    chosen: dict[str, Any] | None = None
    policies = await SlaPolicy.select().where(SlaPolicy.is_active == True).order_by(SlaPolicy.id)  # noqa: E712
    tags = await customer_tags(ticket) if any(p["customer_tag"] for p in policies) else frozenset()
    for p in policies:
        criteria = (("team", p["team"]), ("priority", p["priority"]), ("ticket_type", p["ticket_type"]))
        if any(want and ticket.get(name) != want for name, want in criteria):
            continue
        if p["customer_tag"] and p["customer_tag"].strip().casefold() not in tags:
            continue
        score = (sum(1 for _, want in criteria if want) + (1 if p["customer_tag"] else 0), -int(p["id"]))
        if best is None or score > best:
            best, chosen = score, p
    return chosen


async def recompute(ticket_id: int, *, now: dt.datetime | None = None) -> dict[str, Clock]:
    """Recompute one ticket's deadlines and breach flags; tell the assignee and the team leader of a new breach."""
    now = now or dt.datetime.now(dt.UTC)
    ticket = await Ticket.select().where(Ticket.id == ticket_id).first()
    if ticket is None:
        return {}
    policy = await policy_for(ticket)
    if policy is None:
        await Ticket.update({Ticket.sla_policy: None, Ticket.first_response_due_at: None,
                             Ticket.resolution_due_at: None}).where(Ticket.id == ticket_id)
        return {}
    cal = await load_calendar(int(policy["calendar"]))
    history = [(_aware(r["at"]), r["to_state"]) for r in await StateChange.select(
        StateChange.at, StateChange.to_state).where(StateChange.ticket == ticket_id).order_by(StateChange.at)
        .order_by(StateChange.id)]
    responded = _aware(ticket["first_response_at"]) if ticket["first_response_at"] else None
    clocks = {
        "first_response": run_clock(cal, counting_intervals(history, now, responded),
                                    int(policy["first_response_minutes"]) * 60, now),
        "resolution": run_clock(cal, counting_intervals(history, now), int(policy["resolution_minutes"]) * 60, now),
    }
    waiting = await _unanswered_since(ticket_id, responded) if policy["next_response_minutes"] else None
    if waiting is not None:
        answered = await _answered_after(ticket_id, waiting)
        intervals = [(max(a, waiting), b) for a, b in counting_intervals(history, now, answered)
                     if b is None or b > waiting]
        clocks["next_response"] = run_clock(cal, intervals, int(policy["next_response_minutes"]) * 60, now)
    next_due = clocks["next_response"].due_at if "next_response" in clocks else None
    values: dict[Any, Any] = {Ticket.sla_policy: policy["id"],
                              Ticket.first_response_due_at: clocks["first_response"].due_at,
                              Ticket.resolution_due_at: clocks["resolution"].due_at,
                              Ticket.next_response_due_at: next_due}
    fresh = [name for name, clock in clocks.items() if clock.breached and not ticket[f"{name}_breached"]]
    for name in fresh:
        values[Ticket._meta.get_column_by_name(f"{name}_breached")] = True
    await Ticket.update(values).where(Ticket.id == ticket_id)
    for name in fresh:
        await _tell_breach(ticket, name)
    return clocks


async def _unanswered_since(ticket_id: int, responded: dt.datetime | None) -> dt.datetime | None:
    """When the oldest customer message after the first response that no reply followed arrived."""
    if responded is None:
        return None
    from crm_service.models import Message

    last_reply = await Message.select(Message.created_at).where(
        (Message.ticket == ticket_id) & (Message.kind == "reply")).order_by(Message.created_at, ascending=False).first()
    since = max(responded, _aware(last_reply["created_at"])) if last_reply else responded
    row = await Message.select(Message.created_at).where(
        (Message.ticket == ticket_id) & (Message.kind == "inbound") & (Message.created_at > since)).order_by(
        Message.created_at).first()
    return _aware(row["created_at"]) if row else None


async def _answered_after(ticket_id: int, since: dt.datetime) -> dt.datetime | None:
    from crm_service.models import Message

    row = await Message.select(Message.created_at).where(
        (Message.ticket == ticket_id) & (Message.kind == "reply") & (Message.created_at > since)).order_by(
        Message.created_at).first()
    return _aware(row["created_at"]) if row else None


async def _tell_breach(ticket: dict[str, Any], target: str) -> None:
    from crm_service.tickets import reference

    who = {ticket["owner"]} if ticket["owner"] else set()
    if ticket["team"]:
        team = await Team.select(Team.leader).where(Team.id == ticket["team"]).first()
        if team and team["leader"]:
            who.add(team["leader"])
    title = gettext("SLA breached: %(target)s of %(ref)s") % {"target": gettext(TARGETS[target]),
                                                                 "ref": reference(int(ticket["id"]))}
    for user_id in sorted(who):
        await notify(Notification(user_id=int(user_id), title=title, body=ticket["subject"],
                                  url=f"/service/tickets/{ticket['id']}", kind="warning", source="crm_service"),
                     dedup_key=f"crm_service.breach.{ticket['id']}.{target}.{user_id}")
    await hooks.publish("crm_service_sla_breached", ticket_id=int(ticket["id"]), target=target)


async def check_open_tickets(now: dt.datetime | None = None) -> int:
    """The scheduled sweep: warn the assignee of deadlines coming within their policy's warning time, and
    recompute every ticket whose running clock may have passed its deadline."""
    now = now or dt.datetime.now(dt.UTC)
    await warn_before_breach(now)
    rows = await Ticket.select(Ticket.id).where(
        Ticket.state.not_in(sorted(DONE | PAUSED))
        & (((Ticket.first_response_due_at <= now) & (Ticket.first_response_breached == False))  # noqa: E712
           | ((Ticket.next_response_due_at <= now) & (Ticket.next_response_breached == False))  # noqa: E712
           | ((Ticket.resolution_due_at <= now) & (Ticket.resolution_breached == False))))  # noqa: E712
    for r in rows:
        await recompute(int(r["id"]), now=now)
    return len(rows)


async def warn_before_breach(now: dt.datetime) -> int:
    """One warning per ticket, target and deadline to the assignee when a deadline is within ``warn_minutes``."""
    from crm_service.tickets import reference

    told = 0
    horizon = now + dt.timedelta(days=1)  # no policy warns earlier than a day ahead
    for target in ("first_response", "next_response", "resolution"):
        due_col = Ticket._meta.get_column_by_name(f"{target}_due_at")
        rows = await Ticket.select(Ticket.id, Ticket.subject, Ticket.owner, due_col.as_alias("due"),
                                   Ticket.sla_policy.warn_minutes.as_alias("warn")).where(
            Ticket.state.not_in(sorted(DONE | PAUSED)) & Ticket.owner.is_not_null() & (due_col > now)
            & (due_col <= horizon))
        for r in rows:
            due = _aware(r["due"])
            if due - now > dt.timedelta(minutes=int(r["warn"] or 0)):
                continue
            title = gettext("SLA warning: %(target)s of %(ref)s due soon") % {
                "target": gettext(TARGETS[target]), "ref": reference(int(r["id"]))}
            await notify(Notification(user_id=int(r["owner"]), title=title, body=r["subject"],
                                      url=f"/service/tickets/{r['id']}", kind="warning", source="crm_service"),
                         dedup_key=f"crm_service.warn.{r['id']}.{target}.{due.isoformat()}")
            told += 1
    return told
