"""Business-hours arithmetic against a minute-by-minute reference (property-based, small examples)."""

from __future__ import annotations

import datetime as dt

from crm_service.businesstime import Calendar, add_business, business_seconds, office_hours
from hypothesis import given, settings
from hypothesis import strategies as st

ZONES = ("Asia/Shanghai", "UTC", "Europe/Berlin", "America/New_York")
BASE = dt.datetime(2026, 3, 20, tzinfo=dt.UTC)  # spans Europe's and America's daylight-saving change
DAYS = [BASE.date() + dt.timedelta(days=n) for n in range(-2, 20)]


@st.composite
def calendars(draw: st.DrawFn) -> Calendar:
    hours: dict[int, tuple[tuple[int, int], ...]] = {}
    for weekday in range(7):
        cuts = sorted(draw(st.sets(st.integers(4 * 60, 24 * 60).map(lambda m: m - m % 30), max_size=4)))
        # pairs of cut points as windows; a lone last cut is dropped
        hours[weekday] = tuple((cuts[i], cuts[i + 1]) for i in range(0, len(cuts) - 1, 2) if cuts[i] < cuts[i + 1])
    pick = st.frozensets(st.sampled_from(DAYS), max_size=4)
    return Calendar(tz=draw(st.sampled_from(ZONES)), hours=hours, holidays=draw(pick), extra_working=draw(pick),
                    days_off=draw(pick), make_up_weekday=draw(st.integers(0, 6)))


instants = st.integers(0, 12 * 24 * 60).map(lambda m: BASE + dt.timedelta(minutes=m))


def reference_minutes(cal: Calendar, start: dt.datetime, end: dt.datetime) -> int:
    n, at = 0, start
    while at < end:
        n += cal.is_working(at)
        at += dt.timedelta(minutes=1)
    return n


@settings(max_examples=40, deadline=None)
@given(cal=calendars(), start=instants, length=st.integers(0, 4 * 24 * 60))
def test_business_seconds_match_the_minute_by_minute_count(cal: Calendar, start: dt.datetime, length: int) -> None:
    end = start + dt.timedelta(minutes=length)
    assert business_seconds(cal, start, end) == 60 * reference_minutes(cal, start, end)


@settings(max_examples=40, deadline=None)
@given(cal=calendars(), start=instants, minutes=st.integers(0, 3000))
def test_add_business_is_the_earliest_instant_reaching_the_target(cal: Calendar, start: dt.datetime,
                                                                  minutes: int) -> None:
    due = add_business(cal, start, minutes * 60)
    if due is None:  # only a calendar without enough working time ahead
        assert reference_minutes(cal, start, start + dt.timedelta(days=30)) < minutes
        return
    assert reference_minutes(cal, start, due) == minutes
    if minutes:
        # one minute earlier the target is not reached yet: the deadline is not pushed to the next opening
        assert reference_minutes(cal, start, due - dt.timedelta(minutes=1)) == minutes - 1


def test_chinese_make_up_working_day_and_holiday() -> None:
    # 2026-02-14 (Saturday) is worked; 2026-02-16 (Monday) is Spring Festival
    cal = Calendar(tz="Asia/Shanghai", hours=office_hours(), holidays=frozenset({dt.date(2026, 2, 16)}),
                   extra_working=frozenset({dt.date(2026, 2, 14)}))
    fri_five = dt.datetime(2026, 2, 13, 17, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    # 1 h Friday, 9 h Saturday, Sunday off, Monday holiday, then Tuesday 09:00 + 2 h
    due = add_business(cal, fri_five, 12 * 3600)
    assert due == dt.datetime(2026, 2, 17, 11, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert business_seconds(cal, fri_five, due) == 12 * 3600
