"""The CRM must not create differences itself (issue 17 §3): for generated lines — quantities, prices, discounts,
tax rates, currencies with 0, 2 and 3 decimals — the line the CRM computes (``crm_sales.pricing``) and the line a
real trytond computes from what the bridge sends (``erp_bridge.sales.line_payloads``: net unit price, mapped
taxes) have the same untaxed amount, tax and total; so do whole orders.

Lines are batched: each example is ~60 lines, each sent as a one-line draft sale (one ``create`` for all: Tryton's
amounts per line) and, per currency, as one multi-line order through the whole push (quote, confirm, process)."""

from __future__ import annotations

import datetime as dt
import itertools
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from crm_sales.api import OrderLineRef, OrderRef
from crm_sales.pricing import QuoteLineInput, quote_totals
from erp_bridge.backends.base import OrderPayload
from erp_bridge.backends.tryton import TrytonBackend
from erp_bridge.sales import line_payloads
from erp_bridge.taxes import Mapped, key
from erp_bridge.testing.tryton_server import (
    TrytonConnection,
    running_server,
    set_tax_rounding,
    tax_ids,
)
from erp_payloads import make_customer, record_timing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.tryton

CURRENCIES = {"JPY": 0, "EUR": 2, "USD": 2, "KWD": 3, "BHD": 3}  # created in the test Tryton (CNY: as EUR)
RATES = (Decimal(0), Decimal("0.06"), Decimal("0.09"), Decimal("0.13"))
LINES_PER_EXAMPLE = 60
EXAMPLES = 5
_refs = itertools.count(1)


@pytest.fixture(scope="module")
def erp(tryton_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TrytonConnection, Any]]:
    """One trytond for the module (hypothesis runs every example against it), with the tax mapping."""
    with running_server(tryton_db, tmp_path_factory.mktemp("tryton-amounts")) as conn:
        backend = TrytonBackend(conn.url, conn.database, conn.username, conn.password, timeout=60)
        ids = tax_ids(conn)
        mapping = {key(r): Mapped(key(r), ids[key(r)] if r else "") for r in RATES}  # 0 %: sent with no tax
        yield conn, (backend, mapping)
        backend.close()


def _price(places: int) -> st.SearchStrategy[Decimal]:
    return st.decimals(min_value=0, max_value=100_000, places=places)


@st.composite
def lines(draw: st.DrawFn) -> tuple[str, str, QuoteLineInput]:
    currency = draw(st.sampled_from(sorted(CURRENCIES)))
    weighed = draw(st.booleans())  # P-004 by the kilogram (4 decimals), else P-001 by the unit (whole numbers)
    quantity = draw(st.decimals(min_value=0, max_value=10_000, places=4) if weighed
                    else st.integers(min_value=0, max_value=10_000).map(Decimal))
    # exact halves of the currency's minor unit are where half up and half to even part: ask for them often
    half = Decimal(1).scaleb(-CURRENCIES[currency]) / 2
    price = draw(_price(4) | _price(2) | st.integers(min_value=0, max_value=2_000_000).map(lambda k: k * half)
                 .filter(lambda p: p <= 100_000 and p == p.quantize(Decimal("0.0001"))))
    discount = draw(st.sampled_from([Decimal(0), Decimal(10)]) | st.decimals(min_value=0, max_value=100, places=2))
    rate = draw(st.sampled_from(RATES))
    return currency, "P-004" if weighed else "P-001", QuoteLineInput(quantity, price, discount, rate)


def _order(ref: str, currency: str, items: list[tuple[str, QuoteLineInput]]) -> OrderRef:
    """The order as crm_sales stores it: its lines' figures from crm_sales.pricing."""
    totals = quote_totals([q for _, q in items], currency)
    refs = tuple(OrderLineRef(code=code, description=f"{code} line", quantity=q.quantity, unit="",
                              unit_price=q.unit_price, discount_percent=q.discount_percent, tax_rate=q.tax_rate,
                              untaxed=t.untaxed, tax=t.tax, total=t.total)
                 for (code, q), t in zip(items, totals.lines, strict=True))
    return OrderRef(id=0, reference=ref, state="confirmed", person_id=None, opportunity_id=None, currency=currency,
                    confirmed_at=dt.datetime.now(dt.UTC), untaxed=totals.untaxed, tax=totals.tax, total=totals.total,
                    owner_id=None, lines=refs)


