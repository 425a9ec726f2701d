"""FakeBackend keeps the TrytonBackend contract (idempotency, errors, keyset pulls)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from erp_bridge.backends.base import (
    ErpBackend,
    ErpConflictError,
    ErpPermanentError,
    ErpTransientError,
    OrderLinePayload,
)
from erp_bridge.backends.fake import FakeBackend
from erp_payloads import make_customer, make_order


def test_fake_satisfies_the_protocol() -> None:
    assert isinstance(FakeBackend(), ErpBackend)


def test_push_is_idempotent_and_computes_decimal_totals() -> None:
    fake = FakeBackend()
    first = fake.push_order(make_order("CRM-SO-1"))
    again = fake.push_order(make_order("CRM-SO-1"))
    assert again == first and len(fake.find_orders("CRM-SO-1")) == 1
    assert (first.untaxed, first.tax, first.total) == (Decimal("259.97"), Decimal("33.80"), Decimal("293.77"))
    assert first.state == "processing" and len(first.invoice_ids) == 1
    assert fake.push_customer(make_customer()) == fake.push_customer(make_customer())


def test_duplicates_unknown_product_and_currency() -> None:
    fake = FakeBackend()
    fake.push_order(make_order("CRM-SO-2"))
    fake.add_duplicate_order(make_order("CRM-SO-2"))
    assert len(fake.find_orders("CRM-SO-2")) == 2
    with pytest.raises(ErpConflictError):
        fake.push_order(make_order("CRM-SO-2"))
    bad_line = (OrderLinePayload("P-999", "x", Decimal(1), Decimal(1)),)
    with pytest.raises(ErpPermanentError, match="P-999"):
        fake.push_order(make_order("CRM-SO-3", lines=bad_line))
    with pytest.raises(ErpPermanentError, match="XXX"):
        fake.push_order(make_order("CRM-SO-4", currency="XXX"))
    assert fake.find_orders("CRM-SO-3") == fake.find_orders("CRM-SO-4") == []


def test_injected_failures_then_recovery() -> None:
    fake = FakeBackend()
    fake.fail_next("push_order", ErpTransientError("timeout"), times=2)
    for _ in range(2):
        with pytest.raises(ErpTransientError):
            fake.push_order(make_order("CRM-SO-5"))
    assert fake.push_order(make_order("CRM-SO-5")).state == "processing"
    fake.is_down = True
    with pytest.raises(ErpTransientError):
        fake.health()


def test_pull_invoices_keyset_and_payment() -> None:
    fake = FakeBackend()
    for n in range(3):
        fake.push_order(make_order(f"CRM-SO-1{n}"))
    page1 = fake.pull_invoices(None, limit=2)
    page2 = fake.pull_invoices(page1[-1].cursor, limit=2)
    assert [i.order_reference for i in page1 + page2] == ["CRM-SO-10", "CRM-SO-11", "CRM-SO-12"]
    assert fake.pull_invoices(page2[-1].cursor) == []
    fake.pay_invoice(page1[0].external_id)
    (paid,) = fake.pull_invoices(page2[-1].cursor)
    assert paid.external_id == page1[0].external_id and paid.is_paid


def test_cancel_conflict_and_state_rules() -> None:
    fake = FakeBackend()
    sale_id = fake.add_duplicate_order(make_order("CRM-SO-20"))  # a draft sale
    seen = fake.get_order(sale_id)
    fake.touch_order(sale_id)
    with pytest.raises(ErpConflictError):
        fake.cancel_order(sale_id, seen.write_marker)
    fresh = fake.get_order(sale_id)
    assert fake.cancel_order(sale_id, fresh.write_marker).state == "cancelled"
    pushed = fake.push_order(make_order("CRM-SO-21"))
    with pytest.raises(ErpPermanentError, match="processing"):
        fake.cancel_order(pushed.external_id, pushed.write_marker)
