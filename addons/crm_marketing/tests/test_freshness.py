"""Segments stay fresh for one contact: crm_contacts' "person updated" event (API, tags, bulk change) queues one
refresh job after the commit, which recomputes that person's memberships set-based; a journey triggered by the
segment enrolls who joined."""

from __future__ import annotations

import json
from typing import Any

from crm_contacts.api import add_tag, person_tags, remove_tag
from crm_marketing import segments
from crm_marketing.models import Journey, JourneyEnrollment, Segment, SegmentMember
from marketing_helpers import build_world

from core import jobs, outbox
from core.models import Outbox
from core.testing import csrf_of, login_client

SOUTH_VIP = {
    "all": [{"field": "province", "op": "eq", "value": "广东"}, {"field": "tags", "op": "contains", "value": "vip"}]
}


async def _run_refreshes() -> list[list[int]]:
    """Run the queued refresh jobs as the worker would; the person ids each carried."""
    seen = []
    for job in await Outbox.select(Outbox.id, Outbox.payload).where(
        Outbox.actor == "crm_marketing.refresh_people"
    ).order_by(Outbox.id):
        await outbox.run_job(jobs.spec("crm_marketing.refresh_people"), job["id"])
        payload = json.loads(job["payload"]) if isinstance(job["payload"], str) else job["payload"]
        seen.append(payload["person_ids"])
        await Outbox.delete().where(Outbox.id == job["id"])
    return seen


async def _members(segment_id: int) -> set[int]:
    rows = await SegmentMember.select(SegmentMember.person).where(SegmentMember.segment == segment_id)
    return {int(r["person"]) for r in rows}


async def test_changed_contact_joins_and_leaves_and_journey_reacts(crm_client: Any) -> None:
    from core.runtime import current

    client = await crm_client("crm_marketing")
    world = await build_world(current())
    p = world.people
    seg = int((await Segment.insert(Segment(name="华南 VIP", condition=SOUTH_VIP)))[0]["id"])
    await segments.build(seg)
    assert await _members(seg) == {p["王芳"], p["赵敏"]}
    journey = int((await Journey.insert(Journey(
        name="welcome", trigger={"type": "segment", "segment": seg}, steps=[{"kind": "add_tag", "tag": "welcomed"}],
        is_active=True)))[0]["id"])
    await Outbox.delete().where(Outbox.actor == "crm_marketing.refresh_people")

    # a tag through crm_contacts' tag API: 李雷 (广东) becomes a VIP → one job after the commit, for him alone
    assert await add_tag(p["李雷"], "vip") and not await add_tag(p["李雷"], "vip")
    assert "vip" in await person_tags(p["李雷"])
    assert await _run_refreshes() == [[p["李雷"]]]
    assert await _members(seg) == {p["王芳"], p["赵敏"], p["李雷"]}
    assert (await Segment.select(Segment.member_count).where(Segment.id == seg).first())["member_count"] == 3
    enrolled = await JourneyEnrollment.select(JourneyEnrollment.person).where(JourneyEnrollment.journey == journey)
    assert [r["person"] for r in enrolled] == [p["李雷"]]  # the others were members before: the tick enrolls them

    # the JSON API: 王芳 moves to 北京 → she leaves; the job names only her
    await login_client(client, "admin")
    headers = {"X-CSRF-Token": csrf_of((await client.get("/marketing/segments")).text)}
    got = await client.get(f"/api/contacts/people/{p['王芳']}", headers=headers)
    assert got.status_code == 200, got.text
    r = await client.patch(f"/api/contacts/people/{p['王芳']}", headers=headers,
                           json={"version": got.json()["version"], "region": "北京"})
    assert r.status_code == 200, r.text
    assert await _run_refreshes() == [[p["王芳"]]]
    assert await _members(seg) == {p["赵敏"], p["李雷"]}

    # a refused write (stale version) publishes nothing
    r = await client.patch(f"/api/contacts/people/{p['赵敏']}", headers=headers, json={"version": 99, "region": "北京"})
    assert r.status_code == 409
    assert await _run_refreshes() == []

    # removing the tag through the API of crm_contacts: 李雷 leaves
    assert await remove_tag(p["李雷"], "vip") and not await remove_tag(p["李雷"], "vip")
    assert await _run_refreshes() == [[p["李雷"]]]
    assert await _members(seg) == {p["赵敏"]}


async def test_event_carries_changed_fields_once_per_transaction(world: Any) -> None:
    from crm_contacts import events

    from core import db, hooks

    seen: list[tuple[int, list[str]]] = []

    class Spy:
        @hooks.hookimpl
        async def crm_contacts_person_updated(self, person_id: int, fields: list[str]) -> None:
            seen.append((person_id, fields))

    spy = Spy()
    world.runtime.plugins.register(spy)
    try:
        li = world.people["李雷"]
        async with db.atomic():
            await events.updated("person", [li], ["stage", "version"])
            await events.updated("person", [li], ["tags"])
            assert seen == []  # not before the transaction's end
        assert seen == [(li, ["stage", "tags"])]
        seen.clear()
        try:
            async with db.atomic():
                await events.updated("person", [li], ["city"])
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
        assert seen == []

        # a bulk stage change and a merge (as the pages and the API run them) report what they changed
        from crm_contacts.api import PERSON_MODEL
        from crm_contacts.merging import merge
        from crm_contacts.services import bulk_update

        admin = await world.acc("admin")
        await bulk_update(admin, PERSON_MODEL, [li], {"stage": "customer"})
        assert seen == [(li, ["stage"])]
        seen.clear()
        wang = world.people["王芳"]
        await merge(admin, PERSON_MODEL, wang, [li], {})
        assert dict(seen)[li] == ["is_archived", "merged_into"] and wang in dict(seen)
    finally:
        world.runtime.plugins.unregister(spy)
