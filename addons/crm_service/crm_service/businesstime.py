"""Business-hours arithmetic: how much working time lies between two instants, and when N working seconds end.

Pure functions over a frozen :class:`Calendar` (no database), so the SLA clock can be recomputed from a
ticket's state history at any time and tested against a minute-by-minute reference.

An instant counts as working time when its wall-clock time in the calendar's zone falls inside one of the
working windows of a working day. A day is a working day, in this order of precedence: listed as a day off
(the editable table: company closures, the Saturday before 调休 swapped away); listed as an extra working day
(China's make-up working Saturdays/Sundays, which take the hours of ``make_up_weekday``); a public holiday;
otherwise when its weekday has windows. Windows must not contain a daylight-saving jump (keep them between
04:00 and 24:00), which every real office calendar does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

Window = tuple[int, int]  # [start, end) in minutes after local midnight

#: the longest stretch searched for working time: a calendar without any (every day off) never ends a target
HORIZON_DAYS = 3 * 366


@dataclass(frozen=True)
class Calendar:
    tz: str = "Asia/Shanghai"
    #: weekday (0 = Monday) → working windows of that day
    hours: dict[int, tuple[Window, ...]] = field(default_factory=dict)
    holidays: frozenset[dt.date] = frozenset()
    extra_working: frozenset[dt.date] = frozenset()
    days_off: frozenset[dt.date] = frozenset()
    #: whose hours an extra working day keeps (a 调休 Saturday is worked like a Monday)
    make_up_weekday: int = 0

    def windows(self, day: dt.date) -> tuple[Window, ...]:
        if day in self.days_off:
            return ()
        if day in self.extra_working:
            return self.hours.get(self.make_up_weekday, ())
        if day in self.holidays:
            return ()
        return self.hours.get(day.weekday(), ())

    def is_working(self, at: dt.datetime) -> bool:
        """Whether the instant ``at`` (aware) is working time."""
        local = at.astimezone(ZoneInfo(self.tz))
        minute = local.hour * 60 + local.minute
        return any(a <= minute < b for a, b in self.windows(local.date()))


def office_hours(start: str = "09:00", end: str = "18:00", days: range = range(5)) -> dict[int, tuple[Window, ...]]:
    """The same window on each of ``days`` (Monday-Friday by default)."""
    a, b = _minute(start), _minute(end)
    return {d: ((a, b),) for d in days}


def _minute(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def _spans(cal: Calendar, first: dt.date, days: int) -> Iterator[tuple[dt.datetime, dt.datetime]]:
    """The working spans (UTC) of ``days`` local days from ``first``, in order."""
    zone = ZoneInfo(cal.tz)
    for n in range(days):
        day = first + dt.timedelta(days=n)
        for a, b in sorted(cal.windows(day)):
            start = dt.datetime.combine(day, dt.time(0), tzinfo=zone) + dt.timedelta(minutes=a)
            end = dt.datetime.combine(day, dt.time(0), tzinfo=zone) + dt.timedelta(minutes=b)
            # wall-clock arithmetic (combine + timedelta) then to UTC: the window as the office's clock reads it
            yield _utc(start), _utc(end)


def _utc(at: dt.datetime) -> dt.datetime:
    return dt.datetime.fromtimestamp(at.timestamp(), dt.UTC)


def _local_date(cal: Calendar, at: dt.datetime) -> dt.date:
    return at.astimezone(ZoneInfo(cal.tz)).date()


def business_seconds(cal: Calendar, start: dt.datetime, end: dt.datetime) -> int:
    """Working seconds in [start, end) (0 when end <= start). Both aware."""
    if end <= start:
        return 0
    first = _local_date(cal, start) - dt.timedelta(days=1)
    days = (_local_date(cal, end) - first).days + 2
    total = 0.0
    for a, b in _spans(cal, first, days):
        lo, hi = max(a, start), min(b, end)
        if hi > lo:
            total += (hi - lo).total_seconds()
    return int(total)


def add_business(cal: Calendar, start: dt.datetime, seconds: int) -> dt.datetime | None:
    """The earliest instant at which ``seconds`` of working time have passed since ``start`` (``start`` itself
    for 0); None when the calendar has no working time within ``HORIZON_DAYS``."""
    if seconds <= 0:
        return start
    left = float(seconds)
    first = _local_date(cal, start) - dt.timedelta(days=1)
    for a, b in _spans(cal, first, HORIZON_DAYS):
        lo = max(a, start)
        if b <= lo:
            continue
        span = (b - lo).total_seconds()
        if span >= left:
            return lo + dt.timedelta(seconds=left)
        left -= span
    return None
