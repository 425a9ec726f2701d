"""Events crm_sales emits (listeners implement them with ``@hookimpl(optionalhook=True)``)."""

from __future__ import annotations

from core.hooks import hookspec


@hookspec
def crm_sales_order_confirmed(order_id: int) -> None:
    """An order was confirmed (a customer accepted a quote).

    Published inside the confirming transaction: a listener enqueues its own actor (an outbox row in that
    same transaction), so the order and the follow-up work commit or roll back together.
    """


@hookspec
def crm_sales_opportunity_won(opportunity_id: int) -> None:
    """An opportunity moved to a won stage (published inside the moving transaction)."""


@hookspec
def crm_sales_order_cancelled(order_id: int) -> None:
    """A confirmed order was cancelled (published inside the cancelling transaction)."""


@hookspec
def crm_sales_quote_sent(quote_id: int) -> None:
    """A quote is being sent to its customer (published inside the sending transaction, before its e-mail is
    queued). A listener that cannot stand behind the quote — an ERP that could not apply one of its taxes —
    raises ``core.errors.ValidationError`` naming the field (``lines[0].tax_rate``): the transaction rolls back,
    the sender gets a 422 and nothing reaches the customer."""
