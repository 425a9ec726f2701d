"""The ERP backend interface: payloads, remote records and errors.

A backend is a plain synchronous object (callers run it in a worker thread). Implementations are
registered under the entry-point group ``crm.erp_backends`` (Tryton: ``tryton =
erp_bridge.backends.tryton:TrytonBackend``). Money is always `Decimal`; a backend never returns
floats. Every write is idempotent by our deterministic reference (``CRM-SO-42``), so a retried job
finds the ERP document it created before instead of creating a second one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "Address",
    "CustomerPayload",
    "ErpBackend",
    "ErpConflictError",
    "ErpError",
    "ErpPermanentError",
    "ErpRules",
    "ErpTransientError",
    "OrderLinePayload",
    "OrderPayload",
    "Payment",
    "Pushed",
    "RemoteInvoice",
    "RemoteOrder",
    "RemoteProduct",
    "RemoteTax",
    "SaleState",
    "push_each",
]


# --- errors ----------------------------------------------------------------------------------


class ErpError(Exception):
    """Base of every backend error. Messages never contain credentials."""

    def __init__(self, message: str, *, remote_message: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        #: the ERP's own message (e.g. Tryton's UserError text), when there is one
        self.remote_message = remote_message


class ErpTransientError(ErpError):
    """Worth retrying later: connection refused, timeout, 5xx, database locked, rate limited."""


class ErpPermanentError(ErpError):
    """Retrying will not help: bad credentials, unknown product/currency, ERP validation error."""


class ErpConflictError(ErpError):
    """The remote record changed since we last saw it, or our reference matches several records."""


# --- payloads (CRM → ERP) --------------------------------------------------------------------


@dataclass(frozen=True)
class Address:
    street: str | None = None
    city: str | None = None
    zip: str | None = None
    country_code: str | None = None  # ISO 3166-1 alpha-2


@dataclass(frozen=True)
class CustomerPayload:
    ref: str  # deterministic, e.g. "CRM-C-17"
    name: str
    email: str | None = None
    phone: str | None = None
    lang: str | None = None  # e.g. "zh_CN", "en"
    address: Address | None = None


@dataclass(frozen=True)
class OrderLinePayload:
    product_code: str
    description: str
    quantity: Decimal
    #: untaxed and discounted, rounded to the ERP's price digits: the ERP's line amount is quantity × this,
    #: rounded to the currency — the CRM computed its line from the same price (``crm_sales.pricing``)
    unit_price: Decimal
    #: the ERP's ids of the taxes to apply (the CRM's tax rate mapped, ``erp_bridge.taxes``); ``()`` = no tax;
    #: ``None`` = whatever the ERP defaults to for the product (never sent by the bridge: tests only)
    taxes: tuple[str, ...] | None = None


@dataclass(frozen=True)
class OrderPayload:
    ref: str  # deterministic, e.g. "CRM-SO-42"; stored as the ERP document's reference
    customer: CustomerPayload
    currency: str  # ISO 4217
    order_date: date
    lines: tuple[OrderLinePayload, ...]
    # What the CRM computed; the ERP computes its own, reconciliation compares them.
    untaxed: Decimal
    tax: Decimal
    total: Decimal


# --- remote records (ERP → CRM) ---------------------------------------------------------------


@dataclass(frozen=True)
class RemoteOrder:
    external_id: str
    number: str | None
    reference: str
    state: str  # the ERP's own state name (Tryton: draft, quotation, confirmed, processing, ...)
    currency: str
    untaxed: Decimal
    tax: Decimal
    total: Decimal
    write_marker: str  # opaque; changes whenever the remote record changes
    invoice_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Pushed:
    """What `ErpBackend.push_orders` made of one order: the ERP document, or why not."""

    ref: str
    order: RemoteOrder | None = None
    error: ErpError | None = None
    #: the ERP held a document with our reference before this push: an earlier run created it (a duplicate
    #: prevented), and this push only finished its workflow
    existed: bool = False


@dataclass(frozen=True)
class SaleState:
    """What a reconciliation sweep reads of every ERP sale: cheap fields only (no amounts)."""

    external_id: str
    number: str | None
    reference: str
    state: str


@dataclass(frozen=True)
class Payment:
    """Money settled against an invoice (a payment, or the credit note it was reconciled with)."""

    date: date | None
    amount: Decimal  # in the invoice's currency, positive for money received on an invoice
    kind: str = "payment"  # payment | credit_note


@dataclass(frozen=True)
class RemoteInvoice:
    external_id: str
    number: str | None
    #: our OrderPayload.ref: the sale's it came from; a credit note's: the credited invoice's; else the invoice's
    #: own reference when it is one of ours (an invoice made by hand for an order)
    order_reference: str | None
    state: str
    currency: str
    untaxed: Decimal
    tax: Decimal
    total: Decimal
    amount_to_pay: Decimal
    is_paid: bool
    invoice_date: date | None
    cursor: str  # pass the last one back to pull_invoices to continue after this record
    kind: str = "invoice"  # invoice | credit_note (negative total, or made by crediting an invoice)
    reference: str = ""  # the invoice's own reference field
    sale_id: str = ""  # the ERP sale it came from (a credit note: the credited invoice's sale)
    credited_ids: tuple[str, ...] = ()  # a credit note: the invoices it credits
    #: Tryton's accounting moves: an invoice cancelled by crediting it has the credit note's move as cancel move
    move_id: str = ""
    cancel_move_id: str = ""
    due_date: date | None = None  # the earliest maturity still open (posted invoices)
    payments: tuple[Payment, ...] = ()


@dataclass(frozen=True)
class RemoteTax:
    """A tax the ERP can put on a customer's sale line."""

    external_id: str
    name: str
    kind: str  # "percentage", "fixed", "none" (Tryton's tax types)
    rate: Decimal | None  # a fraction (0.13) for a percentage tax, else None
    #: the tax is computed from others (children, dates, a unit price it changes): not a plain rate
    is_composite: bool = False


