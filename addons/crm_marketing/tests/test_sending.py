"""Sending a campaign to a real SMTP server (an aiosmtpd sink): who gets it, what it carries, and that retries
never mail anyone twice nor hold others back."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from crm_marketing import campaigns, roi, sending
from crm_marketing.models import Campaign, CampaignRecipient, Suppression
from marketing_helpers import Sink, campaign_for, run_send_jobs

from core.errors import ValidationError
from core.models import Notification


async def test_send_reaches_the_segment_once_then_refusals_retry_alone(
    world: Any, sink: tuple[Sink, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    handler, port = sink
    campaign_id = await campaign_for(world, port, {"field": "tags", "op": "contains", "value": "vip"})
    await Suppression.insert(Suppression(email="anna@example.com", reason="do_not_contact"))
    mk = await world.acc("mk")
    # vip: 王芳, Anna (on the do-not-contact list), 赵敏 (no e-mail)
    assert await campaigns.send(mk, campaign_id) == 1
    with pytest.raises(ValidationError):  # a campaign goes out once
        await campaigns.send(mk, campaign_id)
    await run_send_jobs()
    # the same batch once more, as a broker redelivery would run it: nobody mailed twice
    row = await CampaignRecipient.select().where(CampaignRecipient.campaign == campaign_id).first()
    again = await sending.send_batch(campaign_id, row["id"], row["id"])
    assert again == {"sent": 0, "retry": 0, "failed": 0}
    assert [m["To"] for m in handler.messages] == ["wang.fang@example.cn"]
    msg = handler.messages[0]
    assert msg["Subject"] == "王芳 的优惠"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["List-Unsubscribe"].startswith("<http") and "/marketing/public/unsubscribe/" in msg["List-Unsubscribe"]
    parts = {p.get_content_type(): p.get_payload(decode=True).decode() for p in msg.walk() if not p.is_multipart()}
    assert "王芳，您好！" in parts["text/plain"] and "退订" in parts["text/plain"]
    html = parts["text/html"]
    assert "/marketing/public/click/" in html and "https://shop.example.cn/sale" not in html  # tracked link
    assert "/marketing/public/open/" in html and 'style="' in html  # pixel; CSS inlined
    assert (await Campaign.select(Campaign.state).where(Campaign.id == campaign_id).first())["state"] == "sent"

    # a second campaign: the SMTP server refuses one address, which is retried then failed, alone
    handler.messages.clear()
    handler.refuse.add("li.lei@example.cn")
    monkeypatch.setattr(sending, "RETRY_DELAYS", (0.0, 0.0))
    campaign_id = await campaign_for(world, port, {"field": "province", "op": "eq", "value": "广东"})
    assert await campaigns.send(await world.acc("mk"), campaign_id) == 2  # 王芳, 李雷 (赵敏 has no e-mail)
    await run_send_jobs()
    # the others were not held back by the refused address
    assert len(handler.to("wang.fang@example.cn")) == 1
    states = {r["email"]: r for r in await CampaignRecipient.select().where(CampaignRecipient.campaign == campaign_id)}
    assert states["li.lei@example.cn"]["state"] == "queued" and states["li.lei@example.cn"]["attempts"] == 1
    await run_send_jobs()
    await run_send_jobs()
    states = {r["email"]: r for r in await CampaignRecipient.select().where(CampaignRecipient.campaign == campaign_id)}
    assert states["li.lei@example.cn"]["state"] == "failed" and states["li.lei@example.cn"]["attempts"] == 3
    assert "550" in states["li.lei@example.cn"]["error"]
    assert states["wang.fang@example.cn"]["state"] == "sent" and len(handler.messages) == 1
    # who pressed send is told, once
    told = await Notification.select(Notification.title, Notification.url).where(
        Notification.user_id == world.users["mk"]
    )
    assert [(t["title"], t["url"]) for t in told] == [
        ("Campaign 双十二: 1 recipients could not be mailed", f"/marketing/campaigns/{campaign_id}")
    ]
    assert (await Campaign.select(Campaign.state).where(Campaign.id == campaign_id).first())["state"] == "sent"

    # scheduled, then throttled batches
    handler.messages.clear()
    handler.refuse.clear()
    campaign_id = await campaign_for(world, port, {"field": "province", "op": "eq", "value": "广东"})
    world.runtime.settings = world.runtime.settings.with_(extra={"CRM_X_MARKETING_PER_MINUTE": "1"})
    monkeypatch.setattr(campaigns, "BATCH", 1)  # 王芳 and 李雷 in two batches, one a minute
    mk = await world.acc("mk")
    now = dt.datetime.now(dt.UTC)
    with pytest.raises(ValidationError):
        await campaigns.schedule(mk, campaign_id, now - dt.timedelta(minutes=1))
    await campaigns.schedule(mk, campaign_id, now + dt.timedelta(hours=1))
    assert await campaigns.send_scheduled() == 0 and not handler.messages  # not yet
    await Campaign.update({Campaign.scheduled_at: now - dt.timedelta(seconds=1)}).where(Campaign.id == campaign_id)
    assert await campaigns.send_scheduled() == 1
    assert await campaigns.send_scheduled() == 0  # started once
    await run_send_jobs()
    assert len(handler.messages) == 1  # the second batch waits its minute
    # a worker killed after claiming 李雷 (lease past): maybe delivered, so never sent again, and shown
    await CampaignRecipient.update(
        {CampaignRecipient.state: "sending", CampaignRecipient.next_try_at: now - dt.timedelta(seconds=1)}
    ).where((CampaignRecipient.email == "li.lei@example.cn") & (CampaignRecipient.campaign == campaign_id))
    assert await sending.expire_leases() == 1
    await Campaign.update({Campaign.sent_at: now - dt.timedelta(minutes=2)}).where(Campaign.id == campaign_id)
    await run_send_jobs()
    assert [m["To"] for m in handler.messages] == ["wang.fang@example.cn"]
    figures = await roi.figures(campaign_id)
    assert figures["unknown"] == 1 and figures["delivered"] == 1
    assert (await Campaign.select(Campaign.state).where(Campaign.id == campaign_id).first())["state"] == "sent"
