"""Pages of crm_sales: the kanban board, lists, the opportunity page, leads, my activities, the forecast.

Quotes, orders, products and the public acceptance pages are in ``views_quotes.py``; both join ``ROUTES``.
Every read and write goes through the kernel's access layer; forms carry the CSRF token, the board's drag
and drop posts JSON with the ``X-CSRF-Token`` header (``static/crm_sales/kanban.js``).
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from piccolo.custom_types import Combinable
from piccolo.query.functions.aggregate import Count, Sum
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from core import customfields, i18n, list_pages
from core.errors import Conflict, ValidationError
from core.i18n import N_
from core.search import contains
from core.timeline import feed
from core.web import access, form_str, render
from crm_sales import activities, editing, forecast, leads, pipeline, win
from crm_sales.manifest import ACTIVITY, LEAD, OPPORTUNITY, ORDER, QUOTE
from crm_sales.models import Activity, Lead, Opportunity, Order, Quote

BOARD_CARDS = 50  # cards drawn per column; counts and sums cover every deal


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


async def board(request: Request) -> Response:
    acc = access(request)
    team = min(acc.principal.team_ids) if acc.principal and acc.principal.team_ids else None
    stages = [s for s in await pipeline.stages_for(team) if not s["is_won"] and not s["is_lost"]]
    # one grouped count for every column (same record rules), then a short page of cards per column
    # the sums per stage and currency (a column may hold deals in several currencies: never added together)
    counted = await (await acc.select(Opportunity, OPPORTUNITY, Opportunity.stage, Opportunity.currency, Count(),
                                      Sum(Opportunity.expected_revenue), where=Opportunity.state == "open")).group_by(
        Opportunity.stage, Opportunity.currency)
    counts: dict[int, int] = {}
    sums: dict[int, list[tuple[str, Decimal]]] = {}
    for row in counted:
        counts[row["stage"]] = counts.get(row["stage"], 0) + row["count"]
        sums.setdefault(row["stage"], []).append((row["currency"], Decimal(str(row["sum"] or 0))))
    columns = []
    for stage in stages:
        where = (Opportunity.stage == stage["id"]) & (Opportunity.state == "open")
        cards = [] if not counts.get(stage["id"]) else await (await acc.select(
            Opportunity, OPPORTUNITY, Opportunity.id, Opportunity.name, Opportunity.expected_revenue,
            Opportunity.currency, Opportunity.probability, Opportunity.version, Opportunity.owner.name,
            Opportunity.expected_close, where=where)).order_by(Opportunity.id, ascending=False).limit(BOARD_CARDS)
        for card in cards:
            card["minor"] = _minor(card["expected_revenue"], card["currency"])
        totals = [(cur, amount, _minor(amount, cur)) for cur, amount in sorted(sums.get(stage["id"], []))]
        columns.append({"stage": stage, "cards": cards, "count": counts.get(stage["id"], 0), "sums": totals})
    closing = {s["key"]: s for s in await pipeline.stages_for(team) if s["is_won"] or s["is_lost"]}
    can_create = acc.can(OPPORTUNITY, "create")
    new_form = await _deal_form(acc, None, creating=True) if can_create else {}
    return await render(request, "crm_sales/board.html", columns=columns, closing=closing,
                  can_move=acc.can(OPPORTUNITY, "update"), limit=BOARD_CARDS, can_create=can_create,
                  row={"currency": "CNY"}, errors={}, opp_id=None, **new_form)


def _minor(amount: Any, currency: str) -> int:
    """An amount in its currency's minor unit (fen, cents): what the board's script adds up, exactly."""
    from crm_sales.pricing import PricingError, currency_exponent

    try:
        exponent = currency_exponent(currency)
    except PricingError:  # a stored code Babel does not know: cents, as most currencies have
        exponent = 2
    return int(Decimal(str(amount or 0)).scaleb(exponent).to_integral_value(rounding=ROUND_HALF_EVEN))


async def opportunity_move(request: Request) -> Response:
    """The board's drop: JSON in, JSON out; the server decides whether the move is allowed."""
    acc = access(request)
    try:
        body = await request.json()
        stage = int(body["stage"])
        version = int(body["version"]) if body.get("version") is not None else None
    except (ValueError, KeyError, TypeError):
        raise ValidationError({"stage": N_("must be a stage id")}) from None
    opp = await pipeline.move(acc, int(request.path_params["id"]), stage, expected_version=version,
                              lost_reason=str(body.get("lost_reason") or ""))
    return JSONResponse({"id": opp["id"], "stage": opp["stage"], "state": opp["state"], "version": opp["version"],
                         "probability": opp["probability"]})


