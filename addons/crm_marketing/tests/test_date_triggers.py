"""Journey date triggers, enrolled by the daily job in one INSERT … SELECT: birthdays today (once; again a year
later with re-entry) and dormant people (no order for N months; without crm_sales, no change for N months)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from crm_contacts.models import Person
from crm_marketing import date_triggers, journeys
from crm_marketing.models import Journey, JourneyEnrollment

from core.errors import ValidationError


async def _journey(trigger: dict[str, Any], reentry: bool = False) -> int:
    rows = await Journey.insert(Journey(name="j", trigger=await journeys.check_trigger(trigger), is_active=True,
                                        allow_reentry=reentry, steps=[{"kind": "add_tag", "tag": "greeted"}]))
    return int(rows[0]["id"])


async def _enrolled(journey_id: int) -> list[int]:
    rows = await JourneyEnrollment.select(JourneyEnrollment.person).where(JourneyEnrollment.journey == journey_id)
    return sorted(int(r["person"]) for r in rows)


async def test_birthday_and_dormant(world: Any) -> None:
    p = world.people
    today = date_triggers._today()
    await Person.update({Person.birth_date: today.replace(year=1990)}).where(Person.id == p["李雷"])
    await Person.update({Person.birth_date: (today - dt.timedelta(days=3)).replace(year=1985)}).where(
        Person.id == p["张伟"])
    birthday = await _journey({"type": "birthday"}, reentry=True)
    assert await date_triggers.run_all() == 1
    assert await _enrolled(birthday) == [p["李雷"]]
    assert await date_triggers.run_all() == 0  # the same day again: nobody twice
    assert (await journeys.tick())["entered"] == 0  # the minute tick leaves date triggers to the daily job
    # a year later (the pass is over): with re-entry, again
    await JourneyEnrollment.update({JourneyEnrollment.state: "done", JourneyEnrollment.entered_at: (
        dt.datetime.now(dt.UTC) - dt.timedelta(days=365))}).where(JourneyEnrollment.journey == birthday)
    assert await date_triggers.enroll(birthday) == 1
    assert await _enrolled(birthday) == [p["李雷"], p["李雷"]]

    # dormant: without orders (no crm_sales), no change of the record for 3 months
    await Journey.update({Journey.is_active: False}).where(Journey.id == birthday)
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=120)
    await Person.update({Person.updated_at: long_ago}).where(Person.id.is_in([p["王芳"], p["赵敏"]]))
    await Person.update({Person.is_archived: True}).where(Person.id == p["赵敏"])  # archived: never
    dormant = await _journey({"type": "dormant", "months": 3})
    assert await date_triggers.run_all() == 1
    assert await _enrolled(dormant) == [p["王芳"]]
    await JourneyEnrollment.update({JourneyEnrollment.state: "done"}).where(JourneyEnrollment.journey == dormant)
    assert await date_triggers.run_all() == 0  # enters once (no re-entry)

    bad_triggers = (({"type": "dormant", "months": 0}, "trigger.months"), ({"type": "birthday", "x": 1}, "trigger.x"))
    for bad, path in bad_triggers:
        with pytest.raises(ValidationError) as err:
            await journeys.check_trigger(bad)
        assert path in err.value.fields
