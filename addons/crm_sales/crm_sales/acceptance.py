"""Sending a quote, its online acceptance link, and turning an accepted quote into an order.

The link carries a token signed with the kernel secret (itsdangerous, HMAC-SHA1 over a salt specific to this
use) holding the quote id and an expiry; the quote stores the SHA-256 of the latest token it was sent with.
A token is honoured only if the signature holds, it has not expired, its hash is the quote's current one
(re-sending or revising revokes older links). Once the customer decided, the same link still opens the quote and
its PDF, read-only (an accepted one even after the link's date). Sending publishes
``crm_sales_quote_sent`` inside its transaction: a listener (the ERP bridge, for taxes the ERP cannot apply) may
refuse it with a ``ValidationError``, and then the quote stays as it was and no e-mail goes out.

Accepting is one transaction: the quote is claimed (``state = 'sent'`` → ``accepted``), the order is created
with the quote's lines copied, the deal moves to Won, and ``crm_sales_order_confirmed`` is published, so a
listener's outbox row commits or rolls back with the order. Accepting twice returns the same order.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

from core import db, hooks, jobs
from core.errors import Conflict, NotFound, ValidationError
from core.i18n import N_
from core.runtime import current
from core.security import audit
from core.security.access import Access
from crm_sales import approvals, pipeline
from crm_sales.manifest import ORDER, QUOTE
from crm_sales.models import Opportunity, Order, OrderLine, Quote, QuoteLine
from crm_sales.notify import notify, now
from crm_sales.quotes import expire_if_due

SALT = "crm_sales.quote-acceptance"
LINE_COPY = ("sequence", "product", "code", "description", "quantity", "unit", "unit_price", "discount_percent",
             "tax_rate", "untaxed", "tax", "total")


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current().settings.secret_key, salt=SALT)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def make_token(quote_id: int, expires_at: dt.datetime) -> str:
    return str(_serializer().dumps({"q": quote_id, "exp": int(expires_at.timestamp()), "n": time.time_ns()}))


def link(token: str) -> str:
    return f"{current().settings.base_url}/sales/q/{token}"


async def quote_for_token(token: str) -> dict[str, Any]:
    """The quote a link points at; ``NotFound`` for any bad, expired, revoked or spent token (no detail leaks)."""
    try:
        data = _serializer().loads(token)
    except BadSignature:
        raise NotFound(N_("this link is not valid")) from None
    if not isinstance(data, dict) or not isinstance(data.get("q"), int) or not isinstance(data.get("exp"), int):
        raise NotFound(N_("this link is not valid"))
    quote = await Quote.select().where(Quote.id == data["q"]).first()
    if quote is None or not quote["token_hash"] or quote["token_hash"] != _hash(token):
        raise NotFound(N_("this link is no longer valid"))
    # an accepted quote is the customer's copy of what they signed: its link keeps opening it (read-only)
    if data["exp"] < time.time() and quote["state"] != "accepted":
        raise NotFound(N_("this link has expired"))
    return await expire_if_due(dict(quote))


async def send(acc: Access, quote_id: int) -> dict[str, Any]:
    """Mark a quote sent, mint its link and queue the e-mail (after commit). Re-sending mints a new link.
    An approval rule may hold it (``ApprovalPending``): asked before the transaction, so the request stays."""
    before = await acc.get(Quote, QUOTE, quote_id, action="update")
    if before["state"] in ("draft", "sent") and not before["is_superseded"]:
        await approvals.check_send(acc, before)
    async with db.atomic():
        quote = await acc.get(Quote, QUOTE, quote_id, action="update")
        if quote["is_superseded"] or quote["state"] not in ("draft", "sent"):
            raise ValidationError({"state": N_("a %(state)s quote cannot be sent") % {"state": quote["state"]}})
        if not await QuoteLine.exists().where(QuoteLine.quote == quote_id):
            raise ValidationError({"lines": N_("a quote needs at least one line")})
        valid = quote["valid_until"] or dt.date.today()
        expires = dt.datetime.combine(valid + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
        token = make_token(quote_id, expires)
        # "sending" until the e-mail job has handed the message to the SMTP server (documents.send_email)
        await Quote.update({Quote.state: "sent", Quote.sent_at: now(), Quote.token_hash: _hash(token),
                            Quote.email_state: "sending", Quote.version: Quote.version + 1}).where(Quote.id == quote_id)
        # a listener may refuse (ValidationError): then nothing of this transaction, e-mail included, happens
        await hooks.publish("crm_sales_quote_sent", quote_id=quote_id)
        # the token travels in the outbox payload (database only) so a retried job mails the same link
        await jobs.enqueue("crm_sales.send_quote_email", quote_id=quote_id, accept_url=link(token))
        await audit.record("send", model=QUOTE, record_id=quote_id, changes={"state": [quote["state"], "sent"]})
    return {"id": quote_id, "state": "sent", "accept_url": link(token)}


async def _create_order(quote: dict[str, Any]) -> int:
    opp = await Opportunity.select(Opportunity.person, Opportunity.owner, Opportunity.team).where(
        Opportunity.id == quote["opportunity"]).first()
    rows = await Order.insert(Order(
        quote=quote["id"], opportunity=quote["opportunity"], person=opp["person"] if opp else None,
        currency=quote["currency"], untaxed=quote["untaxed"], tax=quote["tax"], total=quote["total"],
        owner=quote["owner"], team=quote["team"], confirmed_at=now())).returning(Order.id)
    order_id = int(rows[0]["id"])
    # deterministic reference: the ERP bridge finds a retried order by it instead of creating a second
    await Order.update({Order.reference: f"CRM-SO-{order_id}"}).where(Order.id == order_id)
    for line in await QuoteLine.select().where(QuoteLine.quote == quote["id"]).order_by(QuoteLine.sequence):
        await OrderLine.insert(OrderLine(order=order_id, **{k: line[k] for k in LINE_COPY}))
    return order_id


async def accept(quote_id: int, *, by: str, via: str) -> int:
    """Accept a sent quote (system level: the caller checked the token or the user's access); returns the order."""
    by = by.strip()[:200]
    if not by:
        raise ValidationError({"name": N_("please type your name to accept")})
    quote = await Quote.select().where(Quote.id == quote_id).first()
    if quote is None:
        raise NotFound(f"{QUOTE} {quote_id} not found")
    quote = await expire_if_due(dict(quote))  # outside the transaction: an expiry sticks even if we refuse
    async with db.atomic():
        existing = await Order.select(Order.id).where(Order.quote == quote_id).first()
        if existing is not None:
            return int(existing["id"])  # a replayed acceptance: same order, no second event
        claimed = await Quote.update({Quote.state: "accepted", Quote.decided_at: now(), Quote.decided_by: by,
                                      Quote.version: Quote.version + 1}).where(
            (Quote.id == quote_id) & (Quote.state == "sent") & (Quote.is_superseded == False)  # noqa: E712
        ).returning(Quote.id)
        if not claimed:
            raise Conflict(N_("quote %(number)s is %(state)s: it can no longer be accepted") % {
                "number": quote["number"], "state": quote["state"]})
        order_id = await _create_order(quote)
        await pipeline.win_as_system(int(quote["opportunity"]))
        await audit.record("accept", model=QUOTE, record_id=quote_id, detail=f"by {by} via {via}",
                           changes={"state": ["sent", "accepted"], "order": [None, order_id]})
        await audit.record("create", model=ORDER, record_id=order_id, detail=f"from quote {quote['number']}")
        await notify(quote["owner"], "accepted", f"Quote {quote['number']} accepted by {by}",
                     url=f"/sales/orders/{order_id}", dedup_key=f"accepted:{quote_id}")
        await hooks.publish("crm_sales_order_confirmed", order_id=order_id)
    return order_id


async def decline(quote_id: int, *, by: str, reason: str = "") -> None:
    async with db.atomic():
        claimed = await Quote.update({Quote.state: "declined", Quote.decided_at: now(),
                                      Quote.decided_by: by.strip()[:200],
                                      Quote.version: Quote.version + 1}).where(
            (Quote.id == quote_id) & (Quote.state == "sent")).returning(Quote.id, Quote.owner, Quote.number)
        if not claimed:
            raise Conflict(N_("this quote can no longer be declined"))
        await audit.record("decline", model=QUOTE, record_id=quote_id, detail=f"by {by}: {reason}"[:2000])
        await notify(claimed[0]["owner"], "declined", f"Quote {claimed[0]['number']} declined",
                     url=f"/sales/quotes/{quote_id}", dedup_key=f"declined:{quote_id}")


async def accept_as_user(acc: Access, quote_id: int, by: str = "") -> int:
    """Record a customer's acceptance received another way (signed paper, e-mail): the API's ``accept``."""
    await acc.get(Quote, QUOTE, quote_id, action="update")
    return await accept(quote_id, by=by or (acc.principal.name if acc.principal else "api"), via="user")


async def cancel_order(acc: Access, order_id: int) -> None:
    async with db.atomic():
        await acc.get(Order, ORDER, order_id, action="update")
        done = await Order.update({Order.state: "cancelled", Order.cancelled_at: now(),
                                   Order.version: Order.version + 1}).where(
            (Order.id == order_id) & (Order.state == "confirmed")).returning(Order.id)
        if not done:
            raise Conflict(N_("the order is not confirmed"))
        await audit.record("cancel", model=ORDER, record_id=order_id)
        await hooks.publish("crm_sales_order_cancelled", order_id=order_id)
