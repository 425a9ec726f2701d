"""Each bad input of the issue ends in a clear failed entry with its cause, nothing duplicated, nothing lost,
and a re-drive that works once the cause is fixed (FakeBackend; Tryton's own messages: test_tryton_e2e)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from erp_bridge.backends.base import ErpPermanentError, ErpTransientError, OrderPayload, RemoteOrder
from erp_bridge.backends.fake import FakeBackend
from erp_helpers import binding, customer, drain, order


async def _fails_then_redrive(order_id: int, cause: str, fix: Any, fake: FakeBackend) -> None:
    from erp_bridge import status

    await drain()
    b = await binding(order_id)
    assert b["state"] == "failed", b
    assert cause in b["last_error"], b["last_error"]
    assert [r["id"] for r in await status.failed()] == [b["id"]]
    await fix()
    assert await status.redrive(b["id"]) == "in_flight"
    await drain()
    b = await binding(order_id)
    assert (b["state"], b["last_error"]) == ("synced", ""), b
    assert [s.ref for s in fake.sales.values()] == [f"CRM-SO-{order_id}"]  # exactly one sale


async def test_erp_down_retries_then_fails_clearly_and_recovers(fake: FakeBackend) -> None:
    from erp_bridge import sync

    fake.is_down = True
    order_id = await order(await customer())
    runs = await drain(max_rounds=sync.MAX_TRANSIENT + 2)
    assert len(runs) == sync.MAX_TRANSIENT and all(r[1].startswith("retry") for r in runs[:-1])
    assert runs[-1] == ("erp_bridge.push_order", "failed")

    async def fix() -> None:
        fake.is_down = False

    await _fails_then_redrive(order_id, f"gave up after {sync.MAX_TRANSIENT} attempts: cannot reach fake ERP", fix,
                              fake)


async def test_wrong_credentials(fake: FakeBackend) -> None:
    order_id = await order(await customer())
    fake.fail_next("push_order", ErpPermanentError("Tryton login refused for user 'admin' (wrong username or "
                                                   "password)"))

    async def fix() -> None:  # the next call logs in with the corrected password
        pass

    await _fails_then_redrive(order_id, "wrong username or password", fix, fake)


async def test_unknown_product(fake: FakeBackend) -> None:
    order_id = await order(await customer(), lines=(("P-999", "Mystery", "1", "10.00"),))

    async def fix() -> None:
        fake.products["P-999"] = ("Mystery", Decimal("10.00"))

    await _fails_then_redrive(order_id, "unknown product code(s) in fake ERP: P-999", fix, fake)


async def test_customer_without_address(fake: FakeBackend) -> None:
    from crm_contacts.api import add_address

    person = await customer(address=False)
    order_id = await order(person)

    async def fix() -> None:
        assert fake.calls == []  # refused before any ERP call
        await add_address(person, line1="8 Nanjing Rd", city="Shanghai", country="CN")

    await _fails_then_redrive(order_id, "has no postal address", fix, fake)


async def test_currency_the_erp_lacks(fake: FakeBackend) -> None:
    order_id = await order(await customer(), currency="CNY")

    async def fix() -> None:
        fake.currencies.add("CNY")

    await _fails_then_redrive(order_id, "fake ERP has no currency 'CNY'", fix, fake)


async def test_error_in_the_middle_of_processing_leaves_one_sale(fake: FakeBackend) -> None:
    real = fake.push_order
    state = {"failed": False}

    def half_then_fail(payload: OrderPayload) -> RemoteOrder:
        if not state["failed"]:
            state["failed"] = True
            fake.add_duplicate_order(payload)  # the sale exists in draft, then confirm blows up
            raise ErpPermanentError("Tryton rejected model.sale.sale.confirm: fiscal year closed",
                                    remote_message="fiscal year closed")
        return real(payload)

    fake.push_order = half_then_fail  # type: ignore[method-assign]
    order_id = await order(await customer())

    async def fix() -> None:
        pass  # the fiscal year was reopened in the ERP

    await _fails_then_redrive(order_id, "fiscal year closed", fix, fake)
    (sale,) = fake.sales.values()
    assert sale.state == "processing"


async def test_order_edited_during_sync_is_flagged_not_lost(fake: FakeBackend) -> None:
    from crm_sales.models import OrderLine
    from erp_bridge import sync

    order_id = await order(await customer())
    real_call = sync._call

    async def edit_while_sending(fn: Any, *args: Any) -> Any:
        if getattr(fn, "__name__", "") in ("push_order", "push_orders"):
            await OrderLine.update({OrderLine.quantity: Decimal(5)}).where(
                (OrderLine.order == order_id) & (OrderLine.code == "P-001"))
        return await real_call(fn, *args)

    sync._call = edit_while_sending  # type: ignore[assignment]
    try:
        await drain()
    finally:
        sync._call = real_call  # type: ignore[assignment]
    b = await binding(order_id)
    assert b["state"] == "failed" and "edited in the CRM while it was being sent" in b["last_error"]
    assert b["external_id"]  # the ERP's sale is known: nothing lost

    async def fix() -> None:  # the change is reverted after review
        await OrderLine.update({OrderLine.quantity: Decimal(2)}).where(
            (OrderLine.order == order_id) & (OrderLine.code == "P-001"))

    from erp_bridge import status

    await fix()
    await status.redrive(b["id"])
    await drain()
    assert (await binding(order_id))["state"] == "synced" and len(fake.sales) == 1


async def test_transient_error_while_cancelling_keeps_the_job(fake: FakeBackend) -> None:
    from erp_helpers import cancel

    order_id = await order(await customer())
    await drain()
    fake.sales[int((await binding(order_id))["external_id"])].state = "confirmed"  # still cancellable
    await cancel(order_id)
    from core import jobs

    await jobs.enqueue("erp_bridge.cancel_order", dedup_key=f"cancel-order:{order_id}", order_id=order_id)
    fake.fail_next("cancel_order", ErpTransientError("timeout"))
    runs = await drain()
    assert [r[1][:5] for r in runs] == ["retry", "done"]
    assert (await binding(order_id))["remote_state"] == "cancelled"


async def test_scheduled_jobs_wait_quietly_until_an_erp_is_configured(crm_boot: Any) -> None:
    """A fresh install (the demo) has no ERP yet: the periodic pull and reconciliation succeed as no-ops
    instead of filling the failed list every tick; a reconciliation asked for by a user still says why not."""
    from core import jobs
    from core.models import Outbox

    await crm_boot("erp_bridge")
    await jobs.enqueue("erp_bridge.pull_invoices")
    await jobs.enqueue("erp_bridge.reconcile", trigger="schedule")
    await drain()
    states = [r["state"] for r in await Outbox.select(Outbox.state).where(Outbox.actor.like("erp_bridge.%"))]
    assert states == ["done", "done"], states
    await jobs.enqueue("erp_bridge.reconcile", trigger="manual")
    await drain()
    manual = await Outbox.select().where(Outbox.actor == "erp_bridge.reconcile").order_by(Outbox.id,
                                                                                         ascending=False).first()
    assert manual["state"] == "failed" and "no active ERP backend" in manual["last_error"], manual
