"""One push job takes other waiting orders into its batch (FakeBackend): each order still ends in the ERP once,
with its own binding, its own failure and its own lease."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
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


async def test_erp_down_releases_the_whole_batch_for_retry(fake: FakeBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    from erp_bridge import sync

    monkeypatch.setattr(sync, "RETRY_MIN", 30.0)  # a next try well after this test's own steps
    person = await customer()
    ids = [await order(person) for _ in range(3)]
    fake.is_down = True
    with pytest.raises(sync.Waiting, match="try 1 of 10 failed; next in 30s"):
        await sync.push_order(ids[0])
    for i in ids:  # one failed call: one attempt for each order it carried, and the same next try
        b = await binding(i)
        assert (b["state"], b["locked_until"], b["attempts"]) == ("in_flight", None, 1), b
        assert "cannot reach" in b["last_error"] and b["retry_at"] > sync.now(), b
    calls = len(fake.calls)
    for i in ids:  # their own jobs (and any batch) wait for that try, using no attempt and calling nothing
        with pytest.raises(sync.Waiting, match="next try in"):
            await sync.push_order(i)
    assert len(fake.calls) == calls and {(await binding(i))["attempts"] for i in ids} == {1}
    fake.is_down = False
    await drain()
    assert [(await binding(i))["state"] for i in ids] == ["synced"] * 3 and len(fake.sales) == 3


async def test_an_outage_costs_each_order_one_attempt_per_try_whatever_runs_it(
        fake: FakeBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every order's own job runs again and again during the outage (as duplicate or early messages would), each
    try carries every order that is due: an order's attempts are exactly the failed tries that carried it, its
    tries keep the backoff, the jobs use none of their own attempts, and all go through once the ERP is back."""
    import time

    from erp_bridge import sync

    from core import jobs, outbox
    from core.models import Outbox

    monkeypatch.setattr(sync, "RETRY_MIN", 0.05)
    monkeypatch.setattr(sync, "RETRY_MAX", 0.4)
    tries: list[tuple[float, list[str]]] = []
    real = fake.push_orders

    def recording(orders: Any) -> Any:
        tries.append((time.monotonic(), [o.ref for o in orders]))
        return real(orders)

    monkeypatch.setattr(fake, "push_orders", recording)
    person = await customer()
    ids = [await order(person) for _ in range(6)]
    fake.is_down = True
    ends = time.monotonic() + 30
    runs = 0
    while len(tries) < 5 and time.monotonic() < ends:
        for r in await Outbox.select(Outbox.id).where(Outbox.state == "pending"):
            runs += 1
            await outbox.run_job(jobs.spec("erp_bridge.push_order"), int(r["id"]))
    assert 5 <= len(tries) < sync.MAX_TRANSIENT and runs >= len(tries), (runs, len(tries))
    for i in ids:
        ref = f"CRM-SO-{i}"
        carried = [at for at, refs in tries if ref in refs]
        b = await binding(i)
        assert (b["state"], b["attempts"]) == ("in_flight", len(carried)), (b, len(carried))
        for n, (before, after) in enumerate(zip(carried, carried[1:], strict=False), start=1):
            assert after - before >= sync.backoff(n) * 0.95, (ref, n, after - before)
    rows = await Outbox.select(Outbox.attempts, Outbox.state).where(Outbox.actor == "erp_bridge.push_order")
    assert {(r["state"], r["attempts"]) for r in rows} == {("pending", 0)}  # waiting used no job attempt
    fake.is_down = False
    await drain()
    assert [(await binding(i))["state"] for i in ids] == ["synced"] * 6 and len(fake.sales) == 6
    assert {(await binding(i))["attempts"] for i in ids} == {0}
