"""Capture forms through the real app: the marketing role defines a form and copies its snippet; the public page
(no login, no CSRF token) creates or matches a person through crm_contacts' duplicate check, with the UTM codes,
tags and static list; a bad value is a 422 naming the field with nothing written; the honeypot drops bots
silently; the per-address rate limit answers 429; and a journey with the "form submitted" trigger enrolls the
submitter. Without crm_sales no lead is made."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
from crm_contacts.models import Person, PersonTag, Tag
from crm_marketing import forms, journeys
from crm_marketing.models import CaptureForm, FormSubmission, Journey, JourneyEnrollment, Segment, SegmentMember
from marketing_helpers import World, build_world

from core.security.models import AuditLog
from core.testing import csrf_of, login_client


async def _app(crm_client: Any) -> tuple[httpx.AsyncClient, World]:
    from core.runtime import current

    client = await crm_client("crm_marketing")
    return client, await build_world(current())


async def test_form_defined_submitted_matched_refused_dropped_and_throttled(crm_client: Any) -> None:
    client, world = await _app(crm_client)
    static = int((await Segment.insert(Segment(name="展会名单", is_static=True)))[0]["id"])
    await login_client(client, "mk")
    token = csrf_of((await client.get("/marketing/forms/new")).text)
    post = {"csrf_token": token, "name": "展会报名", "title_zh": "报名参加展会", "title_en": "Join us",
            "ask_name": "on", "required_name": "on", "ask_email": "on", "ask_phone": "on", "ask_company": "on",
            "tags": "展会, expo", "segment": str(static), "thanks_zh": "谢谢，我们会联系您", "is_active": "on"}
    refused = await client.post("/marketing/forms", data={**post, "ask_email": "", "ask_phone": ""})
    assert refused.status_code == 422 and await CaptureForm.count() == 0
    saved = await client.post("/marketing/forms", data=post)
    assert saved.status_code == 303
    form_id = int(saved.headers["location"].rsplit("/", 1)[1])
    detail = await client.get(f"/marketing/forms/{form_id}")
    assert detail.status_code == 200
    assert f"/marketing/public/forms/{form_id}" in detail.text and "&lt;form method=&#34;post&#34;" in detail.text
    assert (await client.get("/marketing/forms")).status_code == 200
    trigger = await journeys.check_trigger({"type": "form", "form": form_id})
    rows = await Journey.insert(Journey(name="报名后跟进", is_active=True, trigger=trigger, steps=[]))
    journey_id = int(rows[0]["id"])

    public = httpx.AsyncClient(transport=client._transport, base_url="http://testserver")
    page = await public.get(f"/marketing/public/forms/{form_id}?utm_source=wechat&utm_medium=social&utm_campaign=expo")
    assert page.status_code == 200 and 'value="expo"' in page.text and 'name="website"' in page.text

    # a new person, with standardized phone, tags, the static list and the UTM codes of the page
    people = await Person.count()
    done = await public.post(
        f"/marketing/public/forms/{form_id}?utm_campaign=expo&utm_source=wechat",
        data={"name": "陈静", "email": " Chen.Jing@Example.CN ", "phone": "138 0013 8000", "company": "静好贸易"})
    assert done.status_code == 200 and ("谢谢，我们会联系您" in done.text or "Thank you" in done.text)
    assert await Person.count() == people + 1
    sub = await FormSubmission.select().where(FormSubmission.form == form_id).first()
    person = await Person.select().where(Person.id == sub["person"]).first()
    assert person["phone"] == "+8613800138000" and person["email"].endswith("@example.cn")
    assert (sub["utm_campaign"], sub["utm_source"], sub["is_spam"], sub["lead_id"]) == ("expo", "wechat", False, None)
    tags = {r["tag.name"] for r in await PersonTag.select(PersonTag.tag.name).where(PersonTag.person == person["id"])}
    assert tags == {"展会", "expo"}
    assert await SegmentMember.exists().where(
        (SegmentMember.segment == static) & (SegmentMember.person == person["id"]))
    assert await AuditLog.exists().where(AuditLog.model == "crm_marketing.form")

    # an existing person is matched by the duplicate check, not created again
    again = await public.post(f"/marketing/public/forms/{form_id}",
                              data={"name": "王芳", "email": "wang.fang@example.cn"})
    assert again.status_code == 200 and await Person.count() == people + 1
    latest = await FormSubmission.select().order_by(FormSubmission.id, ascending=False).first()
    assert latest["person"] == world.people["王芳"]

    # a bad value: 422 naming the field, nothing written
    subs = await FormSubmission.count()
    tags_before = await Tag.count()
    bad = await public.post(f"/marketing/public/forms/{form_id}", data={"name": "坏人", "email": "not-an-address"})
    assert bad.status_code == 422 and 'role="alert"' in bad.text and 'value="not-an-address"' in bad.text
    missing = await public.post(f"/marketing/public/forms/{form_id}", data={"email": "x@example.cn"})
    assert missing.status_code == 422
    assert (await FormSubmission.count(), await Person.count(), await Tag.count()) == (subs, people + 1, tags_before)

    # a bot fills the honeypot: thanked, recorded as spam, nothing else written
    bot = await public.post(f"/marketing/public/forms/{form_id}",
                            data={"name": "bot", "email": "bot@spam.example", "website": "http://spam"})
    assert bot.status_code == 200
    spam = await FormSubmission.select().order_by(FormSubmission.id, ascending=False).first()
    assert spam["is_spam"] and spam["person"] is None and await Person.count() == people + 1

    # the submitter enters the journey triggered by the form; the bot does not
    assert await journeys.enroll(journey_id) == 2
    enrolled = {r["person"] for r in await JourneyEnrollment.select(JourneyEnrollment.person)}
    assert enrolled == {person["id"], world.people["王芳"]}

    # past the limit per address: 429, nothing written
    world.runtime.settings = world.runtime.settings.with_(
        extra={**world.runtime.settings.extra, "CRM_X_MARKETING_FORM_LIMIT": "5"})
    from core.security.models import LoginAttempt

    stale = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    ips = {r["key"] for r in await LoginAttempt.select(LoginAttempt.key).where(LoginAttempt.key.like("crm_marketing%"))}
    assert len(ips) == 1
    await LoginAttempt.insert(LoginAttempt(key=ips.pop(), at=stale))  # an old post: pruned, not counted
    throttled = await public.post(f"/marketing/public/forms/{form_id}", data={"name": "多", "email": "many@example.cn"})
    assert throttled.status_code == 429
    assert not await LoginAttempt.exists().where(LoginAttempt.at <= stale)
    assert await Person.count().where(Person.email == "many@example.cn") == 0

    # an inactive form is not there for the public
    await CaptureForm.update({CaptureForm.is_active: False}).where(CaptureForm.id == form_id)
    assert (await public.get(f"/marketing/public/forms/{form_id}")).status_code == 404
    await public.aclose()

    # a sales rep sees no forms
    rep = httpx.AsyncClient(transport=client._transport, base_url="http://testserver")
    await login_client(rep, "rep")
    assert (await rep.get(f"/marketing/forms/{form_id}")).status_code in (403, 404)
    await rep.aclose()


async def test_submissions_follow_merges_and_lose_their_data_on_erase(world: World) -> None:
    from crm_contacts.api import PERSON_MODEL

    from core import hooks, records

    form_id = int((await CaptureForm.insert(CaptureForm(name="f", fields=[{"field": "email", "required": True}])))[0][
        "id"])
    p = world.people
    for who in ("李雷", "Anna Smith"):
        await FormSubmission.insert(FormSubmission(form=form_id, person=p[who], data={"email": "x@example.cn"},
                                                   utm_campaign="spring", at=dt.datetime.now(dt.UTC)))
    await records.repoint(PERSON_MODEL, p["王芳"], [p["李雷"]])
    rows = {r["person"] for r in await FormSubmission.select(FormSubmission.person)}
    assert rows == {p["王芳"], p["Anna Smith"]}
    await hooks.publish("crm_contacts_person_erased", person_id=p["Anna Smith"])
    kept = await FormSubmission.select().where(FormSubmission.person == p["Anna Smith"]).first()
    assert forms.loaded(kept["data"], {}) == {} and kept["utm_campaign"] == "spring"


async def test_forms_through_the_json_api(crm_client: Any) -> None:
    from core.runtime import current
    from core.security.sessions import create_token

    http = await crm_client("crm_marketing")
    world = await build_world(current())
    headers = {"Authorization": f"Bearer {await create_token(world.users['mk'], 'test', roles=['marketing'])}"}
    bad = await http.post("/api/marketing/forms", headers=headers,
                          json={"name": "x", "fields": [{"field": "birthday"}]})
    assert bad.status_code == 422 and "fields[0]" in bad.text and await CaptureForm.count() == 0
    made = await http.post("/api/marketing/forms", headers=headers,
                           json={"name": "报名", "fields": [{"field": "email", "required": True}], "tags": ["展会"]})
    assert made.status_code == 201, made.text
    form_id = made.json()["id"]
    row = await CaptureForm.select().where(CaptureForm.id == form_id).first()
    assert row is not None and row["is_active"] and forms.loaded(row["tags"], []) == ["展会"]
    patched = await http.patch(f"/api/marketing/forms/{form_id}", headers=headers, json={"fields": []})
    assert patched.status_code == 422 and "fields" in patched.text
    assert (await http.get(f"/marketing/public/forms/{form_id}")).status_code == 200
    boss = {"Authorization": f"Bearer {await create_token(world.users['boss'], 'b', roles=['sales_manager'])}"}
    assert (await http.get("/api/marketing/forms", headers=boss)).status_code == 200
    assert (await http.post("/api/marketing/forms", headers=boss, json={"name": "n"})).status_code == 403