def _period(params: Any) -> list[Combinable]:
    """``created_at_from`` / ``created_at_to`` (and ``closed_at_…``): ISO dates, both ends included — how a report
    links a figure to its deals (the dataset's ``drill``); a date that does not parse filters nothing."""
    out: list[Combinable] = []
    for name in ("created_at", "closed_at"):
        column = getattr(Opportunity, name)
        for end in ("from", "to"):
            try:
                day = dt.date.fromisoformat(params.get(f"{name}_{end}", ""))
            except ValueError:
                continue
            at = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
            out.append(column >= at if end == "from" else column < at + dt.timedelta(days=1))
    return out


#: what the deal and lead lists sort by besides the id (newest / oldest) and their sortable custom fields
DEAL_SORTS = {"name": Opportunity.name, "expected_revenue": Opportunity.expected_revenue,
              "expected_close": Opportunity.expected_close, "probability": Opportunity.probability}
LEAD_SORTS = {"name": Lead.name, "expected_revenue": Lead.expected_revenue}


async def opportunity_list(request: Request) -> Response:
    """Deals by state and stage, a name search, filterable custom fields and the listed ones as columns; a won
    deal shows what was ordered next to what was expected."""
    acc = access(request)
    params = request.query_params
    state = params.get("state", "open")
    clauses: list[Combinable] = [Opportunity.state == state] if state in ("open", "won", "lost") else []
    stage = params.get("stage", "")
    if stage.isdigit():
        clauses.append(Opportunity.stage == int(stage))
    clauses.extend(_period(params))
    q = " ".join(params.get("q", "").split())[:100]
    if q:
        clauses.append(contains(Opportunity.name, q))
    custom = await editing.listing(acc, OPPORTUNITY, params)
    clauses.extend(custom["where"])
    where: Combinable | None = None
    for clause in clauses:
        where = clause if where is None else where & clause
    page = await list_pages.sorted_page(
        acc, OPPORTUNITY, Opportunity,
        (Opportunity.name, Opportunity.state, Opportunity.stage.name, Opportunity.stage.name_zh,
         Opportunity.expected_revenue, Opportunity.currency, Opportunity.probability,
         Opportunity.is_probability_manual, Opportunity.expected_close, Opportunity.owner.name, Opportunity.custom),
        where=where, params=params, sortable=DEAL_SORTS)
    rows = page.rows
    won = [r["id"] for r in rows if r["state"] == "won"]
    ordered: dict[int, list[dict[str, Any]]] = {}
    if won and acc.can(ORDER):
        for o in await (await acc.select(Order, ORDER, Order.opportunity, Order.total, Order.currency,
                                         where=Order.opportunity.is_in(won) & (Order.state == "confirmed"))):
            ordered.setdefault(o["opportunity"], []).append(o)
    return await render(request, "crm_sales/opportunity_list.html",
                  rows=editing.cells(acc, OPPORTUNITY, custom["listed"], rows), state=state, q=q,
                  ordered=ordered, listed=custom["listed"], custom_filters=custom["filters"],
                  custom_values=custom["values"], can_create=acc.can(OPPORTUNITY, "create"), sort=page.sort,
                  custom_sorts=list_pages.sortable_custom(acc, OPPORTUNITY),
                  next=list_pages.next_url(params, page.next))


