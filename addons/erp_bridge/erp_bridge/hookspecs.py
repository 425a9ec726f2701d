"""Events erp_bridge emits (listeners implement them with ``@hookimpl(optionalhook=True)``)."""

from __future__ import annotations

from core.hooks import hookspec


@hookspec
def erp_bridge_invoice_paid(order_id: int, invoice_external_id: str) -> None:
    """The ERP reports the invoice of a CRM order as paid (published once per invoice, inside the pull's
    transaction that records it: enqueue your own job for slow work)."""
