"""Payload builders and timing records shared by the erp_bridge backend tests (uniquely named: every addon's
tests run in one session)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from erp_bridge.backends.base import Address, CustomerPayload, OrderLinePayload, OrderPayload

TIMINGS: dict[str, list[float]] = {}


def record_timing(name: str, seconds: float) -> None:
    TIMINGS.setdefault(name, []).append(seconds)



def make_customer(ref: str = "CRM-C-1", **overrides: object) -> CustomerPayload:
    values: dict[str, object] = dict(
        ref=ref,
        name="上海 Acme Trading",
        email="buyer@acme.example.org",
        phone="+8613800138000",
        lang="zh_CN",
        address=Address(street="1 Century Ave", city="Shanghai", zip="200120", country_code="CN"),
    )
    values.update(overrides)
    return CustomerPayload(**values)  # type: ignore[arg-type]


def make_order(
    ref: str = "CRM-SO-1",
    currency: str = "EUR",
    lines: tuple[OrderLinePayload, ...] | None = None,
    customer: CustomerPayload | None = None,
) -> OrderPayload:
    lines = lines or (
        OrderLinePayload("P-001", "Widget, blue", Decimal("2"), Decimal("100.00")),
        OrderLinePayload("P-003", "Gadget", Decimal("3"), Decimal("19.99")),
    )
    untaxed = sum((ln.quantity * ln.unit_price for ln in lines), Decimal(0))
    tax = (untaxed * Decimal("0.13")).quantize(Decimal("0.01"))
    return OrderPayload(
        ref=ref,
        customer=customer or make_customer(),
        currency=currency,
        order_date=dt.date.today(),
        lines=lines,
        untaxed=untaxed,
        tax=tax,
        total=untaxed + tax,
    )


def count_calls(backend: Any) -> list[str]:
    """Record the RPC method of every call ``backend`` (a TrytonBackend) makes from now on."""
    calls: list[str] = []
    post = backend._post

    def counting(method: str, *args: object, **kw: object) -> object:
        calls.append(method)
        return post(method, *args, **kw)

    backend._post = counting
    return calls
