"""Bounces: DSN reports parsed with flufl.bounce mark the address bounced (the recipient, a do-not-contact entry
with the person), a delay warning changes nothing, a report read twice changes nothing more, a later campaign
skips the address; one round trip through a real IMAP server (Dovecot)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crm_marketing import bounces, campaigns, roi
from crm_marketing.models import CampaignRecipient, Suppression
from marketing_helpers import Sink, campaign_for, run_send_jobs

from core.testing import imap_append

DATA = Path(__file__).parent / "data"


def _dsn(name: str, address: str, message_id: str = "<unknown@example.net>") -> bytes:
    text = (DATA / name).read_text()
    return text.replace("{ADDRESS}", address).replace("{MESSAGE_ID}", message_id).encode()


async def test_dsn_marks_bounced_and_later_campaigns_skip(world: Any, sink: tuple[Sink, int]) -> None:
    p = world.people
    vip = {"field": "tags", "op": "contains", "value": "vip"}
    campaign = await campaign_for(world, sink[1], vip)
    assert await campaigns.send(await world.acc("mk"), campaign) == 2  # 王芳, Anna Smith (赵敏 has no e-mail)
    await run_send_jobs()
    wang = await CampaignRecipient.select().where(CampaignRecipient.person == p["王芳"]).first()
    assert wang["state"] == "sent"

    # a delay warning (4.4.1) and a mail that is no bounce change nothing
    assert await bounces.handle(_dsn("dsn_delayed_4xx.eml", "wang.fang@example.cn")) == 0
    assert await bounces.handle(b"From: a@example.cn\r\nSubject: hello\r\n\r\njust a reply\r\n") == 0
    assert not await Suppression.exists()

    # the 5.1.1 report quoting our Message-ID: that recipient bounced, the address (and person) suppressed
    report = _dsn("dsn_postfix_5xx.eml", "Wang.Fang@example.cn", f"<crm-marketing-{campaign}-{wang['id']}@example.com>")
    assert bounces.parse(report).recipient_ids == {int(wang["id"])}
    assert await bounces.handle(report) == 1
    assert await bounces.handle(report) == 0  # read twice: nothing more
    row = await CampaignRecipient.select().where(CampaignRecipient.id == wang["id"]).first()
    assert row["state"] == "bounced" and "5.1.1" in row["error"]
    sup = await Suppression.select().where(Suppression.email == "wang.fang@example.cn").first()
    assert (sup["reason"], sup["person"]) == ("bounced", p["王芳"])
    figures = await roi.figures(campaign)
    assert (figures["bounced"], figures["delivered"]) == (1, 1)

    # the next campaign to the same people leaves the bounced address out
    again = await campaign_for(world, sink[1], vip)
    assert await campaigns.send(await world.acc("mk"), again) == 1
    assert [r["person"] for r in await CampaignRecipient.select(CampaignRecipient.person).where(
        CampaignRecipient.campaign == again)] == [p["Anna Smith"]]


async def test_bounce_mailbox_round_trip(world: Any, sink: tuple[Sink, int], dovecot: tuple[str, int]) -> None:
    campaign = await campaign_for(world, sink[1], {"field": "tags", "op": "contains", "value": "newsletter"})
    await campaigns.send(await world.acc("mk"), campaign)  # Anna Smith, 张伟
    await run_send_jobs()
    user = f"bounces{id(world)}"  # one mailbox per test (the server lives for the session)
    imap_append(dovecot, user, _dsn("dsn_postfix_5xx.eml", "zhang.wei@example.cn"))  # no Message-ID of ours
    imap_append(dovecot, user, _dsn("dsn_delayed_4xx.eml", "anna@example.com"))
    cfg = bounces.BounceMailbox(host=dovecot[0], port=dovecot[1], user=user, password="secret")
    assert await bounces.fetch_once(cfg) == {"bounced": 1, "ignored": 1}
    assert await bounces.fetch_once(cfg) == {}  # flagged \Seen: not read again
    states = {r["email"]: r["state"] for r in await CampaignRecipient.select(
        CampaignRecipient.email, CampaignRecipient.state).where(CampaignRecipient.campaign == campaign)}
    assert states == {"zhang.wei@example.cn": "bounced", "anna@example.com": "sent"}