def _payload(order: OrderRef, mapping: dict[Decimal, Mapped]) -> OrderPayload:
    return OrderPayload(ref=order.reference, customer=make_customer("CRM-C-AMOUNTS"), currency=order.currency,
                        order_date=dt.date.today(), lines=line_payloads(order, mapping), untaxed=order.untaxed,
                        tax=order.tax, total=order.total)


def _figures(obj: Any) -> tuple[Decimal, Decimal, Decimal]:
    return obj.untaxed, obj.tax, obj.total


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                          HealthCheck.data_too_large])
@given(batch=st.lists(lines(), min_size=LINES_PER_EXAMPLE, max_size=LINES_PER_EXAMPLE))
def test_crm_and_tryton_compute_every_line_and_order_alike(erp: tuple[TrytonConnection, Any],
                                                             batch: list[tuple[str, str, QuoteLineInput]]) -> None:
    _conn, (backend, mapping) = erp
    started = time.monotonic()
    run = next(_refs)
    singles = [_order(f"AMT-{run}-{i}", currency, [(code, line)]) for i, (currency, code, line) in enumerate(batch)]
    ids = backend._create_sales([_payload(o, mapping) for o in singles])  # drafts: Tryton computes, we read
    rows = {r["reference"]: r for r in backend.call("model.sale.sale.read", ids,
                                                     ["reference", "untaxed_amount", "tax_amount", "total_amount"])}
    differ = []
    for order in singles:
        row = rows[order.reference]
        crm, erp_side = _figures(order.lines[0]), (row["untaxed_amount"], row["tax_amount"], row["total_amount"])
        if crm != erp_side:
            ln = order.lines[0]
            differ.append(f"{order.currency} {ln.code} {ln.quantity} × {ln.unit_price} −{ln.discount_percent} % "
                          f"@{ln.tax_rate}: CRM {crm} ≠ Tryton {erp_side}")
    assert differ == [], "\n".join(differ)
    # whole orders, through the real push (quote, confirm, process with its invoice): totals equal too
    by_currency: dict[str, list[tuple[str, QuoteLineInput]]] = {}
    for currency, code, line in batch:
        by_currency.setdefault(currency, []).append((code, line))
    orders = [_order(f"AMT-{run}-{c}", c, items) for c, items in sorted(by_currency.items())]
    pushed = backend.push_orders([_payload(o, mapping) for o in orders])
    for order, result in zip(orders, pushed, strict=True):
        assert result.error is None, result.error
        assert result.order is not None and _figures(result.order) == _figures(order), order.reference
        assert order.untaxed == sum((ln.untaxed for ln in order.lines), Decimal(0))  # lines add up to the totals
    record_timing("amounts: one example (60 lines)", time.monotonic() - started)


def test_check_reports_tryton_rounding_taxes_per_document(erp: tuple[TrytonConnection, Any]) -> None:
    from erp_bridge.taxes import problems

    conn, (backend, mapping) = erp
    rules = backend.accounting_rules(sorted(CURRENCIES) + ["CNY"])
    assert rules.tax_rounding == "line" and rules.price_digits == 4
    assert rules.currency_rounding == {"JPY": Decimal(1), "EUR": Decimal("0.01"), "USD": Decimal("0.01"),
                                       "KWD": Decimal("0.001"), "BHD": Decimal("0.001")}
    assert {key(t.rate) for t in rules.taxes if t.rate is not None} >= {key(r) for r in RATES if r}
    assert problems(rules, mapping, RATES, sorted(CURRENCIES)) == []
    assert problems(rules, mapping, RATES, ["CNY"]) == ["the ERP has no currency CNY (used by the CRM)"]
    set_tax_rounding(conn, "document")
    try:
        found = problems(backend.accounting_rules(["EUR"]), mapping, RATES, ["EUR"])
        assert found == ["the ERP rounds taxes per document, the CRM per line: set the ERP's tax rounding to per "
                         "line (Tryton: Accounting configuration, Tax Rounding)"]
    finally:
        set_tax_rounding(conn, "line")
