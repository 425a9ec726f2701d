"""crm_marketing with crm_sales installed: a confirmed order (crm_sales' event, read back through the orders
dataset's table) refreshes its customer's segments over orders within one job, and the daily "dormant" trigger
picks customers whose last confirmed order is older than N months; SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from crm_contacts.models import Person
from crm_marketing import date_triggers, journeys, segments
from crm_marketing.models import Journey, JourneyEnrollment, Segment, SegmentMember
from crm_sales.models import Order

from core import db, hooks, jobs, outbox
from core.models import Outbox

NOW = dt.datetime.now(dt.UTC)


async def _person(name: str) -> int:
    row = Person(name=name, email=f"{name}@example.cn", email_key=f"{name}@example.cn")
    await row.save()
    return int(row.id)


async def _order(person: int, at: dt.datetime) -> int:
    rows = await Order.insert(Order(person=person, total=Decimal(100), currency="CNY", state="confirmed",
                                    confirmed_at=at))
    return int(rows[0]["id"])


async def test_order_refreshes_segment_and_dormant_trigger(crm_boot: Any) -> None:
    await crm_boot("crm_marketing", "crm_sales")
    buyer, old, never = await _person("buyer"), await _person("old"), await _person("never")
    await _order(old, NOW - dt.timedelta(days=200))
    recent = int((await Segment.insert(Segment(
        name="bought lately", condition={"field": "days_since_last_order", "op": "lt", "value": 30})))[0]["id"])
    await segments.build(recent)
    assert not await SegmentMember.exists().where(SegmentMember.segment == recent)

    async with db.atomic():  # as crm_sales confirms an order: the order and the event in one transaction
        order = await _order(buyer, NOW)
        await hooks.publish("crm_sales_order_confirmed", order_id=order)
    job = await Outbox.select().where(Outbox.actor == "crm_marketing.refresh_people").first()
    payload = json.loads(job["payload"]) if isinstance(job["payload"], str) else job["payload"]
    assert payload["person_ids"] == [buyer]
    await outbox.run_job(jobs.spec("crm_marketing.refresh_people"), job["id"])
    members = {int(r["person"]) for r in await SegmentMember.select().where(SegmentMember.segment == recent)}
    assert members == {buyer}

    # dormant for 3 months: the customer whose last order is 200 days old (not the new buyer, not one who never
    # ordered: without orders there is nothing to fall dormant from)
    dormant = await Journey.insert(Journey(name="win back", is_active=True,
                                           trigger=await journeys.check_trigger({"type": "dormant", "months": 3}),
                                           steps=[{"kind": "add_tag", "tag": "win-back"}]))
    assert await date_triggers.run_all() == 1
    who = [int(r["person"]) for r in await JourneyEnrollment.select(JourneyEnrollment.person).where(
        JourneyEnrollment.journey == dormant[0]["id"])]
    assert who == [old] and never not in who