async def opportunity_detail(request: Request) -> Response:
    acc = access(request)
    opp_id = int(request.path_params["id"])
    opp = acc.present(OPPORTUNITY, await acc.get(Opportunity, OPPORTUNITY, opp_id))
    stages = await pipeline.stages_for(opp["team"])
    quotes = await (await acc.select(Quote, QUOTE, Quote.id, Quote.number, Quote.revision, Quote.state,
                                     Quote.total, Quote.currency, where=Quote.opportunity == opp_id)).order_by(Quote.id)
    acts = await (await acc.select(Activity, ACTIVITY, Activity.id, Activity.kind, Activity.subject, Activity.due_at,
                                   Activity.done_at, where=Activity.opportunity == opp_id)).order_by(Activity.due_at)
    contact, contact_url = None, None
    if opp["person"]:
        from crm_contacts import api as contacts

        contact = contacts.seen_by(acc, await contacts.get_contact(opp["person"]))
        # The deal's owner always sees who the customer is; the link only where contact rules let them in.
        contact_url = await contacts.contact_url(acc, contacts.PERSON_MODEL, contact.id)
    if isinstance(opp.get("tags"), str):
        opp["tags"] = json.loads(opp["tags"] or "[]")
    explanation = pipeline.as_dict(opp["score_explanation"])
    # a won deal: what the customer actually ordered (the accepted quote's order), not the forecast
    orders = await (await acc.select(Order, ORDER, Order.id, Order.reference, Order.total, Order.currency,
                                     Order.state, where=Order.opportunity == opp_id)).order_by(Order.id) \
        if opp["state"] == "won" and acc.can(ORDER) else []
    return await render(request, "crm_sales/opportunity_detail.html", opp=opp, stages=stages,
                  history=await pipeline.history(opp_id), quotes=quotes, activities=acts, contact=contact,
                  contact_url=contact_url, explanation=explanation,
                  reasons=win.reasons(explanation, await _factor_values(explanation, stages)), orders=orders,
                  custom=await customfields.shown(acc, OPPORTUNITY, opp.get("custom")),
                  # a new quote's custom fields the layout asks for on create (required ones first of all)
                  quote_inputs=[i for i in await editing.inputs(acc, QUOTE, None, creating=True)
                                if i.required] if acc.can(QUOTE, "create") else [],
                  can_update=acc.can(OPPORTUNITY, "update"), kinds=activities.KINDS,
                  record_timeline=await feed.build(acc, OPPORTUNITY, opp_id, url=request.url.path))


async def _factor_values(explanation: dict[str, Any], stages: list[dict[str, Any]]) -> dict[str, str]:
    """``feature=value`` → what to show for it: a stage's name rather than its key, a team's name rather than
    its id (the other features' values are already words or ranges)."""
    from core.security.models import Team

    out: dict[str, str] = {}
    zh = i18n.language() == "zh_CN"
    for stage in stages:
        out[f"stage={stage['key']}"] = (stage["name_zh"] if zh and stage["name_zh"] else stage["name"])
    teams = [f["value"] for f in explanation.get("factors", []) if f["feature"] == "team" and f["value"].isdigit()]
    if teams:
        for team in await Team.select(Team.id, Team.name).where(Team.id.is_in([int(t) for t in teams])):
            out[f"team={team['id']}"] = team["name"]
    return out


DEAL_FORM = ("name", "expected_revenue", "expected_close", "source", "region", "industry", "products_of_interest")


async def _form_run(request: Request, model: str, table: Any, fields: tuple[str, ...], path: str
                    ) -> Response | tuple[Any, int | None, dict[str, Any], dict[str, str], int, Any, bool]:
    """A create (no ``id`` in the path) or edit form's common part: the right checked, the record read as the
    user may see it, a post saved (a redirect to the record) or refused (what was typed and the reasons back):
    ``(access, record_id, row, errors, status, typed form, creating)`` for drawing the form."""
    acc = access(request)
    raw_id = request.path_params.get("id")
    record_id = int(raw_id) if raw_id is not None else None
    creating = record_id is None
    row: dict[str, Any] = {"currency": "CNY"}
    if record_id is None:
        await acc.require(model, "create")
    else:
        row = acc.present(model, await acc.get(table, model, record_id, action="update"))
    errors: dict[str, str] = {}
    status, typed = 200, None
    if request.method == "POST":
        form = await request.form()
        values = _form_values(form, (*fields, "currency"), creating=creating)
        try:
            saved = await editing.save(acc, model, values, form, record_id=record_id,
                                       version=form_str(form, "version"))
            return _see_other(f"{path}/{saved}")
        except (ValidationError, Conflict) as exc:
            errors = _form_errors(exc)
            status, typed, row = exc.status, form, {**row, **values}
    return acc, record_id, row, errors, status, typed, creating


