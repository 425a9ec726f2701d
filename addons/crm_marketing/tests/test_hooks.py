"""What crm_marketing adds to other pages and to the kernel: the person's 360° panel (read through the viewer's
rights), merge re-pointing, datasets for reports, and the JSON API of segments and campaigns."""

from __future__ import annotations

from typing import Any

import httpx
from crm_contacts.api import PERSON_MODEL
from crm_marketing import campaigns
from crm_marketing.models import CampaignEvent, CampaignRecipient, SegmentMember
from marketing_helpers import Sink, build_world, campaign_for, run_send_jobs, segment_of

from core import datasets, hooks, records
from core.testing import csrf_of, login_client


def _now() -> Any:
    import datetime as dt

    return dt.datetime.now(dt.UTC)


async def test_panel_merge_datasets_and_json_api(crm_client: Any, sink: tuple[Sink, int]) -> None:
    from core.runtime import current

    client = await crm_client("crm_marketing")
    world = await build_world(current())
    # the person's 360° panel, merges, datasets
    p = world.people
    segment = await segment_of({"field": "province", "op": "eq", "value": "广东"}, name="华南")
    campaign_id = await campaign_for(world, sink[1], {"field": "tags", "op": "contains", "value": "vip"})
    assert await campaigns.send(await world.acc("mk"), campaign_id) == 2  # 王芳, Anna
    await run_send_jobs()
    recipient = (await CampaignRecipient.select().where(CampaignRecipient.person == p["王芳"]).first())["id"]
    await CampaignEvent.insert(
        CampaignEvent(campaign=campaign_id, recipient=recipient, kind="click", at=_now()),
        CampaignEvent(campaign=campaign_id, recipient=recipient, kind="open", at=_now(), is_scanner=True),
    )
    panels = await hooks.collect(
        world.runtime.plugins,
        "crm_record_panels",
        access=await world.acc("mk"),
        model=PERSON_MODEL,
        record_id=p["王芳"],
    )
    (panel,) = [x for x in panels if x.key == "crm_marketing"]
    assert [(c["name"], c["state"], c["opens"], c["clicks"]) for c in panel.context["campaigns"]] == [
        ("双十二", "sent", 0, 1)
    ]
    assert {s["name"] for s in panel.context["segments"]} == {"segment", "华南"}
    rep_panels = await hooks.collect(
        world.runtime.plugins,
        "crm_record_panels",
        access=await world.acc("rep"),
        model=PERSON_MODEL,
        record_id=p["王芳"],
    )
    assert not [x for x in rep_panels if x.key == "crm_marketing"]

    # 李雷 (in 华南 too) merged into 王芳: one membership each, recipients follow the survivor
    await records.repoint(PERSON_MODEL, p["王芳"], [p["李雷"], p["Anna Smith"]])
    members = [
        r["person"] for r in await SegmentMember.select(SegmentMember.person).where(SegmentMember.segment == segment)
    ]
    assert sorted(members) == sorted([p["王芳"], p["赵敏"]])
    assert [
        r["person"]
        for r in await CampaignRecipient.select(CampaignRecipient.person).where(
            CampaignRecipient.campaign == campaign_id
        )
    ] == [p["王芳"]]

    rows = await datasets.aggregate(await world.acc("boss"), "crm_marketing.events", ["kind", "is_scanner"], ["count"])
    assert {(r["kind"], bool(r["is_scanner"])): r["count"] for r in rows} == {("click", False): 1, ("open", True): 1}

    # the JSON API
    await login_client(client, "mk")
    token = csrf_of((await client.get("/marketing/segments")).text)
    headers = {"X-CSRF-Token": token}
    made = await client.post(
        "/api/marketing/segments",
        headers=headers,
        json={"name": "VIP", "condition": {"field": "province", "op": "eq", "value": "北京"}},
    )
    assert made.status_code == 201, made.text
    segment = made.json()["id"]
    built = await client.post(f"/api/marketing/segments/{segment}/build", headers=headers)
    assert built.status_code == 200 and built.json()["count"] == 1
    bad = await client.post(
        "/api/marketing/segments",
        headers=headers,
        json={"name": "x", "condition": {"field": "provnce", "op": "eq", "value": "x"}},
    )
    assert bad.status_code == 422 and "condition.field" in bad.json()["error"]["fields"]
    campaign = await client.post(
        "/api/marketing/campaigns",
        headers=headers,
        json={"name": "API", "segment": segment, "subject_en": "Hi {{ contact.name }}", "cost": "12.50"},
    )
    assert campaign.status_code == 201, campaign.text
    bad = await client.post(
        "/api/marketing/campaigns", headers=headers, json={"name": "API", "subject_en": "Hi", "body_en": "ok\n{% if %}"}
    )
    assert bad.status_code == 422 and bad.json()["error"]["fields"]["body_en"].startswith("line 2")
    listed = await client.get("/api/marketing/campaigns")
    assert "API" in [c["name"] for c in listed.json()["items"]]
    async with httpx.AsyncClient(transport=client._transport, base_url="http://testserver") as rep:
        await login_client(rep, "rep")
        assert (await rep.get("/api/marketing/campaigns")).status_code == 403
    assert world.people
