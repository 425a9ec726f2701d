"""Quotes behind approvals (core.approvals): sending a quote, and the discounts it gives.

Both are asked when a quote is sent (:func:`check_send`, before the sending transaction): the discount first
(``crm_sales.quote_discount``: its rules read the largest line discount and what the discounts give away), then
the sending itself (``crm_sales.quote_send``: totals, customer group). Once approved, the held sending runs by
itself as the rep who asked, if the quote is still the draft it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from core.approvals import require
from core.hooks import ApprovableAction, hookimpl
from core.i18n import N_, gettext
from core.security.access import Access
from crm_sales.manifest import QUOTE
from crm_sales.models import Quote, QuoteLine

SEND = "crm_sales.quote_send"
DISCOUNT = "crm_sales.quote_discount"
LABELS = {"discount": N_("Largest line discount (%)"), "discount_amount": N_("Discounts given"),
          "untaxed": N_("Untaxed amount"), "total": N_("Total"), "currency": N_("Currency"),
          "customer_group": N_("Customer group"), "owner": N_("Owner"), "team": N_("Team"),
          "lines": N_("Lines"), "number": N_("Number")}
_COMMON = {"untaxed": "money", "total": "money", "currency": "text", "customer_group": "text", "owner": "reference",
           "team": "reference"}


async def values_of(quote: dict[str, Any]) -> dict[str, Any]:
    """What approval rules read of a quote: its totals and, from its lines, the largest discount and the amount
    the discounts give away (list price × quantity − untaxed)."""
    lines = await QuoteLine.select(QuoteLine.quantity, QuoteLine.unit_price, QuoteLine.discount_percent).where(
        QuoteLine.quote == quote["id"])
    gross = sum((Decimal(str(ln["quantity"])) * Decimal(str(ln["unit_price"])) for ln in lines), Decimal(0))
    untaxed = Decimal(str(quote["untaxed"]))
    return {"number": quote["number"], "discount": max((Decimal(str(ln["discount_percent"])) for ln in lines),
                                                       default=Decimal(0)),
            "discount_amount": max(gross - untaxed, Decimal(0)).quantize(Decimal("0.01")), "untaxed": untaxed,
            "total": quote["total"], "currency": quote["currency"], "customer_group": quote["customer_group"],
            "owner": quote["owner"], "team": quote["team"], "lines": len(lines)}


async def check_send(acc: Access, quote: dict[str, Any]) -> None:
    """Raise ``ApprovalPending``/``ApprovalRejected`` while the quote's discounts or its sending await an
    approval (outside any transaction: the request must outlive the refusal)."""
    values = await values_of(quote)
    await require(acc, DISCOUNT, QUOTE, int(quote["id"]), values)
    await require(acc, SEND, QUOTE, int(quote["id"]), values)


async def _send_approved(acc: Access, quote_id: int) -> str:
    from crm_sales import acceptance

    row = await Quote.select(Quote.state, Quote.number, Quote.is_superseded).where(Quote.id == quote_id).first()
    if row is None or row["state"] != "draft" or row["is_superseded"]:
        return gettext("Quote %(number)s was not sent: it is no longer a draft") % {
            "number": row["number"] if row else quote_id}
    await acceptance.send(acc, quote_id)
    return gettext("Quote %(number)s was sent to the customer") % {"number": row["number"]}


@hookimpl
def crm_approvable_actions() -> Sequence[ApprovableAction]:
    url = "/sales/quotes/{id}"
    return [
        ApprovableAction(DISCOUNT, N_("Accept a discount on a quote"), QUOTE,
                         {"discount": "decimal", "discount_amount": "money", "lines": "number", **_COMMON},
                         labels=LABELS, title="number", url=url, perform=_send_approved),
        ApprovableAction(SEND, N_("Send a quote"), QUOTE, {**_COMMON, "discount": "decimal", "lines": "number"},
                         labels=LABELS, title="number", url=url, perform=_send_approved),
    ]