async def opportunity_form(request: Request) -> Response:
    """A deal's create form (also drawn on the pipeline page, which posts here) or edit form; custom fields and
    the layout like the other forms; a refused post comes back with the reasons next to the fields."""
    run = await _form_run(request, OPPORTUNITY, Opportunity, DEAL_FORM, "/sales/opportunities")
    if isinstance(run, Response):
        return run
    acc, opp_id, row, errors, status, typed, creating = run
    return await render(request, "crm_sales/opportunity_form.html", status=status, row=row, opp_id=opp_id,
                  errors=errors, **await _deal_form(acc, row.get("custom"), creating=creating, typed=typed))


async def _deal_form(acc: Any, stored: Any, *, creating: bool, typed: Any = None) -> dict[str, Any]:
    inputs = await editing.inputs(acc, OPPORTUNITY, stored, creating=creating, typed=typed)
    return {"groups": customfields.arrange(OPPORTUNITY, [*DEAL_FORM, *[i.name for i in inputs]], creating=creating),
            "custom_inputs": {i.name: i for i in inputs}, "on_form": {*DEAL_FORM, *(i.name for i in inputs)},
            "required": {"name", *(customfields.layout(OPPORTUNITY).required if creating else ())}}


async def opportunity_action(request: Request) -> Response:
    acc = access(request)
    opp_id = int(request.path_params["id"])
    action = request.path_params["action"]
    form = await request.form()
    if action == "won":
        await pipeline.mark_won(acc, opp_id)
    elif action == "lost":
        await pipeline.mark_lost(acc, opp_id, form_str(form, "reason", required=True, max_length=300))
    elif action == "restore":
        await pipeline.restore(acc, opp_id)
    elif action == "stage":
        await pipeline.move(acc, opp_id, int(form_str(form, "stage", required=True)))
    elif action == "probability":
        raw = form_str(form, "probability")
        if raw and not (raw.isdigit() and 0 <= int(raw) <= 100):
            raise ValidationError({"probability": N_("must be a whole percentage 0-100")})
        await pipeline.set_probability(acc, opp_id, int(raw) if raw else None)
    else:
        raise ValidationError({"action": N_("unknown action")})
    return _see_other(f"/sales/opportunities/{opp_id}")


LEAD_STATES = ("new", "qualified", "disqualified")


async def lead_list(request: Request) -> Response:
    """Leads with a search (name, company, contact, e-mail, phone), filters (state, source, mine, custom fields)."""
    acc = access(request)
    params = request.query_params
    q = " ".join(params.get("q", "").split())[:100]
    state = params.get("state", "new")
    source = params.get("source", "")[:60]
    clauses: list[Combinable] = []
    if state in LEAD_STATES:
        clauses.append(Lead.state == state)
    if source:
        clauses.append(Lead.source == source)
    if params.get("mine") and acc.principal:
        clauses.append(Lead.owner == acc.principal.user_id)
    if q:
        text: Combinable = (contains(Lead.name, q) | contains(Lead.company_name, q) | contains(Lead.contact_name, q)
                            | contains(Lead.email, q))
        digits = "".join(c for c in q if c.isdigit())
        clauses.append(text | contains(Lead.phone, digits) if len(digits) >= 4 else text)
    custom = await editing.listing(acc, LEAD, params)
    clauses.extend(custom["where"])
    where: Combinable | None = None
    for clause in clauses:
        where = clause if where is None else where & clause
    page = await list_pages.sorted_page(
        acc, LEAD, Lead, (Lead.name, Lead.company_name, Lead.source, Lead.state, Lead.expected_revenue,
                          Lead.currency, Lead.owner.name, Lead.created_at, Lead.custom),
        where=where, params=params, sortable=LEAD_SORTS)
    rows = page.rows
    sources = [r["source"] for r in await (await acc.select(Lead, LEAD, Lead.source, where=Lead.source != "")
                                           ).distinct().order_by(Lead.source).limit(100)]
    return await render(request, "crm_sales/lead_list.html", rows=editing.cells(acc, LEAD, custom["listed"], rows),
                  listed=custom["listed"], custom_filters=custom["filters"], custom_values=custom["values"],
                  q=q, state=state, source=source, sources=sources, mine=bool(params.get("mine")),
                  states=LEAD_STATES, can_create=acc.can(LEAD, "create"), sort=page.sort,
                  custom_sorts=list_pages.sortable_custom(acc, LEAD), next=list_pages.next_url(params, page.next))


