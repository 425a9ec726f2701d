"""crm_sales for the rule engine (``core.automation``): leads, opportunities and activities may be automated, and
rules may create an activity. The addon's own write paths (stage moves, qualification, activities) report their
changes with ``core.automation.record_changed``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from core.hooks import AutomationAction, AutomationContext, AutomationModel, IdleSource, hookimpl
from core.i18n import N_

OPPORTUNITY_FIELDS = ("name", "person", "stage", "state", "expected_revenue", "currency", "probability",
                      "expected_close", "source", "region", "industry", "products_of_interest", "tags", "lost_reason",
                      "owner", "team", "created_at", "stage_entered_at", "closed_at")
LEAD_FIELDS = ("name", "contact_name", "company_name", "email", "phone", "language", "region", "industry", "source",
               "product_interest", "utm_source", "utm_medium", "utm_campaign", "expected_revenue", "currency",
               "state", "owner", "team", "created_at", "assigned_at")
ACTIVITY_FIELDS = ("kind", "subject", "due_at", "done_at", "opportunity", "lead", "person", "owner", "created_at")
KINDS = ("call", "meeting", "email", "todo")


@hookimpl
def crm_automation_models() -> Sequence[AutomationModel]:
    from crm_contacts.api import PERSON_MODEL

    from crm_sales.manifest import ACTIVITY, LEAD, OPPORTUNITY
    from crm_sales.models import Activity, Lead, Opportunity

    touched = ("created_at", "done_at")
    return [
        AutomationModel(OPPORTUNITY, N_("Opportunities"), Opportunity, OPPORTUNITY_FIELDS,
                        writable=("probability", "expected_close", "source", "region", "industry",
                                  "products_of_interest"),
                        relations={"person": PERSON_MODEL}, tags="tags", url="/sales/opportunities/{id}",
                        idle=IdleSource(since="stage_entered_at", table=Activity, link="opportunity", times=touched),
                        choices={"state": ("open", "won", "lost")}),
        AutomationModel(LEAD, N_("Leads"), Lead, LEAD_FIELDS,
                        writable=("region", "industry", "source", "product_interest", "language"),
                        url="/sales/leads/{id}",
                        idle=IdleSource(since="created_at", table=Activity, link="lead", times=touched),
                        choices={"state": ("new", "qualified", "disqualified")}),
        AutomationModel(ACTIVITY, N_("Activities"), Activity, ACTIVITY_FIELDS,
                        relations={"opportunity": OPPORTUNITY, "person": PERSON_MODEL}, url="/sales/activities",
                        choices={"kind": KINDS}),
    ]


async def _check_activity(am: AutomationModel, params: Mapping[str, Any]) -> Mapping[str, Any]:
    from core.automation.actions import template_param
    from core.errors import ValidationError
    from core.values import integer

    unknown = sorted(set(params) - {"kind", "subject", "note", "due_in_hours"})
    if unknown:
        raise ValidationError({unknown[0]: "is not a parameter of this action (kind, subject, note, due_in_hours)"})
    kind = params.get("kind", "todo")
    if kind not in KINDS:
        raise ValidationError({"kind": N_("must be one of %(choices)s") % {"choices": ", ".join(KINDS)}})
    subject = template_param(params, "subject")
    if not subject.strip():
        raise ValidationError({"subject": N_("is required")})
    return {"kind": kind, "subject": subject, "note": template_param(params, "note"),
            "due_in_hours": integer(params.get("due_in_hours", 24), "due_in_hours", (0, 24 * 366))}


async def _create_activity(ctx: AutomationContext) -> str:
    """An activity on the record (a deal, a lead or a person), owned by the record's owner, due in N hours.
    Runs inside the run's transaction: once per rule and event."""
    from crm_contacts.api import PERSON_MODEL

    from core.automation import record_changed
    from core.automation.actions import render
    from core.security import audit
    from crm_sales.manifest import ACTIVITY, LEAD, OPPORTUNITY
    from crm_sales.models import Activity, Opportunity

    link = {OPPORTUNITY: "opportunity", LEAD: "lead", PERSON_MODEL: "person"}[ctx.model]
    record = ctx.record
    data: dict[str, Any] = {
        "kind": ctx.params.get("kind", "todo"), "subject": render(str(ctx.params["subject"]), ctx).strip()[:200],
        "note": render(str(ctx.params.get("note") or ""), ctx),
        "due_at": dt.datetime.now(dt.UTC) + dt.timedelta(hours=int(ctx.params.get("due_in_hours") or 0)),
        link: ctx.record_id, "owner": record.get("owner"), "team": record.get("team")}
    if ctx.model == OPPORTUNITY:
        data["person"] = record.get("person")
    row = Activity(_data={Activity._meta.get_column_by_name(k): v for k, v in data.items()})
    await row.save()
    if ctx.model == OPPORTUNITY:  # the deal is alive again: a later stall may alert anew
        await Opportunity.update({Opportunity.stall_alerted_at: None}).where(Opportunity.id == ctx.record_id)
    await audit.record("create", model=ACTIVITY, record_id=row.id, changes=audit.diff(None, data),
                       detail=f"automation rule {ctx.rule_id}: {ctx.rule_name}"[:2000],
                       login=f"automation #{ctx.rule_id}")
    await record_changed(ACTIVITY, int(row.id), None, data)
    return f"activity {row.id}: {data['subject']}"


LEAD_PARAMS = ("name", "contact_name", "company_name", "email", "phone", "language", "source", "utm_source",
               "utm_medium", "utm_campaign")


async def _check_lead(am: AutomationModel, params: Mapping[str, Any]) -> Mapping[str, Any]:
    from core.errors import ValidationError

    unknown = sorted(set(params) - set(LEAD_PARAMS))
    if unknown:
        raise ValidationError({unknown[0]: "is not a parameter of this action (" + ", ".join(LEAD_PARAMS) + ")"})
    return {k: str(params.get(k) or "") for k in LEAD_PARAMS}


async def _create_lead(ctx: AutomationContext) -> str:
    """A lead for the person (e.g. from a marketing capture form: its values and UTM codes), checked and placed
    like a typed one. The values are taken as given, never rendered as templates (they may come from the public).
    Returns ``lead <id>``, the line callers read the new lead's id from."""
    from crm_sales.api import create_lead

    values = {k: str(ctx.params.get(k) or "") for k in LEAD_PARAMS}
    if not values["name"]:
        values["name"] = str(ctx.record.get("name") or f"#{ctx.record_id}")[:200]
    lead_id = await create_lead(**values)
    return f"lead {lead_id}"


@hookimpl
def crm_automation_actions() -> Sequence[AutomationAction]:
    from crm_contacts.api import PERSON_MODEL

    from crm_sales.manifest import LEAD, OPPORTUNITY

    return [AutomationAction("crm_sales.create_activity", N_("Create an activity"), _create_activity,
                             check=_check_activity, models=(OPPORTUNITY, LEAD, PERSON_MODEL)),
            AutomationAction("crm_sales.create_lead", N_("Create a lead"), _create_lead, check=_check_lead,
                             models=(PERSON_MODEL,))]
