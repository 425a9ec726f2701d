"""Through the real app (middleware, CSRF, templates): pages per role, the builder's live count, the public
unsubscribe page (GET asks, POST unsubscribes, a forged token changes nothing), tracking with scanner hits
recorded but not counted, and ROI figures checked against the rows."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
from crm_marketing import campaigns, roi
from crm_marketing.models import CampaignEvent, CampaignRecipient, Segment, Suppression
from marketing_helpers import Sink, World, build_world, campaign_for, run_send_jobs, segment_of

from core.security.models import AuditLog
from core.testing import csrf_of, login_client

BROWSER = {"user-agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"}


async def _app(crm_client: Any) -> tuple[httpx.AsyncClient, World]:
    from core.runtime import current

    client = await crm_client("crm_marketing")
    return client, await build_world(current())


async def _anonymous(client: httpx.AsyncClient) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=client._transport, base_url="http://testserver")


async def test_pages_rights_unsubscribe_tracking_and_roi(crm_client: Any, sink: tuple[Sink, int]) -> None:
    client, world = await _app(crm_client)
    segment = await segment_of({"field": "province", "op": "eq", "value": "广东"}, name="广东客户")
    campaign_id = await campaign_for(world, sink[1], {"field": "city", "op": "eq", "value": "深圳"})
    await Suppression.insert(Suppression(email="blocked@example.cn"))
    await login_client(client, "mk")
    pages = [
        "/marketing/",
        "/marketing/segments",
        "/marketing/segments/new",
        f"/marketing/segments/{segment}",
        "/marketing/campaigns/new",
        f"/marketing/campaigns/{campaign_id}",
        f"/marketing/campaigns/{campaign_id}/roi",
        f"/marketing/campaigns/{campaign_id}/preview?person={world.people['王芳']}",
        "/marketing/suppressions",
    ]
    for path in pages:
        response = await client.get(path)
        assert response.status_code == 200, (path, response.text[:300])
    page = (await client.get(f"/marketing/segments/{segment}")).text
    assert "王芳" in page and "李雷" in page and "wang.fang@example.cn" not in page
    preview = (await client.get(pages[7])).text
    assert "王芳 的优惠" in preview
    # the do-not-contact list shows addresses as the contact pages show them to marketing: masked
    assert "blocked@example.cn" not in (await client.get("/marketing/suppressions")).text
    exported = await client.get(f"/marketing/segments/{segment}/export")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert "王芳" in exported.text and "李雷" in exported.text and "张伟" not in exported.text
    assert "wang.fang@example.cn" not in exported.text and "@example.cn" in exported.text  # masked, not blank
    assert await AuditLog.count().where((AuditLog.action == "export") & (AuditLog.record_id == str(segment))) == 1
    token = csrf_of(page)
    count = await client.post(
        "/marketing/segments/count",
        headers={"X-CSRF-Token": token},
        json={"condition": '{"field": "tags", "op": "contains", "value": "vip"}'},
    )
    assert count.status_code == 200 and count.json() == {"count": 3}
    bad = await client.post(
        "/marketing/segments/count",
        headers={"X-CSRF-Token": token},
        json={"condition": '{"field": "provnce", "op": "eq", "value": "x"}'},
    )
    assert bad.status_code == 422 and "provnce" in bad.json()["error"]["fields"]["condition.field"]
    masked = await client.post(
        "/marketing/segments/count",
        headers={"X-CSRF-Token": token},
        json={"condition": '{"field": "email", "op": "contains", "value": "@"}'},
    )
    assert masked.status_code == 403
    saved = await client.post(
        "/marketing/segments",
        data={"csrf_token": token, "name": "x", "condition": '{"field": "nope", "op": "eq", "value": 1}'},
    )
    assert saved.status_code == 422 and "nope" in saved.text
    assert await Segment.count().where(Segment.name == "x") == 0
    bad_template = await client.post(
        "/marketing/campaigns",
        data={"csrf_token": token, "name": "t", "subject_en": "Hi", "body_en": "a\n{{ contact.x }}"},
    )
    assert bad_template.status_code == 422 and "line 2" in bad_template.text

    # a sales manager reads but changes nothing; a sales rep sees nothing of marketing
    boss = await _anonymous(client)
    await login_client(boss, "boss")
    assert (await boss.get(f"/marketing/campaigns/{campaign_id}")).status_code == 200
    token = csrf_of((await boss.get("/marketing/segments")).text)
    refused = await boss.post(f"/marketing/campaigns/{campaign_id}/send", data={"csrf_token": token})
    assert refused.status_code == 403
    assert (await boss.get(f"/marketing/segments/{segment}/export")).status_code == 403
    rep = await _anonymous(client)
    await login_client(rep, "rep")
    for path in ("/marketing/", "/marketing/segments", f"/marketing/campaigns/{campaign_id}"):
        assert (await rep.get(path)).status_code in (403, 404), path
    assert "/marketing/" not in (await rep.get("/")).text
    await boss.aclose()
    await rep.aclose()
    await Suppression.delete().where(Suppression.email == "blocked@example.cn")

    # unsubscribe, preferences, tracking and ROI
    handler, port = sink
    campaign_id = await campaign_for(world, port, {"field": "tags", "op": "contains", "value": "newsletter"})
    assert await campaigns.send(await world.acc("mk"), campaign_id) == 2  # Anna, 张伟
    await run_send_jobs()
    anna, zhang = handler.to("anna@example.com")[0], handler.to("zhang.wei@example.cn")[0]
    url = anna["List-Unsubscribe"].strip("<>").removeprefix("http://127.0.0.1:8000")
    public = await _anonymous(client)

    # GET asks and changes nothing; a forged token is a 400 and changes nothing either
    page = await public.get(url)
    assert page.status_code == 200 and "anna@example.com" in page.text
    assert await Suppression.count() == 0
    forged = url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB")
    for response in (await public.get(forged), await public.post(forged, data={"List-Unsubscribe": "One-Click"})):
        assert response.status_code == 400
    assert await Suppression.count() == 0
    # RFC 8058: the mail client POSTs without cookies or CSRF token
    done = await public.post(url, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200
    assert (await Suppression.select().first())["email"] == "anna@example.com"
    assert (await public.post(url, data={"List-Unsubscribe": "One-Click"})).status_code == 200  # idempotent
    assert await Suppression.count() == 1
    # the preference page (linked from every mail) shows it and undoes the person's own unsubscribe only
    prefs = url.replace("/public/unsubscribe/", "/public/preferences/")
    text = anna.get_body(preferencelist=("plain",)).get_content()
    assert "http://127.0.0.1:8000" + prefs in text
    assert "no marketing e-mails" in (await public.get(prefs)).text
    assert (await public.get(forged.replace("/unsubscribe/", "/preferences/"))).status_code == 400
    back = await public.post(prefs, data={"action": "subscribe", "csrf_token": csrf_of((await public.get(prefs)).text)})
    assert back.status_code == 303 and await Suppression.count() == 0
    await public.post(prefs, data={"action": "unsubscribe", "csrf_token": csrf_of((await public.get(prefs)).text)})
    assert await Suppression.count() == 1
    token = csrf_of((await public.get(prefs)).text)
    await Suppression.update({Suppression.reason: "do_not_contact"}).where(Suppression.email == "anna@example.com")
    assert "receives no marketing" in (await public.get(prefs)).text
    await public.post(prefs, data={"action": "subscribe", "csrf_token": token})
    assert await Suppression.count() == 1  # a do-not-contact entry made by staff stays

    # tracking: a scanner's fetch and a click seconds after delivery are recorded, not counted
    html = next(p for p in zhang.walk() if p.get_content_type() == "text/html").get_content()
    pixel = html.split('src="http://127.0.0.1:8000')[1].split('"')[0]
    click = html.split('href="http://127.0.0.1:8000/marketing/public/click/')[1].split('"')[0]
    click = "/marketing/public/click/" + click
    assert (await public.get(pixel, headers={"user-agent": "Mimecast URL protect"})).status_code == 200
    early = await public.get(click, headers=BROWSER)
    assert early.status_code == 302 and early.headers["location"] == "https://shop.example.cn/sale"
    zhang_id = (
        await CampaignRecipient.select(CampaignRecipient.id)
        .where(CampaignRecipient.email == "zhang.wei@example.cn")
        .first()
    )["id"]
    await CampaignRecipient.update(
        {CampaignRecipient.sent_at: dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)}
    ).where(CampaignRecipient.campaign == campaign_id)
    assert (await public.get(pixel, headers=BROWSER)).status_code == 200
    assert (await public.get(click, headers=BROWSER)).status_code == 302
    assert (await public.get(click, headers=BROWSER)).status_code == 302  # a second click: one person
    assert (await public.get(click[:-4] + "xxxx", headers=BROWSER)).status_code == 400

    figures = await roi.figures(campaign_id)
    events = await CampaignEvent.select().where(CampaignEvent.campaign == campaign_id)
    counted = [e for e in events if not e["is_scanner"]]
    assert figures["opens"] == len({e["recipient"] for e in counted if e["kind"] == "open"}) == 1
    assert figures["clicks"] == len({e["recipient"] for e in counted if e["kind"] == "click"}) == 1
    assert {e["recipient"] for e in counted if e["kind"] == "click"} == {zhang_id}
    assert figures["scanner_hits"] == sum(1 for e in events if e["is_scanner"]) == 2
    assert figures["unsubscribes"] == 1 and figures["recipients"] == 2 == figures["delivered"]
    await login_client(client, "mk")
    page = (await client.get(f"/marketing/campaigns/{campaign_id}/roi")).text
    assert 'id="opens">1 (50.0%)' in page.replace("\u00a0", " ") or 'id="opens">1' in page
    assert 'id="unsubscribes">1<' in page and 'id="delivered">2<' in page
    await public.aclose()
