"""One push job takes other waiting orders into its batch (FakeBackend): each order still ends in the ERP once,
with its own binding, its own failure and its own lease."""

from __future__ import annotations

import datetime as dt

import pytest
from erp_bridge.backends.base import ErpTransientError
from erp_bridge.backends.fake import FakeBackend
from erp_helpers import binding, customer, drain, order


async def test_the_first_job_pushes_the_waiting_orders_in_one_batch(fake: FakeBackend) -> None:
    from erp_bridge import sync

    person = await customer()
    ids = [await order(person) for _ in range(5)]
    assert {(await binding(i))["state"] for i in ids} == {"in_flight"}  # written with the confirmation
    assert await sync.push_order(ids[2]) == "created"
    assert fake.calls.count("push_order") == 5 and len(fake.sales) == 5
    for i in ids:
        b = await binding(i)
        assert (b["state"], b["remote_state"], b["locked_until"]) == ("synced", "processing", None), b
        assert fake.sales[int(b["external_id"])].ref == f"CRM-SO-{i}"
    outcomes = await drain()
    assert outcomes == [("erp_bridge.push_order", "done")] * 5  # the rest find their work done
    assert fake.calls.count("push_order") == 5 and len(fake.sales) == 5


async def test_a_batch_is_at_most_batch_orders(fake: FakeBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    from erp_bridge import sync

    monkeypatch.setattr(sync, "BATCH", 3)
    person = await customer()
    ids = [await order(person) for _ in range(7)]
    await sync.push_order(ids[0])
    assert [(await binding(i))["state"] for i in ids] == ["synced"] * 3 + ["in_flight"] * 4


async def test_an_order_locked_by_another_runner_stays_out_of_the_batch(fake: FakeBackend) -> None:
    from erp_bridge import sync
    from erp_bridge.models import Binding

    person = await customer()
    first, held, expired = [await order(person) for _ in range(3)]
    await Binding.update({Binding.locked_until: sync.now() + dt.timedelta(seconds=60)}).where(
        Binding.local_id == held)
    await Binding.update({Binding.locked_until: sync.now() - dt.timedelta(seconds=1)}).where(
        Binding.local_id == expired)  # its runner was killed: the lease ran out
    await sync.push_order(first)
    assert (await binding(held))["state"] == "in_flight" and len(fake.sales) == 2
    assert (await binding(expired))["state"] == "synced"


async def test_a_bad_order_in_the_batch_fails_alone_and_its_job_does_not_resend_it(fake: FakeBackend) -> None:
    from erp_bridge import sync

    person = await customer()
    good = await order(person)
    bad = await order(person, lines=(("P-999", "Unknown", "1", "5.00"),))
    no_address = await order(await customer("No Address Ltd", address=False))
    assert await sync.push_order(good) == "created"
    b = await binding(bad)
    assert b["state"] == "failed" and "P-999" in b["last_error"] and b["locked_until"] is None
    n = await binding(no_address)
    assert n["state"] == "failed" and "no postal address" in n["last_error"]
    calls = len(fake.calls)
    assert await sync.push_order(bad) == "failed earlier"
    assert len(fake.calls) == calls and (await binding(bad))["state"] == "failed"


async def test_erp_down_releases_the_whole_batch_for_retry(fake: FakeBackend) -> None:
    from erp_bridge import sync

    person = await customer()
    ids = [await order(person) for _ in range(3)]
    fake.is_down = True
    with pytest.raises(ErpTransientError):
        await sync.push_order(ids[0])
    for i in ids:
        b = await binding(i)
        assert (b["state"], b["locked_until"]) == ("in_flight", None) and "cannot reach" in b["last_error"], b
    fake.is_down = False
    await drain()
    assert [(await binding(i))["state"] for i in ids] == ["synced"] * 3 and len(fake.sales) == 3
