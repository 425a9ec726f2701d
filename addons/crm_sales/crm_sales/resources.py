"""The JSON API of crm_sales (``core.api.Resource``): leads, opportunities, activities, products, quotes, orders.

The kernel does paging, 409 on stale versions, Idempotency-Key replay, OpenAPI and auditing; creation goes
through the same services as the web forms (assignment rules run on API-created leads). Named actions:
``leads/{id}/qualify``; ``opportunities/{id}/move`` ``{"stage": id, "version": n, "lost_reason": ""}``,
``…/won``, ``…/lost`` ``{"reason"}``, ``…/restore``, ``…/probability`` ``{"value": 0-100 | null}``;
``activities/{id}/done``; ``quotes/{id}/send``, ``…/accept`` ``{"name"}``, ``…/revise``, ``…/lines``
``{"lines": [...]}``; ``orders/{id}/cancel``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from starlette.requests import Request

from core.api import Resource, json_body
from core.errors import PermissionDenied, ValidationError
from core.i18n import N_
from core.openapi import ID, NON_BLANK, decimal_text
from core.security.access import Access
from core.values import finite_decimal
from crm_sales.manifest import ACTIVITY, LEAD, OPPORTUNITY, ORDER, PRICE_LIST, PRODUCT, QUOTE, RULE, STAGE

OWNED = ("owner", "team", "is_archived", "version")

# JSON Schema of what the validators below accept, for the OpenAPI document
MONEY = decimal_text(10, 2)  # never negative
RATE = {"type": "string", "pattern": "^(0(\\.[0-9]{1,4})?|1(\\.0{1,4})?)$"}  # a fraction: 0.13 for 13 %
# (sizes so that 50 lines of the largest stay within a total's Numeric(16, 2))
LINES = {"type": "array", "maxItems": 50, "items": {"type": "object", "properties": {
    "product": ID, "code": {"type": "string", "maxLength": 60}, "description": NON_BLANK,
    "quantity": decimal_text(4, 3), "unit": {"type": "string", "maxLength": 20},
    "unit_price": decimal_text(8, 2), "discount_percent": decimal_text(2, 2), "tax_rate": RATE}}}
MOVE_BODY = {"type": "object", "required": ["stage"], "properties": {
    "stage": ID, "version": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
    "lost_reason": {"type": "string", "maxLength": 500}}}
LOST_BODY = {"type": "object", "required": ["reason"], "properties": {"reason": NON_BLANK}}
DISQUALIFY_BODY = LOST_BODY
PROBABILITY_BODY = {"type": "object", "required": ["value"],
                    "properties": {"value": {"type": ["integer", "null"], "minimum": 0, "maximum": 100}}}
ACCEPT_BODY = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 200}}}


async def _body(request: Request) -> dict[str, Any]:
    return await json_body(request, optional=True)


#: the settings pages' field labels (the JSON API keeps the field names)
SETTINGS_LABELS = {
    "id": "#", "code": N_("Code"), "name": N_("Name"), "name_zh": N_("Chinese name"), "unit": N_("Unit"),
    "list_price": N_("List price"), "currency": N_("Currency"), "tax_rate": N_("Tax rate"), "is_active": N_("Active"),
    "external_ref": N_("ERP reference"), "version": N_("Version"), "key": N_("Key"), "team": N_("Team"),
    "sequence": N_("Order"), "probability": N_("Win probability (%)"), "stall_hours": N_("Stalled after (hours)"),
    "is_won": N_("Won stage"), "is_lost": N_("Lost stage"), "region": N_("Region"), "industry": N_("Industry"),
    "source": N_("Source"), "product": N_("Product"), "min_value": N_("Minimum value"),
    "max_value": N_("Maximum value"), "strategy": N_("How to assign"), "rule": N_("Rule"), "user": N_("User"),
    "capacity": N_("Capacity"), "last_assigned_at": N_("Last assigned"), "customer_group": N_("Customer group"),
    "valid_from": N_("Valid from"), "valid_to": N_("Valid until"), "price_list": N_("Price list"),
    "price": N_("Price"), "min_quantity": N_("Minimum quantity"),
}

def _money(values: dict[str, Any], *names: str) -> dict[str, Any]:
    for name in names:
        if name in values and values[name] is not None:
            values[name] = finite_decimal(values[name], name)
            if values[name] < 0:
                raise ValidationError({name: "must not be negative"})
    return values


async def _create_lead(acc: Access, values: dict[str, Any]) -> int:
    from crm_sales import leads

    return await leads.create_lead(acc, values)


async def _validate_lead(values: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    from crm_sales import leads

    return leads.clean(values, creating=before is None)


async def _disqualify(request: Request, acc: Access, record_id: int) -> Any:
    from crm_sales import leads

    body = await _body(request)
    await leads.disqualify(acc, record_id, str(body.get("reason") or ""))
    return {"id": record_id, "state": "disqualified"}


async def _qualify(request: Request, acc: Access, record_id: int) -> Any:
    from crm_sales import pipeline

    return {"opportunity_id": await pipeline.qualify(acc, record_id)}


async def _create_opportunity(acc: Access, values: dict[str, Any]) -> int:
    from crm_sales import pipeline

    owner = acc.principal.user_id if acc.principal else None
    team = min(acc.principal.team_ids) if acc.principal and acc.principal.team_ids else None
    return await pipeline.create_opportunity({"owner": owner, "team": team, **_money(values, "expected_revenue")},
                                             user_id=owner)


async def _validate_opportunity(values: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    if "probability" in values:
        raise ValidationError({"probability": N_("use the probability action (it records a manual override)")})
    return _money(values, "expected_revenue")


async def _move(request: Request, acc: Access, record_id: int) -> Any:
    from crm_sales import pipeline

    body = await _body(request)
    if not isinstance(body.get("stage"), int):
        raise ValidationError({"stage": N_("must be a stage id")})
    return await pipeline.move(acc, record_id, body["stage"], expected_version=body.get("version"),
                               lost_reason=str(body.get("lost_reason") or ""))


async def _won(request: Request, acc: Access, record_id: int) -> Any:
    from crm_sales import pipeline

    return await pipeline.mark_won(acc, record_id)


async def _lost(request: Request, acc: Access, record_id: int) -> Any:
    from crm_sales import pipeline

    return await pipeline.mark_lost(acc, record_id, str((await _body(request)).get("reason") or ""))


async def _restore(request: Request, acc: Access, record_id: int) -> Any:
    from crm_sales import pipeline

    return await pipeline.restore(acc, record_id)


async def _probability(request: Request, acc: Access, record_id: int) -> Any:
    from crm_sales import pipeline

    value = (await _body(request)).get("value")
    if value is not None and (not isinstance(value, int) or not 0 <= value <= 100):
        raise ValidationError({"value": N_("must be a whole percentage 0-100, or null to follow the model")})
    return await pipeline.set_probability(acc, record_id, value)


async def _create_activity(acc: Access, values: dict[str, Any]) -> int:
    from crm_sales import activities

    return await activities.create_activity(acc, values)


async def _done(request: Request, acc: Access, record_id: int) -> Any:
    from crm_sales import activities

    await activities.mark_done(acc, record_id)
    return {"id": record_id, "done": True}


async def _validate_product(values: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    _money(values, "list_price", "tax_rate")
    if values.get("tax_rate") is not None and values["tax_rate"] > 1:
        raise ValidationError({"tax_rate": N_("must be a fraction (0.13 for 13 %)")})
    return values


async def _create_quote(acc: Access, values: dict[str, Any]) -> int:
    from crm_sales import quotes

    opp = values.pop("opportunity", None)
    if not isinstance(opp, int):
        raise ValidationError({"opportunity": N_("must be an opportunity id")})
    lines = values.pop("lines", None) or []
    if not isinstance(lines, list) or not all(isinstance(x, dict) for x in lines):
        raise ValidationError({"lines": N_("must be a list of objects")})
    return await quotes.create_quote(acc, opp, lines, **values)


async def _validate_quote(values: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    if before is not None:
        if before["state"] != "draft":
            raise ValidationError({"state": N_("only a draft can be edited: revise the quote instead")})
        for name in ("lines", "opportunity"):
            if name in values:
                raise ValidationError({name: "cannot be changed here (use the lines action)"})
        if "discount_percent" in values:  # the lines that follow the quote's discount take the new one
            from crm_sales import quotes

            new = values["discount_percent"] = quotes.quote_discount(values["discount_percent"])
            old = Decimal(str(before["discount_percent"] or 0))
            lines = [{k: ln[k] for k in quotes.LINE_FIELDS} for ln in await quotes.lines_of(before["id"])]
            await quotes.set_lines({**before, "discount_percent": new}, quotes.follow_discount(lines, new, old))
    return values


async def _send(request: Request, acc: Access, record_id: int) -> Any:
    from crm_sales import acceptance

    return await acceptance.send(acc, record_id)


async def _accept(request: Request, acc: Access, record_id: int) -> Any:
    from crm_sales import acceptance

    name = str((await _body(request)).get("name") or "")
    return {"order_id": await acceptance.accept_as_user(acc, record_id, name)}


async def _revise(request: Request, acc: Access, record_id: int) -> Any:
    from crm_sales import quotes

    return {"quote_id": await quotes.revise(acc, record_id)}


async def _lines(request: Request, acc: Access, record_id: int) -> Any:
    from crm_sales import quotes

    lines = (await _body(request)).get("lines")
    if not isinstance(lines, list):
        raise ValidationError({"lines": N_("must be a list of objects")})
    await quotes.update_draft(acc, record_id, lines)
    return {"id": record_id, "lines": await quotes.lines_of(record_id)}


async def _validate_rule(values: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    if values.get("strategy", "round_robin") not in ("round_robin", "least_loaded"):
        raise ValidationError({"strategy": N_("must be round_robin or least_loaded")})
    return _money(values, "min_value", "max_value")


async def _validate_item(values: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    return _money(values, "price", "min_quantity")


async def _no_create(acc: Access, values: dict[str, Any]) -> int:
    raise PermissionDenied(N_("orders are created by accepting a quote"))


async def _cancel(request: Request, acc: Access, record_id: int) -> Any:
    from crm_sales import acceptance

    await acceptance.cancel_order(acc, record_id)
    return {"id": record_id, "state": "cancelled"}


def resources() -> list[Resource]:
    from crm_sales import leads
    from crm_sales.models import (
        Activity,
        AssignmentMember,
        AssignmentRule,
        Lead,
        Opportunity,
        Order,
        PipelineStage,
        PriceList,
        PriceListItem,
        Product,
        Quote,
    )

    return [
        Resource(path="/sales/leads", model=LEAD, table=Lead, summary="Leads (assignment rules run on create)",
                 fields=(*leads.FIELDS, "state", "disqualified_reason", "opportunity_id", "assignment_rule_id",
                         "assigned_at", "custom", "created_at", *OWNED),
                 writable=(*leads.FIELDS, "custom"), required=("name",), filters=("state", "owner", "source", "team"),
                 sortable=("id", "created_at", "name"), create=_create_lead, archive_on_delete=True, custom="custom",
                 validate=_validate_lead, actions={"qualify": _qualify, "disqualify": _disqualify},
                 action_bodies={"disqualify": DISQUALIFY_BODY}),
        Resource(path="/sales/opportunities", model=OPPORTUNITY, table=Opportunity, summary="Opportunities",
                 fields=("name", "person", "lead_id", "stage", "stage_entered_at", "state", "expected_revenue",
                         "currency", "probability", "is_probability_manual", "score_explanation",
                         "expected_close", "source", "region", "industry", "products_of_interest", "tags",
                         "lost_reason", "closed_at", "custom", "created_at", *OWNED),
                 writable=("name", "person", "expected_revenue", "currency", "expected_close", "source", "region",
                           "industry", "products_of_interest", "tags", "custom"), custom="custom",
                 required=("name",), filters=("state", "stage", "owner", "team"),
                 sortable=("id", "expected_close", "created_at"), validate=_validate_opportunity,
                 create=_create_opportunity, archive_on_delete=True,
                 actions={"move": _move, "won": _won, "lost": _lost, "restore": _restore,
                          "probability": _probability},
                 field_schemas={"expected_revenue": MONEY},
                 action_bodies={"move": MOVE_BODY, "lost": LOST_BODY, "probability": PROBABILITY_BODY}),
        Resource(path="/sales/activities", model=ACTIVITY, table=Activity, summary="Activities",
                 fields=("kind", "subject", "note", "due_at", "remind_minutes", "reminded_at", "done_at", "lead",
                         "opportunity", "person", "created_at", *OWNED),
                 writable=("kind", "subject", "note", "due_at", "remind_minutes", "lead", "opportunity", "person"),
                 required=("subject", "due_at"), filters=("kind", "owner", "opportunity", "lead"),
                 sortable=("id", "due_at"), create=_create_activity, archive_on_delete=True,
                 actions={"done": _done}),
        Resource(path="/sales/products", settings=N_("Sales"), model=PRODUCT, table=Product, summary=N_("Products"),
                 labels=SETTINGS_LABELS,
                 fields=("code", "name", "name_zh", "unit", "list_price", "currency", "tax_rate", "is_active",
                         "external_ref", "version"),
                 writable=("code", "name", "name_zh", "unit", "list_price", "currency", "tax_rate", "is_active",
                           "external_ref"),
                 required=("code", "name"), filters=("code", "is_active", "external_ref"),
                 sortable=("id", "code"), validate=_validate_product,
                 field_schemas={"list_price": MONEY, "tax_rate": RATE}),
        Resource(path="/sales/quotes", model=QUOTE, table=Quote, summary="Quotes (actions: send, accept, revise)",
                 fields=("number", "revision", "revision_of", "opportunity", "state", "is_superseded", "currency",
                         "language", "customer_group", "quote_date", "valid_until", "terms", "notes", "untaxed", "tax",
                         "total", "discount_percent", "email_state",
                         "sent_at", "decided_at", "decided_by", "custom", "created_at", *OWNED),
                 writable=("opportunity", "lines", "currency", "language", "customer_group", "valid_until", "terms",
                           "notes", "discount_percent", "custom"), custom="custom",
                 required=("opportunity",), filters=("state", "opportunity", "number", "owner"),
                 sortable=("id", "created_at"), validate=_validate_quote, create=_create_quote,
                 archive_on_delete=True,
                 actions={"send": _send, "accept": _accept, "revise": _revise, "lines": _lines},
                 field_schemas={"lines": LINES},
                 action_bodies={"accept": ACCEPT_BODY, "lines": {"type": "object", "required": ["lines"],
                                                                 "properties": {"lines": LINES}}}),
        # configuration: per-team pipelines, assignment rules and their members, price lists
        Resource(path="/sales/stages", settings=N_("Sales"), model=STAGE, table=PipelineStage,
                 summary=N_("Pipeline stages (per team)"), labels=SETTINGS_LABELS,
                 fields=("key", "name", "name_zh", "team", "sequence", "probability", "stall_hours", "is_won",
                         "is_lost"),
                 writable=("key", "name", "name_zh", "team", "sequence", "probability", "stall_hours", "is_won",
                           "is_lost"),
                 required=("key", "name"), filters=("team", "key"), sortable=("id", "sequence")),
        Resource(path="/sales/assignment-rules", settings=N_("Sales"), model=RULE, table=AssignmentRule,
                 summary=N_("Lead assignment rules"), labels=SETTINGS_LABELS,
                 fields=("name", "sequence", "is_active", "region", "industry", "source", "product", "min_value",
                         "max_value", "strategy", "team"),
                 writable=("name", "sequence", "is_active", "region", "industry", "source", "product", "min_value",
                           "max_value", "strategy", "team"),
                 required=("name",), filters=("is_active", "team"), sortable=("id", "sequence"),
                 validate=_validate_rule, field_schemas={
                     "strategy": {"enum": ["round_robin", "least_loaded"]}, "min_value": MONEY, "max_value": MONEY}),
        Resource(path="/sales/assignment-members", settings=N_("Sales"), model=RULE, table=AssignmentMember,
                 summary=N_("Members of an assignment rule, with capacity"), labels=SETTINGS_LABELS,
                 fields=("rule", "user", "capacity", "last_assigned_at"),
                 writable=("rule", "user", "capacity"), required=("rule", "user"), filters=("rule", "user")),
        Resource(path="/sales/price-lists", settings=N_("Sales"), model=PRICE_LIST, table=PriceList,
                 summary=N_("Price lists"), labels=SETTINGS_LABELS,
                 fields=("name", "customer_group", "currency", "valid_from", "valid_to", "is_active", "version"),
                 writable=("name", "customer_group", "currency", "valid_from", "valid_to", "is_active"),
                 required=("name",), filters=("customer_group", "is_active")),
        Resource(path="/sales/price-list-items", settings=N_("Sales"), model=PRICE_LIST, table=PriceListItem,
                 summary=N_("Price list items"), labels=SETTINGS_LABELS,
                 fields=("price_list", "product", "price", "min_quantity"),
                 writable=("price_list", "product", "price", "min_quantity"),
                 required=("price_list", "product", "price"), filters=("price_list", "product"),
                 validate=_validate_item),
        Resource(path="/sales/orders", model=ORDER, table=Order, summary="Orders (created by accepting a quote)",
                 fields=("reference", "quote", "opportunity", "person", "state", "currency", "untaxed", "tax",
                         "total", "confirmed_at", "cancelled_at", *OWNED),
                 filters=("state", "reference", "owner", "opportunity"), sortable=("id", "confirmed_at"),
                 create=_no_create, actions={"cancel": _cancel}),
    ]
