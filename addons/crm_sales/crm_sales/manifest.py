"""crm_sales: the sales process engine. This module is the addon's table of contents (cheap to import)."""

from __future__ import annotations

from core.addon import Action, Addon, Every, Grant, Menu

LEAD = "crm_sales.lead"
OPPORTUNITY = "crm_sales.opportunity"
ACTIVITY = "crm_sales.activity"
STAGE = "crm_sales.stage"
RULE = "crm_sales.assignment_rule"
PRODUCT = "crm_sales.product"
PRICE_LIST = "crm_sales.price_list"
QUOTE = "crm_sales.quote"
ORDER = "crm_sales.order"
NOTIFICATION = "crm_sales.notification"

_CRUD: tuple[Action, ...] = ("create", "read", "update", "delete", "export")
_WORK = (LEAD, OPPORTUNITY, ACTIVITY, QUOTE)  # the records a rep owns and works on


def _grants() -> tuple[Grant, ...]:
    out: list[Grant] = []
    for model in _WORK:
        # roles are crm_contacts' (sales_rep, sales_manager, finance): one set of roles for the whole suite
        out.append(Grant("sales_rep", model, ("create", "read", "update"), scope="own"))
        out.append(Grant("sales_manager", model, _CRUD, scope="team"))
        out.append(Grant("sales_manager", model, _CRUD, scope="subordinates"))
    out += [
        # orders are created by acceptance, never typed in: reps read theirs, managers may cancel
        Grant("sales_rep", ORDER, ("read",), scope="own"),
        Grant("sales_manager", ORDER, ("read", "update", "export"), scope="team"),
        Grant("sales_manager", ORDER, ("read", "update", "export"), scope="subordinates"),
        Grant("sales_manager", RULE, _CRUD),
        Grant("sales_manager", STAGE, _CRUD),
        Grant("sales_manager", PRODUCT, _CRUD),
        Grant("sales_manager", PRICE_LIST, _CRUD),
        Grant("sales_rep", RULE, ("read",)),
        Grant("sales_rep", STAGE, ("read",)),
        Grant("sales_rep", PRODUCT, ("read",)),
        Grant("sales_rep", PRICE_LIST, ("read",)),
        Grant("sales_rep", NOTIFICATION, ("read", "update"), scope="own"),
        Grant("readonly", PRODUCT, ("read",)),
        Grant("readonly", STAGE, ("read",)),
    ]
    for model in (OPPORTUNITY, QUOTE, ORDER, PRODUCT, PRICE_LIST, STAGE):
        out.append(Grant("finance", model, ("read", "export")))
    return tuple(out)


ADDON = Addon(
    name="crm_sales", version="1.0.0", depends=("crm_contacts",),
    label="Sales",
    summary="Leads, pipeline, assignment, activities, quotes as PDF, orders, scoring and forecast",
    models="crm_sales.models", migrations="crm_sales.migrations",
    routes="crm_sales.views:ROUTES", mount="/sales",
    templates="crm_sales:templates", static="crm_sales:static",
    actors="crm_sales.actors",
    hooks=("crm_sales.hooks", "crm_sales.automation", "crm_sales.approvals", "crm_sales.portal"),
    hookspecs="crm_sales.hookspecs",
    schedules=(
        Every(minutes=5, actor="crm_sales.send_activity_reminders"),
        Every(minutes=15, actor="crm_sales.flag_stalled_deals"),
        Every(minutes=10, actor="crm_sales.assign_pending_leads"),
        Every(hours=24, actor="crm_sales.train_win_model"),
    ),
    permissions=_grants(),
    menus=(
        Menu("Pipeline", "/sales/", model=OPPORTUNITY, order=20),
        Menu("Leads", "/sales/leads", model=LEAD, order=21),
        Menu("My activities", "/sales/activities", model=ACTIVITY, order=22),
        Menu("Quotes", "/sales/quotes", model=QUOTE, order=23),
        Menu("Products", "/sales/products", model=PRODUCT, order=24),
        Menu("Forecast", "/sales/forecast", model=OPPORTUNITY, order=25),
    ),
    data=("data/crm_sales_pipeline_stage.csv",),
    demo=(
        "demo/crm_sales_product.csv",
        "demo/crm_sales_opportunity.csv",
        "demo/crm_sales_stage_history.csv",
        "demo/crm_sales_lead.csv",
        "demo/crm_sales_activity.csv",
        "demo/crm_sales_quote.csv",
        "demo/crm_sales_quote_line.csv",
        # the accepted quote of the demo portal customer (Daniel Brown) became their order
        "demo/crm_sales_order.csv", "demo/crm_sales_order_line.csv",
        "demo/core_automation_rule.csv",  # a deal 48 h without activity tells its owner
    ),
)
