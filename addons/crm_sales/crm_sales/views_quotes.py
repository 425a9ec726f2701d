"""Quote, order and product pages, and the public acceptance pages (no login: the signed link is the key).

The public pages carry the pre-login CSRF token the kernel sets in a cookie, so the accept/decline form is
protected like every other form; they show the quote and nothing else of the CRM.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from core import customfields, db, list_pages, records
from core.approvals import ApprovalPending, ApprovalRejected
from core.errors import ValidationError
from core.i18n import N_
from core.search import contains
from core.timeline import feed
from core.web import access, form_str, render
from crm_sales import acceptance, documents, editing, pricing, quotes
from crm_sales.manifest import ORDER, PRODUCT, QUOTE
from crm_sales.models import Opportunity, Order, OrderLine, Product, Quote

LINE_INPUTS = ("product", "code", "description", "quantity", "unit", "unit_price", "discount_percent", "tax_rate")
BLANK_ROWS = 3


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


QUOTE_STATES = ("draft", "sent", "accepted", "declined", "expired")


async def quote_list(request: Request) -> Response:
    """Quotes by state and number or deal, filterable custom fields, the listed ones as columns."""
    acc = access(request)
    params = request.query_params
    clauses: list[Any] = []
    state = params.get("state", "")
    if state in QUOTE_STATES:
        clauses.append(Quote.state == state)
    q = " ".join(params.get("q", "").split())[:100]
    if q:
        clauses.append(contains(Quote.number, q) | contains(Quote.opportunity.name, q))
    custom = await editing.listing(acc, QUOTE, params)
    clauses.extend(custom["where"])
    where = None
    for clause in clauses:
        where = clause if where is None else where & clause
    page = await list_pages.sorted_page(
        acc, QUOTE, Quote, (Quote.number, Quote.revision, Quote.state, Quote.email_state, Quote.is_superseded,
                            Quote.total, Quote.currency, Quote.opportunity.name, Quote.created_at, Quote.custom),
        where=where, params=params, sortable={"number": Quote.number, "total": Quote.total})
    return await render(request, "crm_sales/quote_list.html",
                  rows=editing.cells(acc, QUOTE, custom["listed"], page.rows),
                  listed=custom["listed"], custom_filters=custom["filters"], custom_values=custom["values"],
                  q=q, state=state, states=QUOTE_STATES, sort=page.sort,
                  custom_sorts=list_pages.sortable_custom(acc, QUOTE), next=list_pages.next_url(params, page.next))


async def quote_create(request: Request) -> Response:
    acc = access(request)  # before reading the form: an anonymous request learns nothing of its rules
    form = await request.form()
    opp = form_str(form, "opportunity", required=True)
    if not opp.isdigit():
        raise ValidationError({"opportunity": N_("must be an opportunity id")})
    # the API's write path: a custom field required on create is asked on the deal page's "New quote" form
    quote_id = await editing.save(acc, QUOTE, {"opportunity": int(opp)}, form)
    return _see_other(f"/sales/quotes/{quote_id}")


async def _product_prices(products: list[dict[str, Any]], quote: dict[str, Any]) -> dict[int, str]:
    """The unit price each product gets on this quote (its price list, else its list price in the quote's
    currency), for the editor to fill in when the product is picked; blank where only the server can tell."""
    from crm_sales.models import PriceList
    from crm_sales.pricelists import price_for

    has_lists = await PriceList.exists().where((PriceList.is_active == True)  # noqa: E712
                                               & (PriceList.currency == quote["currency"]))
    out: dict[int, str] = {}
    for p in products:
        if has_lists and len(products) <= 200:
            out[p["id"]] = str(await price_for(p["id"], customer_group=quote["customer_group"],
                                               on=quote["quote_date"], currency=quote["currency"]))
        elif not has_lists and p["currency"] == quote["currency"]:
            out[p["id"]] = str(p["list_price"])
    return out


async def quote_detail(request: Request) -> Response:
    acc = access(request)
    quote = acc.present(QUOTE, await acc.get(Quote, QUOTE, int(request.path_params["id"])))
    lines = await quotes.lines_of(quote["id"])
    editable = quote["state"] == "draft" and acc.can(QUOTE, "update")
    products = await (await acc.select(Product, PRODUCT, Product.id, Product.code, Product.name, Product.name_zh,
                                       Product.unit, Product.list_price, Product.currency, Product.tax_rate,
                                       where=Product.is_active == True)).order_by(Product.code)  # noqa: E712
    opp = await Opportunity.select(Opportunity.id, Opportunity.name).where(
        Opportunity.id == quote["opportunity"]).first()
    revisions = await (await acc.select(Quote, QUOTE, Quote.id, Quote.revision, Quote.state,
                                        where=Quote.number == quote["number"])).order_by(Quote.revision)
    # blocks from installed addons and the kernel (e.g. "awaiting approval by …"), each checking rights itself
    found = await records.extras(acc, QUOTE, quote["id"])
    record_timeline = await feed.build(acc, QUOTE, quote["id"], url=request.url.path)
    totals = pricing.quote_totals([pricing.QuoteLineInput(ln["quantity"], ln["unit_price"], ln["discount_percent"],
                                                          ln["tax_rate"]) for ln in lines], quote["currency"])
    return await render(request, "crm_sales/quote_detail.html", quote=quote, lines=lines,
                  products=products, prices=await _product_prices(products, quote) if editable else {},
                  opp=opp, panels=found.panels, actions=found.actions, totals=totals,
                  record_timeline=record_timeline,
                  approval=request.query_params.get("approval", ""),
                  revisions=revisions, blank=range(len(lines), len(lines) + (1 if lines else BLANK_ROWS)),
                  inputs=LINE_INPUTS, editable=editable,
                  custom=await customfields.shown(acc, QUOTE, quote.get("custom")),
                  custom_inputs=await editing.inputs(acc, QUOTE, quote.get("custom"), creating=False)
                  if editable else [],
                  sent_link=request.query_params.get("link", ""))


_LINE_KEY = re.compile(r"(?:description|product)_(\d{1,4})")


def _form_lines(form: Any) -> list[dict[str, Any]]:
    """The lines a quote form posted, in the order of their index: rows added or removed in the browser leave
    gaps in the numbering, which do not matter."""
    return [line for _, line in _indexed_lines(form)]


def _indexed_lines(form: Any) -> list[tuple[int, dict[str, Any]]]:
    out: list[tuple[int, dict[str, Any]]] = []
    indexes = sorted({int(m.group(1)) for key in form if (m := _LINE_KEY.fullmatch(key))})
    for index in indexes:
        row = {name: form_str(form, f"{name}_{index}", max_length=500) for name in LINE_INPUTS}
        if row["description"] or row["product"]:
            if row["product"] and not row["product"].isdigit():
                raise ValidationError({f"product_{index}": N_("unknown product")})
            out.append((index, {k: (int(v) if k == "product" else v) for k, v in row.items() if v}))
    return out


#: a line's fields as the editor labels them, for a preview's error ("Line 2 · Qty: is not a number")
_LINE_LABELS = {"product": N_("Product"), "code": N_("Code"), "description": N_("Description"), "quantity": N_("Qty"),
                "unit": N_("Unit"), "unit_price": N_("Unit price"), "discount_percent": N_("Discount"),
                "tax_rate": N_("Tax rate")}


def _refusal(exc: ValidationError) -> str:
    from core.i18n import gettext, translate

    parts = []
    for key, message in exc.fields.items():
        field, _, number = key.rpartition("_")
        if number.isdigit() and field in _LINE_LABELS:
            where = gettext("Line %(n)s") % {"n": number} + " · " + gettext(_LINE_LABELS[field])
        else:
            where = gettext(_LINE_LABELS.get(key, "Discount on the whole quote"))
        parts.append(f"{where}: {translate(message)}")
    return "; ".join(parts)


async def quote_preview(request: Request) -> Response:
    """The editor's figures as typed, before saving: the totals table and each line's amount, computed by the
    server as saving would (a fragment the editor swaps in); a 422 fragment names what does not read."""
    acc = access(request)
    form = await request.form()
    indexed: list[tuple[int, dict[str, Any]]] = []
    try:
        indexed = _indexed_lines(form)
        quote, totals = await quotes.preview(acc, int(request.path_params["id"]), [ln for _, ln in indexed],
                                             form_str(form, "discount_percent", max_length=20))
    except ValidationError as exc:
        invalid = []  # the inputs to mark: a line's number → its row's input name
        for key in exc.fields:
            field, _, number = key.rpartition("_")
            if number.isdigit() and field in _LINE_LABELS and 0 < int(number) <= len(indexed):
                invalid.append(f"{field}_{indexed[int(number) - 1][0]}")
            elif key == "discount_percent":
                invalid.append(key)
        return await render(request, "crm_sales/quote_preview.html", status=422, error=_refusal(exc),
                            invalid=invalid)
    return await render(request, "crm_sales/quote_preview.html", quote=quote, totals=totals, error="", invalid=[],
                        amounts=[(index, t.untaxed) for (index, _), t in zip(indexed, totals.lines, strict=True)])


async def quote_save(request: Request) -> Response:
    quote_id = int(request.path_params["id"])
    form = await request.form()
    acc = access(request)
    lines = _form_lines(form)
    async with db.atomic():  # lines and custom fields together, or nothing
        await quotes.update_draft(acc, quote_id, lines,
                                  terms=form_str(form, "terms", max_length=5000),
                                  notes=form_str(form, "notes", max_length=2000),
                                  language=form_str(form, "language") or "zh_CN",
                                  discount_percent=form_str(form, "discount_percent", max_length=20))
        if customfields.definitions(QUOTE):  # custom fields: the API's write path (rights, kinds, audit)
            current = await acc.get(Quote, QUOTE, quote_id)
            await editing.save(acc, QUOTE, {}, form, record_id=quote_id, version=str(current["version"]))
    return _see_other(f"/sales/quotes/{quote_id}")


async def quote_send(request: Request) -> Response:
    quote_id = int(request.path_params["id"])
    try:
        sent = await acceptance.send(access(request), quote_id)
    except ApprovalPending:  # the quote page's approvals panel says who it waits for
        return _see_other(f"/sales/quotes/{quote_id}?approval=pending")
    except ApprovalRejected:
        return _see_other(f"/sales/quotes/{quote_id}?approval=rejected")
    return _see_other(f"/sales/quotes/{quote_id}?link={sent['accept_url']}")


async def quote_revise(request: Request) -> Response:
    return _see_other(f"/sales/quotes/{await quotes.revise(access(request), int(request.path_params['id']))}")


def _pdf(pdf: bytes, quote: dict[str, Any]) -> Response:
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{documents.filename(quote)}"'})


async def quote_pdf(request: Request) -> Response:
    acc = access(request)
    quote = await acc.get(Quote, QUOTE, int(request.path_params["id"]))
    return _pdf(await documents.render_pdf(quote["id"], viewer=acc), quote)


async def order_list(request: Request) -> Response:
    acc = access(request)
    rows = await (await acc.select(Order, ORDER, Order.id, Order.reference, Order.state, Order.total, Order.currency,
                                   Order.confirmed_at, Order.opportunity.name)).order_by(
        Order.id, ascending=False).limit(200)
    return await render(request, "crm_sales/order_list.html", rows=rows)


async def order_detail(request: Request) -> Response:
    acc = access(request)
    order = acc.present(ORDER, await acc.get(Order, ORDER, int(request.path_params["id"])))
    lines = await OrderLine.select().where(OrderLine.order == order["id"]).order_by(OrderLine.sequence)
    # blocks from installed addons (e.g. the ERP sync state), each checking the user's rights itself
    found = await records.extras(acc, ORDER, order["id"])
    return await render(request, "crm_sales/order_detail.html", order=order, lines=lines,
                  panels=found.panels, actions=found.actions,
                  can_cancel=order["state"] == "confirmed" and acc.can(ORDER, "update"))


async def order_cancel(request: Request) -> Response:
    await acceptance.cancel_order(access(request), int(request.path_params["id"]))
    return _see_other(f"/sales/orders/{request.path_params['id']}")


async def product_list(request: Request) -> Response:
    acc = access(request)
    rows = await (await acc.select(Product, PRODUCT, Product.id, Product.code, Product.name, Product.name_zh,
                                   Product.unit, Product.list_price, Product.currency, Product.tax_rate,
                                   Product.is_active)).order_by(Product.code).limit(500)
    return await render(request, "crm_sales/product_list.html", rows=rows, can_create=acc.can(PRODUCT, "create"))


async def public_quote(request: Request) -> Response:
    token = request.path_params["token"]
    quote = await acceptance.quote_for_token(token)
    ctx = await documents.context(quote["id"])
    with documents.language(ctx["locale"]):
        return await render(request, "crm_sales/public_quote.html", token=token, q=quote, doc=ctx)


async def public_quote_pdf(request: Request) -> Response:
    quote = await acceptance.quote_for_token(request.path_params["token"])
    return _pdf(await documents.render_pdf(quote["id"]), quote)


async def public_decide(request: Request) -> Response:
    token = request.path_params["token"]
    quote = await acceptance.quote_for_token(token)
    form = await request.form()
    name = form_str(form, "name", max_length=200)
    decision = form_str(form, "decision")
    if decision == "accept":
        await acceptance.accept(quote["id"], by=name, via="link")
    elif decision == "decline":
        await acceptance.decline(quote["id"], by=name or "customer", reason=form_str(form, "reason", max_length=1000))
    else:
        raise ValidationError({"decision": N_("choose accept or decline")})
    with documents.language(quote["language"]):
        return await render(request, "crm_sales/public_done.html", decision=decision, number=quote["number"],
                            token=token)


ROUTES: list[BaseRoute] = [
    Route("/quotes", quote_list, name="quote_list"),
    Route("/quotes", quote_create, methods=["POST"], name="quote_create"),
    Route("/quotes/{id:int}", quote_detail, name="quote_detail"),
    Route("/quotes/{id:int}", quote_save, methods=["POST"], name="quote_save"),
    Route("/quotes/{id:int}/preview", quote_preview, methods=["POST"], name="quote_preview"),
    Route("/quotes/{id:int}/send", quote_send, methods=["POST"], name="quote_send"),
    Route("/quotes/{id:int}/revise", quote_revise, methods=["POST"], name="quote_revise"),
    Route("/quotes/{id:int}/pdf", quote_pdf, name="quote_pdf"),
    Route("/orders", order_list, name="order_list"),
    Route("/orders/{id:int}", order_detail, name="order_detail"),
    Route("/orders/{id:int}/cancel", order_cancel, methods=["POST"], name="order_cancel"),
    Route("/products", product_list, name="product_list"),
    Route("/q/{token:str}", public_quote, name="public_quote"),
    Route("/q/{token:str}", public_decide, methods=["POST"], name="public_decide"),
    Route("/q/{token:str}/pdf", public_quote_pdf, name="public_quote_pdf"),
]
