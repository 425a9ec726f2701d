"""Quotes: lines and totals (``pricing.py``), revisions, the PDF, and sending it.

A quote is edited while it is a draft. Revising a sent (or declined, or expired) quote creates the next
revision with the same number and copied lines, and supersedes the previous one, whose acceptance link stops
working; the previous revision is kept as it was sent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from piccolo.columns import Column

from core import db
from core.errors import NotFound, ValidationError
from core.i18n import N_
from core.security import audit
from core.security.access import Access
from core.values import check as check_value
from crm_sales import pricing
from crm_sales.manifest import OPPORTUNITY, QUOTE
from crm_sales.models import Opportunity, Product, Quote, QuoteLine

LINE_FIELDS = ("product", "code", "description", "quantity", "unit", "unit_price", "discount_percent", "tax_rate")
DEFAULT_VALIDITY = dt.timedelta(days=30)


def _dec(value: Any) -> Any:
    return repr(value) if isinstance(value, float) else value  # JSON floats: their shortest decimal text


async def _complete(line: dict[str, Any], quote: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fill a line's blanks from its product (code, name, unit, price-list price, tax rate)."""
    out = {k: line.get(k) for k in LINE_FIELDS if line.get(k) not in (None, "")}
    for name, value in out.items():  # each value as its column can hold it: a 422, never a driver error
        out[name] = check_value(QuoteLine._meta.get_column_by_name(name), value, name)
    if out.get("product"):
        product = await Product.select().where(Product.id == out["product"]).first()
        if product is None:
            raise ValidationError({"product": N_("no product %(id)s") % {"id": out["product"]}})
        out["product"] = product["id"]
        out.setdefault("code", product["code"])
        out.setdefault("description", product["name"])
        out.setdefault("unit", product["unit"])
        if "unit_price" not in out:
            from crm_sales.pricelists import price_for

            quantity = Decimal(str(_dec(out.get("quantity", 1))))
            out["unit_price"] = product["list_price"] if quote is None else await price_for(
                product["id"], customer_group=quote.get("customer_group", ""), on=quote.get("quote_date"),
                quantity=quantity, currency=quote["currency"])
        out.setdefault("tax_rate", product["tax_rate"])
    if not out.get("description"):
        raise ValidationError({"description": N_("a line needs a description or a product")})
    return out


async def _priced(quote: dict[str, Any], lines: Sequence[dict[str, Any]], *, numbered: bool = False) -> tuple[
        list[dict[str, Any]], list[pricing.QuoteLineInput], pricing.QuoteTotals]:
    """The lines completed from their products, as pricing inputs, and their figures: what saving stores.
    ``numbered``: a refusal names the line too (``quantity_2``), for an editor showing it next to the lines."""
    filled = []
    for number, line in enumerate(lines, start=1):
        try:
            filled.append(await _complete(line, quote))
        except ValidationError as exc:
            if not numbered:
                raise
            raise ValidationError({f"{k}_{number}": v for k, v in exc.fields.items()}) from None
    inputs = [pricing.QuoteLineInput(_dec(f.get("quantity", 1)), _dec(f.get("unit_price", 0)),
                                     _dec(f.get("discount_percent", 0)), _dec(f.get("tax_rate", 0))) for f in filled]
    return filled, inputs, pricing.quote_totals(inputs, quote["currency"])


async def preview(acc: Access, quote_id: int, lines: Sequence[dict[str, Any]],
                  discount_percent: Any) -> tuple[dict[str, Any], pricing.QuoteTotals]:
    """The figures a draft would have with ``lines`` and the quote discount, computed as saving computes them
    (the same completion from products, price lists and rounding); nothing is written. The quote as it would
    read, and its totals."""
    await _check_products(acc, lines)
    quote = await acc.get(Quote, QUOTE, quote_id, action="update")
    old = Decimal(str(quote["discount_percent"] or 0))
    new = quote_discount(discount_percent)
    _, _, totals = await _priced(quote, follow_discount(lines, new, old), numbered=True)
    return {**quote, "discount_percent": new, "untaxed": totals.untaxed, "tax": totals.tax,
            "total": totals.total}, totals


