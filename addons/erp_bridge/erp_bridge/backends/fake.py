"""An in-memory `ErpBackend` that behaves like the Tryton one, for unit tests only.

Failures are injectable: ``fake.fail_next("push_order", ErpTransientError("boom"), times=2)``
or ``fake.is_down = True`` (every call raises ErpTransientError). ERP-side actions a test needs
are methods too: `touch_order` (someone edits the sale), `pay_invoice`, `add_duplicate_order`.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from .base import (
    CustomerPayload,
    ErpConflictError,
    ErpError,
    ErpPermanentError,
    ErpRules,
    ErpTransientError,
    OrderPayload,
    Pushed,
    RemoteInvoice,
    RemoteOrder,
    RemoteProduct,
    RemoteTax,
    SaleState,
    push_each,
)

_CENT = Decimal("0.01")
DEFAULT_PRODUCTS = {
    "P-001": ("Widget", Decimal("100.00")),
    "P-002": ("Consulting hour", Decimal("80.00")),
    "P-003": ("Gadget", Decimal("19.99")),
}


@dataclass
class _Sale:
    id: int
    ref: str
    party_id: int
    currency: str
    untaxed: Decimal
    tax: Decimal
    state: str = "draft"
    marker: int = 0
    invoice_ids: list[int] = field(default_factory=list)


@dataclass
class _Invoice:
    id: int
    sale_id: int
    currency: str
    untaxed: Decimal
    tax: Decimal
    state: str = "draft"
    invoice_date: date | None = None
    number: str | None = None
    changed: int = 0  # logical clock, plays Tryton's last_modified_at


class FakeBackend:
    """Same contract as `TrytonBackend`: idempotent by reference, Decimal money, keyset pulls."""

    name = "fake"

    def __init__(
        self,
        *,
        tax_rate: Decimal = Decimal("0.13"),
        currencies: tuple[str, ...] = ("EUR", "USD"),
        products: dict[str, tuple[str, Decimal]] | None = None,
    ) -> None:
        self.tax_rate = tax_rate
        self.currencies = set(currencies)
        self.products = dict(DEFAULT_PRODUCTS if products is None else products)
        self.is_down = False
        #: what `accounting_rules` reports: tests change them to see `crm erp check` complain
        self.tax_rounding = "line"
        self.taxes = [RemoteTax("1", f"VAT {(tax_rate * 100).normalize():f} %", "percentage", tax_rate)]
        self.calls: list[str] = []
        self.parties: dict[int, CustomerPayload] = {}
        self.sales: dict[int, _Sale] = {}
        self.invoices: dict[int, _Invoice] = {}
        self._failures: dict[str, list[ErpError]] = defaultdict(list)
        self._lock = threading.RLock()
        self._next_id = 0
        self._clock = 0

    def __repr__(self) -> str:
        return f"FakeBackend(sales={len(self.sales)}, invoices={len(self.invoices)})"

    # --- failure injection and ERP-side actions ------------------------------------------------

    def fail_next(self, method: str, error: ErpError, times: int = 1) -> None:
        self._failures[method].extend([error] * times)

    def _enter(self, method: str) -> None:
        self.calls.append(method)
        if self.is_down:
            raise ErpTransientError(f"cannot reach fake ERP ({method})")
        if self._failures[method]:
            raise self._failures[method].pop(0)

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _tick(self) -> int:
        self._clock += 1
        return self._clock

    def touch_order(self, external_id: str) -> None:
        with self._lock:
            self.sales[int(external_id)].marker = self._tick()

    def pay_invoice(self, external_id: str) -> None:
        with self._lock:
            inv = self.invoices[int(external_id)]
            inv.state, inv.invoice_date, inv.changed = "paid", date.today(), self._tick()
            inv.number = inv.number or f"INV-{inv.id}"

    def add_duplicate_order(self, order: OrderPayload) -> str:
        with self._lock:
            return str(self._create_sale(order).id)

    # --- interface -----------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        self._enter("health")
        return {"ok": True, "backend": self.name}

    def push_customer(self, customer: CustomerPayload) -> str:
        with self._lock:
            self._enter("push_customer")
            for party_id, known in self.parties.items():
                if known.ref == customer.ref:
                    return str(party_id)
            party_id = self._new_id()
            self.parties[party_id] = customer
            return str(party_id)

    def find_orders(self, ref: str) -> list[RemoteOrder]:
        with self._lock:
            self._enter("find_orders")
            return [self._remote(s) for s in sorted(self.sales.values(), key=lambda s: s.id) if s.ref == ref]

    def get_order(self, external_id: str) -> RemoteOrder:
        with self._lock:
            self._enter("get_order")
            sale = self.sales.get(int(external_id))
            if sale is None:
                raise ErpPermanentError(f"fake ERP has no sale {external_id}")
            return self._remote(sale)

    def push_order(self, order: OrderPayload) -> RemoteOrder:
        with self._lock:
            self._enter("push_order")
            existing = [s for s in self.sales.values() if s.ref == order.ref]
            if len(existing) > 1:
                raise ErpConflictError(f"{len(existing)} fake sales carry reference {order.ref}")
            sale = existing[0] if existing else self._create_sale(order)
            if sale.state in ("draft", "quotation", "confirmed"):
                sale.state, sale.marker = "processing", self._tick()
                inv = _Invoice(self._new_id(), sale.id, sale.currency, sale.untaxed, sale.tax, changed=self._tick())
                self.invoices[inv.id] = inv
                sale.invoice_ids.append(inv.id)
            return self._remote(sale)

    def push_orders(self, orders: Sequence[OrderPayload]) -> list[Pushed]:
        return push_each(self, orders)

    def _create_sale(self, order: OrderPayload) -> _Sale:
        if order.currency not in self.currencies:
            raise ErpPermanentError(f"fake ERP has no currency {order.currency!r}")
        missing = sorted({ln.product_code for ln in order.lines} - set(self.products))
        if missing:
            raise ErpPermanentError(f"unknown product code(s) in fake ERP: {', '.join(missing)}")
        party_id = int(self.push_customer(order.customer))
        untaxed = sum(((ln.quantity * ln.unit_price).quantize(_CENT, ROUND_HALF_UP) for ln in order.lines), Decimal(0))
        tax = (untaxed * self.tax_rate).quantize(_CENT, ROUND_HALF_UP)
        sale = _Sale(self._new_id(), order.ref, party_id, order.currency, untaxed, tax, marker=self._tick())
        self.sales[sale.id] = sale
        return sale

    def cancel_order(self, external_id: str, expected_write_marker: str) -> RemoteOrder:
        with self._lock:
            current = self.get_order(external_id)
            self._enter("cancel_order")
            if current.write_marker != expected_write_marker:
                raise ErpConflictError(f"fake sale {external_id} changed since we last saw it")
            sale = self.sales[int(external_id)]
            if sale.state not in ("draft", "quotation", "confirmed", "cancelled"):
                raise ErpPermanentError(f"cannot cancel fake sale in state {sale.state!r}")
            if sale.state != "cancelled":
                sale.state, sale.marker = "cancelled", self._tick()
            return self._remote(sale)

    def pull_invoices(self, cursor: str | None = None, limit: int = 100) -> list[RemoteInvoice]:
        with self._lock:
            self._enter("pull_invoices")
            after = tuple(int(p) for p in cursor.split("|")) if cursor else (0, 0)
            rows = sorted(
                (i for i in self.invoices.values() if (i.changed, i.id) > after), key=lambda i: (i.changed, i.id)
            )[:limit]
            return [self._remote_invoice(i) for i in rows]

    def pull_products(self, cursor: str | None = None, limit: int = 100) -> list[RemoteProduct]:
        self._enter("pull_products")
        rows = [
            RemoteProduct(external_id=str(n), code=code, name=name, list_price=price)
            for n, (code, (name, price)) in enumerate(sorted(self.products.items()), 1)
        ]
        return [p for p in rows if int(p.external_id) > int(cursor or 0)][:limit]

    def accounting_rules(self, currencies: Sequence[str]) -> ErpRules:
        self._enter("accounting_rules")
        return ErpRules(tax_rounding=self.tax_rounding, price_digits=4,
                        currency_rounding={c: _CENT for c in currencies if c in self.currencies},
                        taxes=tuple(self.taxes))

    def sweep_orders(self, prefix: str, after: str | None = None, limit: int = 5000) -> list[SaleState]:
        with self._lock:
            self._enter("sweep_orders")
            rows = sorted((s for s in self.sales.values() if s.ref.startswith(prefix) and s.id > int(after or 0)),
                          key=lambda s: s.id)[:limit]
            return [SaleState(str(s.id), str(s.id), s.ref, s.state) for s in rows]

    def sale_states(self, external_ids: Sequence[str]) -> list[SaleState]:
        with self._lock:
            self._enter("sale_states")
            rows = [self.sales[int(i)] for i in external_ids if int(i) in self.sales]
            return [SaleState(str(s.id), str(s.id), s.ref, s.state) for s in rows]

    def read_orders(self, external_ids: Sequence[str]) -> list[RemoteOrder]:
        with self._lock:
            self._enter("read_orders")
            return [self._remote(self.sales[int(i)]) for i in external_ids if int(i) in self.sales]

    def invoice_ids(self, after: str | None = None, limit: int = 10000) -> list[str]:
        with self._lock:
            self._enter("invoice_ids")
            return [str(i) for i in sorted(self.invoices) if i > int(after or 0)][:limit]

    def existing_invoices(self, external_ids: Sequence[str]) -> set[str]:
        with self._lock:
            self._enter("existing_invoices")
            return {str(i) for i in external_ids if int(i) in self.invoices}

    def get_invoices(self, external_ids: Sequence[str]) -> list[RemoteInvoice]:
        with self._lock:
            self._enter("get_invoices")
            return [self._remote_invoice(self.invoices[int(i)]) for i in sorted(external_ids, key=int)
                    if int(i) in self.invoices]

    def document_url(self, web_url: str, model: str, external_id: str) -> str:
        return f"{web_url.rstrip('/')}/{model}/{external_id}" if web_url else ""

    # --- conversions -----------------------------------------------------------------------------

    def _remote(self, sale: _Sale) -> RemoteOrder:
        return RemoteOrder(
            external_id=str(sale.id),
            number=str(sale.id),
            reference=sale.ref,
            state=sale.state,
            currency=sale.currency,
            untaxed=sale.untaxed,
            tax=sale.tax,
            total=sale.untaxed + sale.tax,
            write_marker=str(sale.marker),
            invoice_ids=tuple(str(i) for i in sale.invoice_ids),
        )

    def _remote_invoice(self, inv: _Invoice) -> RemoteInvoice:
        total = inv.untaxed + inv.tax
        return RemoteInvoice(
            external_id=str(inv.id),
            number=inv.number,
            order_reference=self.sales[inv.sale_id].ref,
            state=inv.state,
            currency=inv.currency,
            untaxed=inv.untaxed,
            tax=inv.tax,
            total=total,
            amount_to_pay=Decimal(0) if inv.state in ("paid", "draft") else total,
            is_paid=inv.state == "paid",
            invoice_date=inv.invoice_date,
            cursor=f"{inv.changed}|{inv.id}",
            sale_id=str(inv.sale_id),
        )
