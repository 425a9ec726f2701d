"""A worker killed in the middle of a campaign batch: its untried recipients are sent by the batch's next run,
the message in flight is never sent again (``unknown``), nobody gets the mail twice (counted at the sink).
The 2-worker SIGKILL run at scale is bench/marketing_send_workers.py."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import pytest
from crm_marketing import campaigns, sending, smtp_data
from crm_marketing.models import CampaignRecipient
from crm_marketing.send_marks import Marks
from marketing_helpers import Sink, add_person, campaign_for

from core.errors import RetryLater


class Killed(BaseException):
    """The process died: nothing after it runs (a dead worker writes nothing more)."""


async def test_a_batch_killed_mid_send_loses_and_repeats_nobody(
    world: Any, sink: tuple[Sink, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    handler, port = sink
    for i in range(3):
        await add_person(f"客户{i}", f"k{i}@example.cn", province="海南")
    campaign_id = await campaign_for(world, port, {"field": "province", "op": "eq", "value": "海南"})
    assert await campaigns.send(await world.acc("mk"), campaign_id) == 3
    rows = await CampaignRecipient.select().where(CampaignRecipient.campaign == campaign_id).order_by(
        CampaignRecipient.id)
    first, second, third = (int(r["id"]) for r in rows)

    # the worker dies after the server accepted the 2nd message, before that was written down
    real_advance = Marks.advance

    async def dying(marks: Marks, done: int | None, row_id: int | None) -> int | None:
        if done == second:
            raise Killed
        return await real_advance(marks, done, row_id)

    monkeypatch.setattr(Marks, "advance", dying)
    with pytest.raises(Killed):
        await sending.send_batch(campaign_id, first, third)
    monkeypatch.setattr(Marks, "advance", real_advance)
    assert len(handler.messages) == 2
    states = {int(r["id"]): r["state"] for r in await CampaignRecipient.select().where(
        CampaignRecipient.campaign == campaign_id)}
    assert states == {first: "sent", second: "sending", third: "queued"}

    # a second run (a redelivered message) while the lease holds mails nobody and waits for it
    with pytest.raises(RetryLater):
        await sending.send_batch(campaign_id, first, third)
    assert len(handler.messages) == 2

    # the lease ran out: the next run sends the untried one; the one in flight is unknown, never sent again
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    await CampaignRecipient.update({CampaignRecipient.next_try_at: past}).where(
        CampaignRecipient.campaign == campaign_id)
    assert (await sending.send_batch(campaign_id, first, third))["sent"] == 1
    states = {int(r["id"]): r["state"] for r in await CampaignRecipient.select().where(
        CampaignRecipient.campaign == campaign_id)}
    assert states == {first: "sent", second: "unknown", third: "sent"}
    at_sink = Counter(m["Message-ID"] for m in handler.messages)
    assert len(at_sink) == 3 and set(at_sink.values()) == {1}
    assert {m["To"] for m in handler.messages} == {"k0@example.cn", "k1@example.cn", "k2@example.cn"}


async def test_a_run_whose_lease_was_taken_over_sends_nothing(world: Any, sink: tuple[Sink, int]) -> None:
    handler, port = sink
    await add_person("客户", "k@example.cn", province="海南")
    campaign_id = await campaign_for(world, port, {"field": "province", "op": "eq", "value": "海南"})
    await campaigns.send(await world.acc("mk"), campaign_id)
    row = await CampaignRecipient.select().where(CampaignRecipient.campaign == campaign_id).first()
    assert row is not None
    now = dt.datetime.now(dt.UTC)
    ours, theirs = now + dt.timedelta(seconds=5), now + dt.timedelta(seconds=60)
    # a later run claimed the row after our lease ran out: we may not mark it, so we do not send it
    await CampaignRecipient.update({CampaignRecipient.next_try_at: theirs}).where(CampaignRecipient.id == row["id"])
    async with Marks(ours) as marks:
        assert await marks.advance(None, int(row["id"])) is None
    async with Marks(theirs) as marks:
        assert await marks.advance(None, int(row["id"])) == 1
    assert not handler.messages


async def test_a_connection_lost_during_the_content_leaves_the_recipient_in_doubt(
    world: Any, sink: tuple[Sink, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    import aiosmtplib

    handler, port = sink
    await add_person("客户", "k@example.cn", province="海南")
    campaign_id = await campaign_for(world, port, {"field": "province", "op": "eq", "value": "海南"})
    await campaigns.send(await world.acc("mk"), campaign_id)
    real_data = smtp_data.data_after

    async def lost(smtp: aiosmtplib.SMTP, message: bytes, ready: Any) -> None:
        await real_data(smtp, message, ready)  # the server took it, then the reply never came
        raise aiosmtplib.SMTPServerDisconnected("connection lost")

    monkeypatch.setattr(smtp_data, "data_after", lost)
    row = await CampaignRecipient.select().where(CampaignRecipient.campaign == campaign_id).first()
    assert await sending.send_batch(campaign_id, row["id"], row["id"]) == {
        "sent": 0, "retry": 0, "failed": 0, "unknown": 1}
    monkeypatch.setattr(smtp_data, "data_after", real_data)
    after = await CampaignRecipient.select().where(CampaignRecipient.id == row["id"]).first()
    assert after["state"] == "unknown" and "connection lost" in after["error"]
    await sending.send_batch(campaign_id, row["id"], row["id"])  # a redelivered job: never sent again
    assert len(handler.messages) == 1
