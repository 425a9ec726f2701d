"""TrytonBackend.push_orders against a real trytond: many orders in a handful of calls, one bad order failing
alone, sales already there finished rather than duplicated."""

from __future__ import annotations

from decimal import Decimal

import pytest
from erp_bridge.backends.base import ErpConflictError, ErpPermanentError, OrderLinePayload
from erp_bridge.backends.tryton import TrytonBackend
from erp_bridge.testing.tryton_server import TrytonConnection, create_sale_directly_with_proteus, proteus_config
from erp_payloads import count_calls, make_customer, make_order
from proteus import Model

pytestmark = pytest.mark.tryton

TOTAL = Decimal("293.77")  # 2 × 100.00 + 3 × 19.99 = 259.97 + 13 % tax


def _by_reference(conn: TrytonConnection, prefix: str) -> dict[str, int]:
    sales = Model.get("sale.sale", config=proteus_config(conn)).find([("reference", "like", f"{prefix}%")])
    counts: dict[str, int] = {}
    for sale in sales:
        counts[sale.reference] = counts.get(sale.reference, 0) + 1
    return counts


def test_a_batch_is_a_handful_of_calls_whatever_its_size(backend: TrytonBackend, tryton: TrytonConnection) -> None:
    backend.push_order(make_order("CRM-SO-900"))  # warm the look-up cache, as a running worker has it
    orders = [make_order(f"CRM-SO-{i}", customer=make_customer(f"CRM-C-{i % 4}")) for i in range(901, 913)]
    calls = count_calls(backend)
    pushed = backend.push_orders(orders)
    assert [p.ref for p in pushed] == [o.ref for o in orders]
    assert all(p.error is None and p.order is not None and p.order.state == "processing" for p in pushed), pushed
    assert all(p.order is not None and p.order.total == TOTAL and len(p.order.invoice_ids) == 1 for p in pushed)
    assert not any(p.existed for p in pushed)
    # find, parties (search + create + read), sales, quote, confirm, read: not one call per order
    assert len(calls) <= 9, calls
    assert calls.count("model.sale.sale.create") == 1 and calls.count("model.party.party.create") == 1
    counts = _by_reference(tryton, "CRM-SO-9")
    assert all(counts.get(o.ref) == 1 for o in orders), counts
    parties = Model.get("party.party", config=proteus_config(tryton)).find([("code", "like", "CRM-C-%")])
    assert sorted(p.code for p in parties) == ["CRM-C-0", "CRM-C-1", "CRM-C-2", "CRM-C-3"]  # one per customer


def test_one_bad_order_fails_alone_and_the_rest_go_through(backend: TrytonBackend, tryton: TrytonConnection) -> None:
    bad_product = make_order("CRM-SO-802", lines=(OrderLinePayload("P-999", "Nope", Decimal(1), Decimal(5)),))
    half = make_order("CRM-SO-803", lines=(OrderLinePayload("P-001", "Half", Decimal("1.5"), Decimal(100)),))
    orders = [make_order("CRM-SO-801"), bad_product, half, make_order("CRM-SO-804")]
    pushed = backend.push_orders(orders)
    by_ref = {p.ref: p for p in pushed}
    assert isinstance(by_ref["CRM-SO-802"].error, ErpPermanentError) and "P-999" in str(by_ref["CRM-SO-802"].error)
    assert isinstance(by_ref["CRM-SO-803"].error, ErpPermanentError)
    assert "Quantity" in str(by_ref["CRM-SO-803"].error)  # Tryton's own message for the one it refused
    for ref in ("CRM-SO-801", "CRM-SO-804"):
        remote = by_ref[ref].order
        assert by_ref[ref].error is None and remote is not None and remote.state == "processing"
    assert _by_reference(tryton, "CRM-SO-80") == {"CRM-SO-801": 1, "CRM-SO-804": 1}


def test_sales_already_there_are_finished_not_duplicated(backend: TrytonBackend, tryton: TrytonConnection) -> None:
    draft = create_sale_directly_with_proteus(tryton, reference="CRM-SO-701", confirm=False)
    done = backend.push_order(make_order("CRM-SO-702"))
    create_sale_directly_with_proteus(tryton, reference="CRM-SO-703")
    create_sale_directly_with_proteus(tryton, reference="CRM-SO-703")  # someone made it twice in Tryton
    pushed = backend.push_orders([make_order(f"CRM-SO-70{i}") for i in range(1, 5)])
    by_ref = {p.ref: p for p in pushed}
    assert by_ref["CRM-SO-701"].existed and by_ref["CRM-SO-701"].order is not None
    assert by_ref["CRM-SO-701"].order.external_id == str(draft) and by_ref["CRM-SO-701"].order.state == "processing"
    assert by_ref["CRM-SO-702"].existed and by_ref["CRM-SO-702"].order == done
    assert isinstance(by_ref["CRM-SO-703"].error, ErpConflictError)
    assert not by_ref["CRM-SO-704"].existed and by_ref["CRM-SO-704"].order is not None
    assert _by_reference(tryton, "CRM-SO-70") == {"CRM-SO-701": 1, "CRM-SO-702": 1, "CRM-SO-703": 2,
                                                  "CRM-SO-704": 1}
