"""Push path with the FakeBackend: exactly once in effect, transient vs permanent, crash recovery."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from erp_bridge.backends.base import ErpPermanentError, ErpTransientError
from erp_bridge.backends.fake import FakeBackend
from erp_helpers import binding, customer, drain, order, outbox_row

from core.errors import RetryLater


async def test_confirmed_order_reaches_the_erp_once_with_a_binding(fake: FakeBackend) -> None:
    order_id = await order(await customer())
    job = await outbox_row(f"push-order:{order_id}")
    assert job["actor"] == "erp_bridge.push_order"  # written in the confirming transaction
    assert await drain() == [("erp_bridge.push_order", "done")]
    b = await binding(order_id)
    assert (b["state"], b["reference"], b["remote_state"]) == ("synced", f"CRM-SO-{order_id}", "processing")
    assert b["external_id"] and b["sync_date"] is not None and len(b["payload_hash"]) == 64
    (sale,) = fake.sales.values()
    assert (sale.ref, sale.currency, sale.untaxed) == (f"CRM-SO-{order_id}", "EUR", Decimal("259.97"))
    party = fake.parties[sale.party_id]
    assert party.address is not None and party.address.country_code == "CN"


async def test_duplicate_messages_and_events_create_one_sale(fake: FakeBackend) -> None:
    from core import hooks, outbox

    order_id = await order(await customer())
    await hooks.publish("crm_sales_order_confirmed", order_id=order_id)  # a replayed event: same outbox row
    job = await outbox_row(f"push-order:{order_id}")
    await outbox.dispatch([job["id"], job["id"]])
    await drain()
    from erp_bridge import sync

    assert await sync.push_order(order_id) == "already synced"  # a late duplicate delivery
    assert len(fake.sales) == 1 and fake.calls.count("push_order") == 1
    # reruns counts runs that found the sale already in the ERP; a message after the sync never reaches the ERP
    assert (await binding(order_id))["reruns"] == 0


async def test_crash_between_erp_create_and_binding_write_finds_the_existing_sale(fake: FakeBackend) -> None:
    from erp_bridge import sync
    from erp_bridge.models import Binding

    order_id = await order(await customer())
    real_release = sync._release
    crashed = {"n": 0}

    async def crash_once(binding_id: int, **values: Any) -> None:
        if values.get("state") == "synced" and not crashed["n"]:
            crashed["n"] += 1
            raise RuntimeError("worker killed after the ERP created the sale")
        await real_release(binding_id, **values)

    sync._release = crash_once  # type: ignore[assignment]
    try:
        outcome = await drain(max_rounds=1)
    finally:
        sync._release = real_release  # type: ignore[assignment]
    assert outcome[0][1].startswith("retry: ") and len(fake.sales) == 1
    # the lease of the killed run has not expired yet: expire it as time would
    await Binding.update({Binding.locked_until: None}).where(Binding.local_id == order_id)
    assert await drain() == [("erp_bridge.push_order", "done")]
    b = await binding(order_id)
    assert len(fake.sales) == 1 and b["state"] == "synced" and b["reruns"] == 1
    assert b["external_id"] == str(next(iter(fake.sales)))


async def test_a_held_lock_makes_a_second_runner_back_off(fake: FakeBackend) -> None:
    from erp_bridge import connection, sales, sync

    order_id = await order(await customer(), publish=False)
    loaded = await sales.load_order(order_id)
    assert loaded is not None
    await sync.claim(await connection.active(), loaded, "push")
    with pytest.raises(RetryLater, match="being synced by another job") as info:
        await sync.push_order(order_id)
    assert not fake.sales and 1.0 <= info.value.delay <= 10.0


async def test_a_job_waiting_for_a_lock_keeps_its_attempts_and_its_row(fake: FakeBackend) -> None:
    from erp_bridge import connection, sales, sync

    from core import jobs, outbox

    order_id = await order(await customer())
    loaded = await sales.load_order(order_id)
    assert loaded is not None
    await sync.claim(await connection.active(), loaded, "push")
    row = await outbox_row(f"push-order:{order_id}")
    await outbox.run_job(jobs.spec("erp_bridge.push_order"), int(row["id"]))  # sent again, to run later
    after = await outbox_row(f"push-order:{order_id}")
    assert (after["state"], after["attempts"]) == ("pending", 0) and "being synced" in after["last_error"]


async def test_transient_errors_are_retried_then_succeed(fake: FakeBackend) -> None:
    order_id = await order(await customer())
    fake.fail_next("push_order", ErpTransientError("connection refused"), times=2)
    runs = await drain()
    assert [r[1].startswith("retry") for r in runs] == [True, True, False]
    b = await binding(order_id)
    assert b["state"] == "synced" and b["last_error"] == "" and fake.calls.count("push_order") == 3
    assert len(fake.sales) == 1


async def test_permanent_error_fails_with_the_erp_message_and_redrive_works(fake: FakeBackend) -> None:
    from erp_bridge import status

    order_id = await order(await customer())
    fake.fail_next("push_order", ErpPermanentError("Tryton rejected create", remote_message="Bad party"))
    assert await drain() == [("erp_bridge.push_order", "failed")]
    b = await binding(order_id)
    assert b["state"] == "failed" and "Bad party" in b["last_error"]
    assert (await outbox_row(f"push-order:{order_id}"))["state"] == "failed"
    assert [r["local_id"] for r in await status.failed()] == [order_id]
    assert await status.redrive(b["id"]) == "in_flight"
    assert await drain() == [("erp_bridge.push_order", "done")]
    assert (await binding(order_id))["state"] == "synced" and len(fake.sales) == 1
