"""Date triggers of journeys, enrolled by a daily job in one ``INSERT … SELECT`` each (the candidates are chosen
in SQL, never by a Python loop over people):

- ``{"type": "birthday"}``: people whose ``birth_date`` falls today (in ``CRM_TIMEZONE``'s calendar; a 29 February
  birthday is kept on 28 February in other years);
- ``{"type": "dormant", "months": 3}``: customers whose last confirmed order is more than N months old, when an
  addon provides orders (crm_sales); without orders, people whose record has not changed for N months.

A person enters once; with ``allow_reentry`` again once their last pass is over and the trigger fired anew
(a later birthday; a newer last order, i.e. they bought and fell dormant again). The journey's row is locked
while enrolling, as for the other triggers.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from crm_contacts.api import PERSON_TABLE

from core import db
from crm_marketing.models import Journey, JourneyEnrollment

DATE_TRIGGERS = ("birthday", "dormant")
_LIVE = 'p."is_archived" = {false} AND p."merged_into" IS NULL AND p."is_anonymized" = {false}'


def _today() -> dt.date:
    from zoneinfo import ZoneInfo

    from core.runtime import current

    # the settings checked the name at boot (CRM_TIMEZONE, Asia/Shanghai by default)
    return dt.datetime.now(ZoneInfo(current().settings.default_timezone)).date()


def _month_day_sql() -> str:
    return "to_char(p.\"birth_date\", 'MM-DD')" if db.is_postgres() else "strftime('%m-%d', p.\"birth_date\")"


def _months_ago(months: int, now: dt.datetime) -> dt.datetime:
    year, month = divmod(now.year * 12 + now.month - 1 - months, 12)
    day = min(now.day, 28)  # a month's end is close enough for "N months"
    return now.replace(year=year, month=month + 1, day=day)


async def enroll(journey_id: int) -> int:
    """Enroll the people a date trigger selects today; how many entered."""
    from crm_marketing import journeys, orders

    now = dt.datetime.now(dt.UTC)
    async with db.atomic():
        locked = (
            await Journey.update({Journey.is_active: Journey.is_active})
            .where((Journey.id == journey_id) & Journey.is_active.eq(True))
            .returning(Journey.trigger, Journey.allow_reentry)
        )
        if not locked:
            return 0
        trigger = journeys.loaded(locked[0]["trigger"], {})
        args: list[Any] = [journey_id, now, False, False]
        live = _LIVE.format(false="{}")
        if trigger.get("type") == "birthday":
            today = _today()
            days = [today.strftime("%m-%d")]
            if today.month == 2 and today.day == 28 and (today + dt.timedelta(days=1)).month == 3:
                days.append("02-29")
            # a pass begun within the last 300 days was for this birthday (whatever the time zone): a year's
            # earlier pass is older than that
            fired = "{}"
            match = f'p."birth_date" IS NOT NULL AND {_month_day_sql()} IN ({", ".join("{}" for _ in days)})'
            args += days
            fired_args: list[Any] = [now - dt.timedelta(days=300)]
            source = f'FROM "{PERSON_TABLE}" p WHERE {live} AND {match}'
        elif trigger.get("type") == "dormant":
            cutoff = _months_ago(int(trigger["months"]), now)
            src = await orders.source()
            if src is not None:
                last = (
                    f'(SELECT MAX(o."confirmed_at") FROM "{src.orders}" o '
                    "WHERE o.\"person\" = p.\"id\" AND o.\"state\" = 'confirmed')"
                )
                source = f'FROM "{PERSON_TABLE}" p WHERE {live} AND {last} < {{}}'
            else:
                last = 'p."updated_at"'
                source = f'FROM "{PERSON_TABLE}" p WHERE {live} AND {last} < {{}}'
            args.append(cutoff)
            fired, fired_args = last, []
        else:
            return 0
        # who was in it already: never again without re-entry; with it, not while a pass runs or when the last
        # pass began after the trigger last fired for them
        again = (
            'e."state" = \'active\' OR e."entered_at" >= ' + fired if locked[0]["allow_reentry"] else "1 = 1"
        )
        sql = (
            'INSERT INTO "crm_marketing_journey_enrollment" ("journey", "person", "position", "state", "entered_at", '
            '"note") SELECT {}, p."id", 0, \'active\', {}, \'\' '
            + source
            + ' AND NOT EXISTS (SELECT 1 FROM "crm_marketing_journey_enrollment" e WHERE e."journey" = '
            + str(int(journey_id))
            + ' AND e."person" = p."id" AND ('
            + again
            + ')) RETURNING "id"'
        )
        rows = await JourneyEnrollment.raw(sql, *args, *(fired_args if locked[0]["allow_reentry"] else []))
    return len(rows)


async def run_all() -> int:
    """The daily job: every active journey with a date trigger; how many people entered."""
    from crm_marketing import journeys

    entered = 0
    for j in await Journey.select(Journey.id, Journey.trigger).where(Journey.is_active.eq(True)):
        if journeys.loaded(j["trigger"], {}).get("type") in DATE_TRIGGERS:
            entered += await enroll(int(j["id"]))
    return entered