def _form_values(form: Any, names: tuple[str, ...], *, creating: bool) -> dict[str, Any]:
    """A form's built-in fields as the write path takes them: an empty amount is none (0), an empty date none;
    on create, an empty field is left to its default."""
    values: dict[str, Any] = {}
    for name in names:
        if name not in form:
            continue
        value = form_str(form, name, max_length=300)
        if value == "" and (creating or name in ("expected_revenue", "expected_close")):
            if not creating:
                values[name] = "0" if name == "expected_revenue" else None
            continue
        values[name] = value
    return values


def _form_errors(exc: ValidationError | Conflict) -> dict[str, str]:
    if isinstance(exc, ValidationError) and exc.fields:
        return dict(exc.fields)
    return {getattr(exc, "field", None) or "": exc.message}


LEAD_FORM = tuple(f for f in leads.FIELDS if f != "currency")


async def lead_form(request: Request) -> Response:
    """A lead's create (``/sales/leads/new``) or edit form: the layout's sections and custom fields; a refused
    post comes back with what was typed and the reason next to each field."""
    run = await _form_run(request, LEAD, Lead, LEAD_FORM, "/sales/leads")
    if isinstance(run, Response):
        return run
    acc, lead_id, row, errors, status, typed, creating = run
    inputs = await editing.inputs(acc, LEAD, row.get("custom"), creating=creating, typed=typed)
    groups = customfields.arrange(LEAD, [*LEAD_FORM, *[i.name for i in inputs]], creating=creating)
    return await render(request, "crm_sales/lead_form.html", status=status, row=row, lead_id=lead_id,
                  groups=groups, custom_inputs={i.name: i for i in inputs}, errors=errors,
                  on_form={*LEAD_FORM, *(i.name for i in inputs)},
                  required={"name", *(customfields.layout(LEAD).required if creating else ())})


async def lead_create(request: Request) -> Response:
    return await lead_form(request)


async def lead_import(request: Request) -> Response:
    acc = access(request)
    form = await request.form()
    upload: Any = form.get("file")
    if upload is None or isinstance(upload, str):
        raise ValidationError({"file": N_("choose a CSV file")})
    text = (await upload.read()).decode("utf-8-sig", errors="replace")
    created, errors = await leads.import_csv(acc, text)
    return await render(request, "crm_sales/lead_import.html", created=created, errors=errors)


async def lead_detail(request: Request) -> Response:
    acc = access(request)
    lead = acc.present(LEAD, await acc.get(Lead, LEAD, int(request.path_params["id"])))
    return await render(request, "crm_sales/lead_detail.html", lead=lead,
                  record_timeline=await feed.build(acc, LEAD, lead["id"], url=request.url.path),
                  can_update=acc.can(LEAD, "update"),
                  custom=await customfields.shown(acc, LEAD, lead.get("custom")))


async def lead_qualify(request: Request) -> Response:
    opp_id = await pipeline.qualify(access(request), int(request.path_params["id"]))
    return _see_other(f"/sales/opportunities/{opp_id}")


async def lead_disqualify(request: Request) -> Response:
    acc = access(request)
    form = await request.form()
    lead_id = int(request.path_params["id"])
    if form.get("reopen"):
        await leads.reopen(acc, lead_id)
    else:
        await leads.disqualify(acc, lead_id, form_str(form, "reason", required=True, max_length=300))
    return _see_other(f"/sales/leads/{lead_id}")


async def activity_list(request: Request) -> Response:
    acc = access(request)
    me = acc.principal.user_id if acc.principal else 0
    rows = await (await acc.select(Activity, ACTIVITY, Activity.id, Activity.kind, Activity.subject, Activity.due_at,
                                   Activity.done_at, Activity.opportunity, Activity.opportunity.name,
                                   where=(Activity.owner == me) & Activity.done_at.is_null())).order_by(
        Activity.due_at).limit(200)
    # An activity of mine may sit on a deal outside my record rules: keep the activity, hide the deal.
    linked = list({r["opportunity"] for r in rows if r["opportunity"]})
    visible = {r["id"] for r in await (await acc.select(Opportunity, OPPORTUNITY, Opportunity.id,
                                                         where=Opportunity.id.is_in(linked)))} if linked else set()
    for r in rows:
        if r["opportunity"] not in visible:
            r["opportunity"] = r["opportunity.name"] = None
    now = dt.datetime.now(dt.UTC)
    return await render(request, "crm_sales/activity_list.html", rows=rows, now=now, kinds=activities.KINDS)


