"""Segments kept fresh for the contacts that change: crm_contacts' created/updated events (and a confirmed or
cancelled order when crm_sales is installed) note the person; at the end of the writing transaction one
``crm_marketing.refresh_people`` job (an outbox row in that transaction, so it runs after the commit, within
seconds) recomputes those people's memberships set-based, and "entered a segment" journeys enroll the ones who
joined. An import of thousands of people makes a job per 500 of them, not one per person."""

from __future__ import annotations

import uuid

from core import db, jobs

_STATE = "crm_marketing.changed_people"
CHUNK = 500


async def note(person_id: int) -> None:
    """Have ``person_id``'s segment memberships recomputed once the current transaction commits."""
    if not db.in_atomic():
        async with db.atomic():
            await note(person_id)
        return
    state = db.transaction_state()
    assert state is not None
    pending: set[int] | None = state.get(_STATE)
    if pending is None:
        pending = state[_STATE] = set()
        db.before_commit(lambda: _enqueue(pending or set()))
    pending.add(int(person_id))


async def note_order(order_id: int) -> None:
    """An order was confirmed or cancelled (crm_sales' events carry the order's id): its customer's segments
    (order filters, value tier) are recomputed. The order's table is the kernel's ``crm_sales.orders`` dataset's,
    read by name as the order filters read it (crm_marketing never imports crm_sales)."""
    from crm_marketing import orders
    from crm_marketing.models import Segment

    src = await orders.source()
    if src is None:
        return
    rows = await Segment.raw(f'SELECT "person" FROM "{src.orders}" WHERE "id" = {{}}', int(order_id))
    if rows and rows[0]["person"] is not None:
        await note(int(rows[0]["person"]))


async def _enqueue(pending: set[int]) -> None:
    ids = sorted(pending)
    pending.clear()
    for start in range(0, len(ids), CHUNK):
        part = ids[start : start + CHUNK]
        await jobs.enqueue("crm_marketing.refresh_people", dedup_key=f"crm_marketing.people:{uuid.uuid4().hex}",
                           person_ids=part)


async def refresh(person_ids: list[int]) -> dict[int, list[int]]:
    """The job: memberships recomputed, then the journeys triggered by a segment someone joined enroll them."""
    from crm_marketing import journeys, segments
    from crm_marketing.models import Journey

    joined = await segments.refresh_people(person_ids)
    if joined:
        for j in await Journey.select(Journey.id, Journey.trigger).where(Journey.is_active.eq(True)):
            trigger = journeys.loaded(j["trigger"], {})
            if trigger.get("type") == "segment" and int(trigger.get("segment") or 0) in joined:
                await journeys.enroll(int(j["id"]), only=set(joined[int(trigger["segment"])]))
    return joined