async def set_lines(quote: dict[str, Any], lines: Sequence[dict[str, Any]]) -> pricing.QuoteTotals:
    """Replace a quote's lines and store their rounded figures and the totals (inside a transaction)."""
    filled, inputs, totals = await _priced(quote, lines)
    await QuoteLine.delete().where(QuoteLine.quote == quote["id"])
    for seq, (f, i, t) in enumerate(zip(filled, inputs, totals.lines, strict=True), start=1):
        await QuoteLine.insert(QuoteLine(
            quote=quote["id"], sequence=seq * 10, product=f.get("product"), code=f.get("code", ""),
            description=str(f["description"])[:500], quantity=i.quantity, unit=f.get("unit", ""),
            unit_price=i.unit_price, discount_percent=i.discount_percent, tax_rate=i.tax_rate,
            untaxed=t.untaxed, tax=t.tax, total=t.total))
    await Quote.update({Quote.untaxed: totals.untaxed, Quote.tax: totals.tax, Quote.total: totals.total}).where(
        Quote.id == quote["id"])
    return totals


async def language_of(person_id: int | None) -> str:
    from crm_contacts.api import get_contact

    if not person_id:
        return "zh_CN"
    try:
        lang = (await get_contact(person_id)).language.lower()
    except NotFound:
        return "zh_CN"
    return "en" if lang.startswith("en") else "zh_CN"


async def create_quote(acc: Access, opp_id: int, lines: Sequence[dict[str, Any]] = (), **values: Any) -> int:
    """A draft quote for a deal the user may update; language follows the customer's."""
    await acc.require(QUOTE, "create")
    await acc.check_references(Quote, {"opportunity": opp_id})  # 422 naming the field, like the API
    await _check_products(acc, lines)
    discount = quote_discount(values.get("discount_percent") or 0)
    lines = follow_discount(lines, discount, Decimal(0)) if discount else lines
    async with db.atomic():
        opp = await acc.get(Opportunity, OPPORTUNITY, opp_id, action="update")
        currency = values.get("currency") or opp["currency"]
        pricing.currency_exponent(currency)
        today = dt.date.today()
        row = Quote(opportunity=opp_id, currency=currency, owner=opp["owner"], team=opp["team"],
                    language=values.get("language") or await language_of(opp["person"]), quote_date=today,
                    valid_until=values.get("valid_until") or today + DEFAULT_VALIDITY,
                    terms=values.get("terms", ""), notes=values.get("notes", ""),
                    customer_group=values.get("customer_group", ""), custom=values.get("custom") or {},
                    discount_percent=discount)
        await row.save()
        quote_id = int(row.id)
        await Quote.update({Quote.number: f"Q{quote_id:05d}"}).where(Quote.id == quote_id)
        await set_lines(dict(await Quote.select().where(Quote.id == quote_id).first() or {}), lines)
        await audit.record("create", model=QUOTE, record_id=quote_id, changes={"opportunity": [None, opp_id]})
    return quote_id


async def _check_products(acc: Access, lines: Sequence[dict[str, Any]]) -> None:
    """Each line's product must be one the user may read (a reference is checked like a read)."""
    for line in lines:
        if isinstance(line, dict):
            await acc.check_references(QuoteLine, {"product": line.get("product")})


#: how a refusal naming these fields reads on the error page (i18n.translate turns the key into these words)
REFUSAL_LABELS = (N_("Discount percent"),)


def quote_discount(raw: Any) -> Decimal:
    """A quote-level discount as typed (``""`` is none): a percentage 0–100 with at most two decimals."""
    try:
        value = Decimal(str(_dec(raw)).strip() or "0")
    except InvalidOperation:
        raise ValidationError({"discount_percent": N_("is not a number")}) from None
    if not value.is_finite() or not 0 <= value <= 100:
        raise ValidationError({"discount_percent": N_("must be between 0 and 100")})
    if value != value.quantize(Decimal("0.01")):
        raise ValidationError({"discount_percent": N_("at most two decimals")})
    return value


