"""Cancel with conflict check, the incremental invoice pull and its event, and the reconciliation table."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from erp_bridge.backends.fake import FakeBackend
from erp_helpers import binding, cancel, customer, drain, order

from core.hooks import hookimpl


class PaidListener:
    def __init__(self) -> None:
        self.seen: list[tuple[int, str]] = []

    @hookimpl
    def erp_bridge_invoice_paid(self, order_id: int, invoice_external_id: str) -> None:
        self.seen.append((order_id, invoice_external_id))


async def test_cancel_refuses_to_overwrite_a_change_made_in_the_erp(fake: FakeBackend) -> None:
    from erp_bridge import status, sync

    order_id = await order(await customer())
    await drain()
    sale = fake.sales[int((await binding(order_id))["external_id"])]
    sale.state = "confirmed"  # not processed yet: cancellable
    fake.touch_order(str(sale.id))  # ...but an ERP user edited it after our sync
    await cancel(order_id)
    assert await sync.queue_pending_cancellations() == 1
    await drain()
    b = await binding(order_id)
    assert b["state"] == "failed" and "changed since we last saw it" in b["last_error"]
    assert sale.state == "confirmed"  # no blind overwrite
    await status.redrive(b["id"])  # finance reviewed the ERP document: cancel the version it holds now
    await drain()
    assert sale.state == "cancelled" and (await binding(order_id))["remote_state"] == "cancelled"
    assert await sync.queue_pending_cancellations() == 0


async def test_pull_is_incremental_updates_the_order_and_publishes_paid_once(fake: FakeBackend) -> None:
    from erp_bridge import status, sync
    from erp_bridge.models import PullCursor, RemoteInvoice

    from core.runtime import current

    listener = PaidListener()
    current().plugins.register(listener)
    first, second = await order(await customer()), await order(await customer("Beijing Buyer"))
    await drain()
    assert await sync.pull_invoices(limit=1) == 2  # two keyset pages of one
    assert await RemoteInvoice.count() == 2
    inv = next(iter(i for i in fake.invoices.values() if fake.sales[i.sale_id].ref == f"CRM-SO-{first}"))
    fake.pay_invoice(str(inv.id))
    calls = fake.calls.count("pull_invoices")
    assert await sync.pull_invoices() == 1  # only what changed since the cursor
    assert fake.calls.count("pull_invoices") == calls + 1
    assert (await PullCursor.select(PullCursor.cursor).first())["cursor"] == f"{inv.changed}|{inv.id}"
    info = await status.order_status(first)
    assert info["is_paid"] and info["invoice_number"] == f"INV-{inv.id}" and info["state"] == "synced"
    assert not (await status.order_status(second))["is_paid"]
    assert await sync.pull_invoices() == 0
    fake.invoices[inv.id].changed = 10_000  # pulled again later: no second event
    await sync.pull_invoices()
    assert listener.seen == [(first, str(inv.id))]
    person_invoices = await status.invoices_of_person(
        (await binding(first))["local_id"] and (await _person_of(first)))
    assert [i["number"] for i in person_invoices] == [f"INV-{inv.id}"]


async def _person_of(order_id: int) -> int:
    from crm_sales.api import get_order

    found = await get_order(order_id)
    assert found is not None and found.person_id is not None
    return found.person_id


async def test_reconciliation_classifies_every_case(fake: FakeBackend) -> None:
    from crm_sales.models import Order
    from erp_bridge import reconcile, sync
    from erp_bridge.backends.base import ErpPermanentError

    person = await customer()
    matched = await order(person)
    mismatch = await order(person)
    currency = await order(person)
    duplicate = await order(person)
    missing = await order(person)
    await drain()
    failed = await order(person)
    fake.fail_next("push_order", ErpPermanentError("no"))
    await drain()
    in_flight = await order(person)  # queued, not run yet
    never = await order(person, publish=False)
    await sync.pull_invoices()
    # the CRM says otherwise than the ERP: tax only / currency
    row = await Order.select(Order.tax, Order.total).where(Order.id == mismatch).first()
    await Order.update({Order.tax: row["tax"] + Decimal("0.01"), Order.total: row["total"] + Decimal("0.01")}).where(
        Order.id == mismatch)
    await Order.update({Order.currency: "USD"}).where(Order.id == currency)
    from erp_bridge import sales

    loaded = await sales.load_order(duplicate)
    assert loaded is not None
    fake.add_duplicate_order(await sales.build_payload(loaded))
    gone = int((await binding(missing))["external_id"])
    for inv_id in fake.sales[gone].invoice_ids:
        del fake.invoices[inv_id]
    del fake.sales[gone]
    from erp_bridge.models import RemoteInvoice

    await RemoteInvoice.delete().where(RemoteInvoice.order_reference == f"CRM-SO-{missing}")
    stranger = fake.add_duplicate_order(await sales.build_payload(loaded))  # ours by prefix, unknown here
    fake.sales[int(stranger)].ref = "CRM-SO-9999"
    fake.push_order(await _payload_with_ref(loaded, "CRM-SO-9999"))  # gets invoiced
    await sync.pull_invoices()
    result = await reconcile.run(trigger="test")
    from erp_bridge.models import ReconciliationLine

    rows = {r["reference"]: r for r in await ReconciliationLine.select().where(
        ReconciliationLine.run == result["run_id"])}
    expect = {matched: "matched", mismatch: "amount_mismatch", currency: "currency_mismatch",
              duplicate: "duplicate", missing: "missing_in_erp", failed: "failed", in_flight: "in_flight",
              never: "missing_in_erp"}
    assert {oid: rows[f"CRM-SO-{oid}"]["status"] for oid in expect} == expect
    assert rows["CRM-SO-9999"]["status"] == "missing_in_crm"
    assert rows[f"CRM-SO-{mismatch}"]["mismatched"] == "tax,total"  # untaxed agrees
    assert rows[f"CRM-SO-{matched}"]["erp_total"] == rows[f"CRM-SO-{matched}"]["crm_total"]
    assert result["counts"]["missing_in_erp"] == 2 and sum(result["counts"].values()) == len(rows) == 9


async def _payload_with_ref(order: Any, ref: str) -> Any:
    from dataclasses import replace

    from erp_bridge import sales

    return replace(await sales.build_payload(order), ref=ref)