@dataclass(frozen=True)
class ErpRules:
    """How the ERP computes a sale's amounts, as far as the CRM must agree with it (``crm erp check``)."""

    tax_rounding: str  # "line" | "document": taxes rounded per line or per document (Tryton's Tax Rounding)
    price_digits: int | None  # decimals of a sale line's unit price (None: unlimited or unknown)
    #: rounding step of each currency asked for that the ERP knows (``Decimal("0.01")``; JPY ``1``)
    currency_rounding: dict[str, Decimal]
    taxes: tuple[RemoteTax, ...]  # the taxes available on customer sales


@dataclass(frozen=True)
class RemoteProduct:
    external_id: str
    code: str
    name: str
    list_price: Decimal  # untaxed, in the ERP company's currency
    is_active: bool = True


# --- the interface -------------------------------------------------------------------------------


@runtime_checkable
class ErpBackend(Protocol):
    """What the bridge needs from an ERP. All methods are blocking and may raise `ErpError`s."""

    name: str

    def health(self) -> dict[str, Any]:
        """Log in and return ``{"ok": True, ...}`` with server facts; raise on failure."""
        ...

    def push_customer(self, customer: CustomerPayload) -> str:
        """Find the customer by ``customer.ref``, else create it; return its external id."""
        ...

    def find_orders(self, ref: str) -> list[RemoteOrder]:
        """Every order carrying our reference (more than one means a duplicate)."""
        ...

    def push_order(self, order: OrderPayload) -> RemoteOrder:
        """Create and confirm the order, or finish the workflow of the one already there."""
        ...

    def push_orders(self, orders: Sequence[OrderPayload]) -> list[Pushed]:
        """`push_order` for several orders, one `Pushed` each in the same order. An error of one order is in
        its `Pushed`; an error of a call the whole batch needs (ERP down, login refused) may instead be raised,
        and then holds for every order. Backends without a batched path use `push_each`."""
        ...

    def get_order(self, external_id: str) -> RemoteOrder: ...

    def cancel_order(self, external_id: str, expected_write_marker: str) -> RemoteOrder:
        """Cancel, unless the remote changed since *expected_write_marker* (ErpConflictError)."""
        ...

    def pull_invoices(self, cursor: str | None = None, limit: int = 100) -> list[RemoteInvoice]:
        """Customer invoices created or changed after *cursor*, oldest change first (keyset)."""
        ...

    def pull_products(self, cursor: str | None = None, limit: int = 100) -> list[RemoteProduct]:
        """Salable products with id greater than *cursor* (an external id), by id."""
        ...

    def sweep_orders(self, prefix: str, after: str | None = None, limit: int = 5000) -> list[SaleState]:
        """Sales whose reference starts with *prefix* and whose id is greater than *after*, by id (keyset)."""
        ...

    def sale_states(self, external_ids: Sequence[str]) -> list[SaleState]:
        """The sales among *external_ids* that still exist (whatever their reference is now)."""
        ...

    def read_orders(self, external_ids: Sequence[str]) -> list[RemoteOrder]:
        """The sales among *external_ids* that still exist, with their amounts."""
        ...

    def invoice_ids(self, after: str | None = None, limit: int = 10000) -> list[str]:
        """Ids of customer invoices (credit notes included) greater than *after*, ascending (keyset)."""
        ...

    def existing_invoices(self, external_ids: Sequence[str]) -> set[str]:
        """Which of *external_ids* are still customer invoices in the ERP (the others were deleted)."""
        ...

    def get_invoices(self, external_ids: Sequence[str]) -> list[RemoteInvoice]:
        """Customer invoices by id, read as `pull_invoices` reads them (ids that no longer exist are left out)."""
        ...

    def document_url(self, web_url: str, model: str, external_id: str) -> str:
        """The ERP's web client page of a document (*model*: ``sale`` or ``invoice``); "" when unknown."""
        ...

    def accounting_rules(self, currencies: Sequence[str]) -> ErpRules:
        """The ERP's tax rounding, price digits, the rounding of ``currencies`` and its sale taxes."""
        ...


def push_each(backend: ErpBackend, orders: Sequence[OrderPayload]) -> list[Pushed]:
    """`ErpBackend.push_orders` one order at a time. An unreachable ERP ends the run: the rest get the same
    transient error instead of each waiting for its own time-out."""
    out: list[Pushed] = []
    for i, order in enumerate(orders):
        try:
            existed = bool(backend.find_orders(order.ref))
            out.append(Pushed(order.ref, order=backend.push_order(order), existed=existed))
        except ErpTransientError as exc:
            return out + [Pushed(o.ref, error=exc) for o in orders[i:]]
        except ErpError as exc:
            out.append(Pushed(order.ref, error=exc))
    return out