async def activity_create(request: Request) -> Response:
    acc = access(request)
    form = await request.form()
    opp = form_str(form, "opportunity")
    await activities.create_activity(acc, {
        "kind": form_str(form, "kind"), "subject": form_str(form, "subject", required=True, max_length=200),
        "note": form_str(form, "note", max_length=5000), "due_at": form_str(form, "due_at", required=True),
        "remind_minutes": form_str(form, "remind_minutes") or 30, "opportunity": int(opp) if opp.isdigit() else None})
    return _see_other(f"/sales/opportunities/{opp}" if opp.isdigit() else "/sales/activities")


async def activity_done(request: Request) -> Response:
    await activities.mark_done(access(request), int(request.path_params["id"]))
    return _see_other("/sales/activities")


async def forecast_page(request: Request) -> Response:
    result = await forecast.forecast(access(request), group_by=request.query_params.get("by", "owner"))
    totals: dict[str, dict[str, Decimal]] = {}
    for (_, month, currency), cell in result.cells.items():
        t = totals.setdefault(f"{month} {currency}", {"weighted": Decimal(0), "won": Decimal(0)})
        t["weighted"] += cell.weighted
        t["won"] += cell.won
    return await render(request, "crm_sales/forecast.html", forecast=result, totals=totals)


async def forecast_json(request: Request) -> Response:
    result = await forecast.forecast(access(request), group_by=request.query_params.get("by", "owner"))
    return JSONResponse(result.as_json())


async def model_explain(request: Request) -> Response:
    """The scoring model in numbers (what the learned probabilities rest on)."""
    access(request)
    model = await win.load()
    return JSONResponse({"trained": model is not None, "won": model.n_won if model else 0,
                         "lost": model.n_lost if model else 0})


def _routes() -> list[BaseRoute]:
    from crm_sales import views_quotes

    return [
        Route("/", board, name="board"),
        Route("/opportunities", opportunity_list, name="opportunity_list"),
        Route("/opportunities/new", opportunity_form, methods=["GET", "POST"], name="opportunity_new"),
        Route("/opportunities/{id:int}", opportunity_detail, name="opportunity_detail"),
        Route("/opportunities/{id:int}/edit", opportunity_form, methods=["GET", "POST"], name="opportunity_edit"),
        Route("/opportunities/{id:int}/move", opportunity_move, methods=["POST"], name="opportunity_move"),
        Route("/opportunities/{id:int}/{action:str}", opportunity_action, methods=["POST"],
              name="opportunity_action"),
        Route("/leads", lead_list, name="lead_list"),
        Route("/leads", lead_create, methods=["POST"], name="lead_create"),
        Route("/leads/new", lead_form, methods=["GET", "POST"], name="lead_new"),
        Route("/leads/import", lead_import, methods=["POST"], name="lead_import"),
        Route("/leads/{id:int}", lead_detail, name="lead_detail"),
        Route("/leads/{id:int}/edit", lead_form, methods=["GET", "POST"], name="lead_edit"),
        Route("/leads/{id:int}/qualify", lead_qualify, methods=["POST"], name="lead_qualify"),
        Route("/leads/{id:int}/disqualify", lead_disqualify, methods=["POST"], name="lead_disqualify"),
        Route("/activities", activity_list, name="activity_list"),
        Route("/activities", activity_create, methods=["POST"], name="activity_create"),
        Route("/activities/{id:int}/done", activity_done, methods=["POST"], name="activity_done"),
        Route("/forecast", forecast_page, name="forecast"),
        Route("/forecast.json", forecast_json, name="forecast_json"),
        Route("/scoring.json", model_explain, name="model_explain"),
        *views_quotes.ROUTES,
    ]


ROUTES: list[BaseRoute] = _routes()