def follow_discount(lines: Sequence[dict[str, Any]], new: Decimal, old: Decimal) -> list[dict[str, Any]]:
    """Lines with the quote's discount: a line without a discount of its own, or with the quote's previous one,
    takes the new one; a line given another discount keeps it. Stored on each line, so the PDF, the order and
    the ERP compute the same figures from the lines alone."""
    out = []
    for line in lines:
        raw = line.get("discount_percent")
        try:
            own = None if raw in (None, "") else Decimal(str(_dec(raw)))
        except InvalidOperation:
            own = Decimal(-1)  # not a number: left for the line's own check to refuse, naming it
        out.append({**line, "discount_percent": new} if own is None or own == old else dict(line))
    return out


async def update_draft(acc: Access, quote_id: int, lines: Sequence[dict[str, Any]] | None = None,
                       **values: Any) -> None:
    await _check_products(acc, lines or ())
    async with db.atomic():
        quote = await acc.get(Quote, QUOTE, quote_id, action="update")
        if quote["state"] != "draft":
            raise ValidationError({"state": N_("only a draft can be edited: revise the quote instead")})
        if "discount_percent" in values:
            values["discount_percent"] = quote_discount(values["discount_percent"])
        changes: dict[Column | str, Any] = {Quote._meta.get_column_by_name(k): v for k, v in values.items()
                                            if k in ("valid_until", "terms", "notes", "language", "discount_percent")}
        changes[Quote.version] = Quote.version + 1
        await Quote.update(changes).where(Quote.id == quote_id)
        old = Decimal(str(quote["discount_percent"] or 0))
        new = values.get("discount_percent", old)
        if lines is None and new != old:
            lines = [{k: ln[k] for k in LINE_FIELDS} for ln in await lines_of(quote_id)]
        if lines is not None:
            await set_lines(dict(await Quote.select().where(Quote.id == quote_id).first() or {}),
                            follow_discount(lines, new, old))
        await audit.record("update", model=QUOTE, record_id=quote_id, changes=audit.diff(
            {k: quote.get(k) for k in values}, values))


async def lines_of(quote_id: int) -> list[dict[str, Any]]:
    return list(await QuoteLine.select().where(QuoteLine.quote == quote_id).order_by(QuoteLine.sequence))


async def revise(acc: Access, quote_id: int) -> int:
    """The next revision of a sent/declined/expired quote (same number, copied lines); the old one is kept."""
    async with db.atomic():
        old = await acc.get(Quote, QUOTE, quote_id, action="update")
        if old["state"] not in ("sent", "declined", "expired") or old["is_superseded"]:
            raise ValidationError({"state": N_("only the latest sent, declined or expired revision can be revised")})
        kept = ("number", "opportunity", "currency", "language", "customer_group", "terms", "notes", "owner", "team",
                "untaxed", "tax", "total", "discount_percent")
        copy = {k: v for k, v in old.items() if k in kept}
        today = dt.date.today()
        row = Quote(_data={Quote._meta.get_column_by_name(k): v for k, v in copy.items()})
        row.revision = old["revision"] + 1
        row.revision_of = quote_id
        row.quote_date = today
        row.valid_until = today + DEFAULT_VALIDITY
        await row.save()
        new_id = int(row.id)
        for line in await lines_of(quote_id):
            data = {k: v for k, v in line.items() if k not in ("id", "quote")}
            await QuoteLine.insert(QuoteLine(quote=new_id, **data))
        # the old revision's link dies with it: only the newest revision can be accepted
        await Quote.update({Quote.is_superseded: True, Quote.token_hash: "",
                            Quote.version: Quote.version + 1}).where(Quote.id == quote_id)
        await audit.record("revise", model=QUOTE, record_id=quote_id, changes={"revision": [quote_id, new_id]})
    return new_id


async def expire_if_due(quote: dict[str, Any]) -> dict[str, Any]:
    """A sent quote past its validity date is expired (checked lazily, where it matters)."""
    if quote["state"] == "sent" and quote["valid_until"] and quote["valid_until"] < dt.date.today():
        await Quote.update({Quote.state: "expired", Quote.token_hash: ""}).where(
            (Quote.id == quote["id"]) & (Quote.state == "sent"))
        return {**quote, "state": "expired", "token_hash": ""}
    return quote


def money_sum(values: Sequence[Decimal]) -> Decimal:
    return sum(values, Decimal(0))
