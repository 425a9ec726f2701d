"""Journeys: enrollment once (or again when re-entry is allowed), wait → condition → actions, a step's effect once
per enrollment under retried advances, the custom-event trigger through the JSON API, and rights."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from crm_contacts.models import Person, PersonTag, Tag
from crm_marketing import journeys
from crm_marketing.models import (
    Campaign,
    CampaignEvent,
    CampaignRecipient,
    Journey,
    JourneyEnrollment,
    MarketingEvent,
    Suppression,
)
from marketing_helpers import Sink, campaign_for, run_send_jobs, segment_of

from core.errors import ValidationError
from core.models import Notification


async def _journey(trigger: Any, steps: Any, *, reentry: bool = False, by: int | None = None) -> int:
    row = Journey(
        name="培育",
        trigger=await journeys.check_trigger(trigger),
        steps=await journeys.check_steps(steps),
        allow_reentry=reentry,
        is_active=True,
        started_by=by,
    )
    await row.save()
    return int(row.id)


async def _enrollments(journey_id: int) -> dict[int, dict[str, Any]]:
    rows = await JourneyEnrollment.select().where(JourneyEnrollment.journey == journey_id)
    return {int(r["person"]): r for r in rows}


async def _tags(person_id: int) -> set[str]:
    rows = await PersonTag.select(PersonTag.tag.name.as_alias("name")).where(PersonTag.person == person_id)
    return {r["name"] for r in rows}


async def _past_due(journey_id: int) -> None:
    """Time passes: every running wait is over."""
    await JourneyEnrollment.update({JourneyEnrollment.due_at: dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)}).where(
        (JourneyEnrollment.journey == journey_id) & JourneyEnrollment.due_at.is_not_null()
    )


async def test_segment_journey_waits_checks_acts_once(world: Any, sink: tuple[Sink, int]) -> None:
    handler, port = sink
    campaign_id = await campaign_for(world, port, {"field": "tags", "op": "contains", "value": "nobody"})
    await Suppression.insert(Suppression(email="anna@example.com", reason="unsubscribed"))
    segment = await segment_of({"field": "tags", "op": "contains", "value": "vip"})  # 王芳, Anna, 赵敏
    jid = await _journey(
        {"type": "segment", "segment": segment},
        [
            {"kind": "wait", "days": 2},
            {"kind": "condition", "condition": {"field": "stage", "op": "eq", "value": "customer"}},
            {"kind": "send_mail", "campaign": campaign_id},
            {"kind": "add_tag", "tag": "nurtured"},
            {"kind": "set_stage", "stage": "loyal"},
            {"kind": "notify", "user_id": world.users["mk"], "title_en": "{{ record.name }} nurtured", "title_zh": ""},
        ],
    )
    wang, anna, zhao = world.people["王芳"], world.people["Anna Smith"], world.people["赵敏"]
    assert await journeys.tick() == {"entered": 3, "advanced": 3}
    enr = await _enrollments(jid)
    assert {p: (r["position"], r["state"]) for p, r in enr.items()} == {p: (0, "active") for p in (wang, anna, zhao)}
    assert all(r["due_at"] is not None for r in enr.values())  # the wait has started
    assert await journeys.tick() == {"entered": 0, "advanced": 0}  # nobody enters twice; nothing due yet

    # 赵敏 stops being a customer during the wait: the condition lets her go
    await Person.update({Person.stage: "lead"}).where(Person.id == zhao)
    await _past_due(jid)
    await journeys.advance()
    enr = await _enrollments(jid)
    assert enr[zhao]["state"] == "exited" and enr[zhao]["position"] == 1
    assert enr[wang]["state"] == enr[anna]["state"] == "done"
    assert await _tags(wang) >= {"nurtured", "vip"} and "nurtured" in await _tags(anna)
    assert "nurtured" not in await _tags(zhao)
    stages = {r["id"]: r["stage"] for r in await Person.select(Person.id, Person.stage)}
    assert stages[wang] == stages[anna] == "loyal" and stages[zhao] == "lead"
    # the mail went through the campaign path, to 王芳 only: Anna unsubscribed
    await run_send_jobs()
    assert [m["To"] for m in handler.messages] == ["wang.fang@example.cn"]
    told = await Notification.select(Notification.title).where(Notification.user_id == world.users["mk"])
    assert sorted(r["title"] for r in told) == ["Anna Smith nurtured", "王芳 nurtured"]

    figures = await journeys.funnel(jid, journeys.loaded((await Journey.select().first())["steps"], []))
    assert figures["total"] == 3 and figures["done"] == 2
    assert figures["steps"][1] == {"reached": 3, "here": 0, "left": 1}
    assert figures["steps"][2] == {"reached": 2, "here": 0, "left": 0}

    # once only: a finished journey does not take them back while they stay in the segment
    assert (await journeys.tick())["entered"] == 0

    # the 360° panel lists the person's journeys (a rep sees no marketing panel)
    from crm_contacts.api import PERSON_MODEL

    from core import hooks, records

    panels = await hooks.collect(
        world.runtime.plugins, "crm_record_panels", access=await world.acc("boss"), model=PERSON_MODEL, record_id=zhao
    )
    (panel,) = [x for x in panels if x.key == "crm_marketing"]
    assert [(r["name"], r["state"], r["position"]) for r in panel.context["journeys"]] == [("培育", "exited", 1)]

    # 赵敏 merged into 王芳: one pass per journey (王芳's), her events follow the survivor
    await MarketingEvent.insert(MarketingEvent(person=zhao, name="viewed_product_page", at=dt.datetime.now(dt.UTC)))
    await records.repoint(PERSON_MODEL, wang, [zhao])
    assert [
        r["person"]
        for r in await JourneyEnrollment.select(JourneyEnrollment.person).where(JourneyEnrollment.journey == jid)
    ].count(wang) == 1
    assert await JourneyEnrollment.count().where(JourneyEnrollment.person == zhao) == 0
    assert await MarketingEvent.count().where(MarketingEvent.person == wang) == 1


async def test_retried_step_acts_once_and_a_failed_step_rolls_back(world: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    jid = await _journey(
        {"type": "event", "event": "viewed_product_page", "count": 1},
        [
            {"kind": "add_tag", "tag": "hot"},
            {"kind": "notify", "user_id": world.users["mk"], "title_en": "hot"},
            {"kind": "action", "action": "set_field", "params": {"field": "city", "value": "珠海"}},
        ],
        by=world.users["boss"],
    )
    wang = world.people["王芳"]
    await MarketingEvent.insert(MarketingEvent(person=wang, name="viewed_product_page", at=dt.datetime.now(dt.UTC)))
    assert await journeys.enroll(jid) == 1
    journey = await Journey.select().where(Journey.id == jid).first()
    steps = journeys.loaded(journey["steps"], [])
    enrollment = int((await _enrollments(jid))[wang]["id"])

    # a worker dies in the notify step after the tag: the step's transaction rolls back with its move
    real = journeys._kernel_action

    async def boom(*args: Any) -> str:
        raise RuntimeError("worker killed")

    monkeypatch.setattr(journeys, "_kernel_action", boom)
    await journeys.advance()  # logged, noted, the one who started the journey told; the others go on
    enr = (await _enrollments(jid))[wang]
    assert enr["position"] == 0 and enr["state"] == "active"  # the tag went back with it: both run again later
    assert "hot" not in await _tags(wang)
    assert "worker killed" in enr["note"]
    alarm = await Notification.select().where(Notification.user_id == world.users["boss"])
    assert len(alarm) == 1 and alarm[0]["kind"] == "error" and "worker killed" in alarm[0]["body"]
    monkeypatch.setattr(journeys, "_kernel_action", real)

    # the broker redelivers: two advances of the same due enrollment at once (on PostgreSQL, two connections)
    # and one more afterwards act once: the conditional move lets one of them take each step
    await asyncio.gather(journeys.advance(), journeys.advance())
    await journeys.advance()
    assert (await _enrollments(jid))[wang]["state"] == "done"
    # a late redelivery holding the enrollment as it was at the notify step finds the step taken: no second notice
    from crm_marketing import segments

    stale = {**(await _enrollments(jid))[wang], "id": enrollment, "state": "active", "position": 1, "due_at": None}
    assert await journeys._step_once(stale, journey, steps, {"id": wang}, await segments.schema()) is False
    told = await Notification.count().where((Notification.user_id == world.users["mk"]) & (Notification.title == "hot"))
    assert told == 1
    assert (await Person.select(Person.city).where(Person.id == wang).first())["city"] == "珠海"  # a kernel action
    hot = await Tag.select(Tag.id).where(Tag.name == "hot").first()
    assert await PersonTag.count().where((PersonTag.person == wang) & (PersonTag.tag == hot["id"])) == 1


async def test_event_trigger_through_the_api_counts_and_reentry(crm_client: Any) -> None:
    from marketing_helpers import build_world

    from core.runtime import current
    from core.security.sessions import create_token

    http = await crm_client("crm_marketing")
    world = await build_world(current())
    jid = await _journey(
        {"type": "event", "event": "viewed_product_page", "count": 3},
        [{"kind": "add_tag", "tag": "hot"}, {"kind": "set_stage", "stage": "prospect"}],
        reentry=True,
    )
    li = world.people["李雷"]
    token = await create_token(world.users["mk"], "test", roles=["marketing"])
    if True:  # one block for the client's requests
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(2):
            r = await http.post(
                "/api/marketing/events", json={"person": li, "name": "viewed_product_page"}, headers=headers
            )
            assert r.status_code == 201, r.text
        assert (await journeys.tick())["entered"] == 0  # two views are not three
        r = await http.post(
            "/api/marketing/events", json={"person": li, "name": "viewed_product_page"}, headers=headers
        )
        assert r.status_code == 201
        assert (await journeys.tick())["entered"] == 1
        assert (await journeys.tick())["entered"] == 0  # the same three views do not enroll again
        # re-entry: three new views after the first pass
        for _ in range(3):
            await http.post(
                "/api/marketing/events", json={"person": li, "name": "viewed_product_page"}, headers=headers
            )
        assert (await journeys.tick())["entered"] == 1
        assert await JourneyEnrollment.count().where(JourneyEnrollment.journey == jid) == 2

        bad = await http.post("/api/marketing/events", json={"person": li, "name": "bad name!"}, headers=headers)
        assert bad.status_code == 422 and "name" in bad.json()["error"]["fields"]
        gone = await http.post("/api/marketing/events", json={"person": 999999, "name": "x"}, headers=headers)
        assert gone.status_code == 422 and "person" in gone.json()["error"]["fields"]

        # rights: the sales manager reads journeys but neither posts events nor changes journeys; a rep sees none
        boss_token = await create_token(world.users["boss"], "test", roles=["sales_manager"])
        boss = {"Authorization": f"Bearer {boss_token}"}
        read = await http.get(f"/api/marketing/journeys/{jid}", headers=boss)
        assert read.status_code == 200 and journeys.loaded(read.json()["trigger"], {})["count"] == 3
        r = await http.post("/api/marketing/events", json={"person": li, "name": "viewed_product_page"}, headers=boss)
        assert r.status_code == 403
        change = {"name": "x", "version": read.json()["version"]}
        assert (await http.patch(f"/api/marketing/journeys/{jid}", json=change, headers=boss)).status_code == 403
        rep = {"Authorization": f"Bearer {await create_token(world.users['rep'], 'test', roles=['sales_rep'])}"}
        assert (await http.get("/api/marketing/journeys", headers=rep)).status_code == 403
        # a journey with a bad step is refused naming the step's field
        r = await http.post(
            "/api/marketing/journeys",
            json={"name": "x", "trigger": {"type": "event", "event": "a"}, "steps": [{"kind": "wait"}]},
            headers=headers,
        )
        assert r.status_code == 422 and "steps[0].hours" in r.json()["error"]["fields"]

    # the pages: the list and the steps with their figures, in Chinese and English; a rep has none
    from core.security.models import User
    from core.testing import login_client

    await User.update({User.language: "zh_CN"}).where(User.id == world.users["mk"])
    await login_client(http, "mk")
    page = await http.get("/marketing/journeys")
    assert page.status_code == 200 and "培育旅程" in page.text and "自定义事件" in page.text and "培育" in page.text
    detail = await http.get(f"/marketing/journeys/{jid}")
    assert (
        detail.status_code == 200
        and "<code>viewed_product_page</code> × 3" in detail.text
        and "添加标签" in detail.text
    )
    assert "add_tag" not in detail.text and ": prospect" not in detail.text  # labels, not raw keys
    other = await _journey(
        {"type": "segment", "segment": await segment_of({"field": "province", "op": "eq", "value": "广东"})},
        [
            {"kind": "wait", "days": 3},
            {"kind": "wait", "hours": 5},
            {"kind": "condition", "condition": {"field": "tags", "op": "contains", "value": "vip"}},
            {"kind": "remove_tag", "tag": "hot"},
            {"kind": "notify", "user_id": world.users["mk"], "title_zh": "跟进"},
            {"kind": "action", "action": "set_field", "params": {"field": "city", "value": "珠海"}},
        ],
    )
    shown = await http.get(f"/marketing/journeys/{other}")
    assert shown.status_code == 200 and "3 天" in shown.text and "5 小时" in shown.text and "跟进" in shown.text
    assert "set_field" not in shown.text and "自动化动作" in shown.text
    # the editor: JSON checked as the API checks it (422 naming the step), then saved and shown
    from core.testing import csrf_of

    new = await http.get("/marketing/journeys/new")
    assert new.status_code == 200 and "新建旅程" in new.text
    form = {"csrf_token": csrf_of(new.text), "name": "表单旅程", "trigger": '{"type": "event", "event": "signup"}'}
    bad = await http.post("/marketing/journeys", data={**form, "steps": '[{"kind": "fly"}]'})
    assert bad.status_code == 422 and "steps[0].kind" in bad.text
    made = await http.post("/marketing/journeys", data={**form, "steps": '[{"kind": "add_tag", "tag": "新"}]'})
    assert made.status_code == 303
    made_id = int(made.headers["location"].rsplit("/", 1)[1])
    edit = await http.get(f"/marketing/journeys/{made_id}/edit")
    assert edit.status_code == 200 and "signup" in edit.text
    saved = await Journey.select().where(Journey.id == made_id).first()
    assert saved["name"] == "表单旅程" and not saved["is_active"]
    assert journeys.loaded(saved["steps"], []) == [{"kind": "add_tag", "tag": "新"}]
    person_page = await http.get(f"/contacts/people/{li}")
    assert person_page.status_code == 200 and f'href="/marketing/journeys/{jid}"' in person_page.text
    await login_client(http, "boss")
    assert (await http.get("/marketing/journeys")).status_code == 200
    assert (await http.get("/marketing/journeys/new")).status_code == 403
    await login_client(http, "rep")
    assert (await http.get("/marketing/journeys")).status_code == 403


async def test_checks_name_the_field(world: Any) -> None:
    # the dormant trigger: a contact unchanged for 90 days enters, the others do not
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=100)
    await Person.update({Person.updated_at: long_ago}).where(Person.id == world.people["张伟"])
    dormant = await _journey({"type": "idle", "days": 90}, [{"kind": "add_tag", "tag": "唤醒"}])
    assert await journeys.enroll(dormant) == 1
    assert list(await _enrollments(dormant)) == [world.people["张伟"]]
    with pytest.raises(ValidationError) as bad:
        await journeys.check_trigger({"type": "idle", "days": 0})
    assert "trigger.days" in bad.value.fields

    # campaign triggers: opened / clicked / not opened in 3 days; a mail scanner's hits never count
    now = dt.datetime.now(dt.UTC)
    campaign = (await Campaign.insert(Campaign(name="c", state="sent", sent_at=now)))[0]["id"]
    recipients = {}
    for name, days in (("王芳", 5), ("李雷", 5), ("Anna Smith", 1)):
        row = CampaignRecipient(
            campaign=campaign,
            person=world.people[name],
            email="x@example.com",
            state="sent",
            sent_at=now - dt.timedelta(days=days),
        )
        await row.save()
        recipients[name] = row.id
    for name, kind, scanner in (("王芳", "open", False), ("王芳", "click", False), ("李雷", "open", True)):
        await CampaignEvent.insert(
            CampaignEvent(campaign=campaign, recipient=recipients[name], kind=kind, is_scanner=scanner, at=now)
        )
    for on, who in (("opened", {"王芳"}), ("clicked", {"王芳"}), ("not_opened", {"李雷"})):
        jid = await _journey(
            {"type": "campaign", "campaign": campaign, "on": on, "days": 3}
            if on == "not_opened"
            else {"type": "campaign", "campaign": campaign, "on": on},
            [{"kind": "add_tag", "tag": on}],
        )
        await journeys.enroll(jid)
        assert set(await _enrollments(jid)) == {world.people[n] for n in who}, on
    with pytest.raises(ValidationError) as bad:
        await journeys.check_steps([{"kind": "condition", "condition": {"field": "provnce", "op": "eq", "value": "x"}}])
    assert "steps[0].condition.field" in bad.value.fields
    with pytest.raises(ValidationError) as bad:
        await journeys.check_steps([{"kind": "set_stage", "stage": 5}])
    assert any(k.startswith("steps[0].") for k in bad.value.fields)
    with pytest.raises(ValidationError) as bad:
        await journeys.check_steps([{"kind": "action", "action": "launch_rocket", "params": {}}])
    assert "steps[0].action" in bad.value.fields
    with pytest.raises(ValidationError) as bad:
        await journeys.check_steps([{"kind": "action", "action": "set_field", "params": {"field": "email"}}])
    assert "steps[0].params.field" in bad.value.fields
    with pytest.raises(ValidationError) as bad:
        await journeys.check_trigger({"type": "campaign", "campaign": 999, "on": "opened"})
    assert "trigger.campaign" in bad.value.fields
