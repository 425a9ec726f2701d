"""The JSON API of crm_marketing (``core.api.Resource``): segments and campaigns.

The kernel does paging, 409 on stale versions, Idempotency-Key replay, OpenAPI and auditing. Conditions and
templates are checked as the pages check them (422 naming the field, with the template's line). Named actions:
``segments/{id}/build`` (rebuild the members now) and ``campaigns/{id}/send``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.requests import Request

from core.api import Resource
from core.errors import ValidationError
from core.i18n import N_
from core.openapi import decimal_text
from core.security.access import Access
from crm_marketing import rfm_resources
from crm_marketing.manifest import CAMPAIGN, FORM, JOURNEY, SEGMENT
from crm_marketing.models import Campaign, CaptureForm, Journey, MarketingEvent, Segment

TEXTS = ("subject_en", "body_en", "subject_zh", "body_zh")
FORM_FIELDS = ("name", "title_en", "title_zh", "fields", "tags", "segment", "thanks_en", "thanks_zh", "creates_lead",
               "is_active")
AB = ("utm_campaign", "subject_b_en", "subject_b_zh", "ab_share", "ab_wait_hours")  # = ab_test.FIELDS


def _caller() -> Access | None:
    """The API caller's rights (the kernel's validate hook gets no Access): a condition on a field they see
    masked or hidden is refused here as on the pages, else the API would let them probe its values."""
    from core.security import context

    who = context.principal()
    return Access(who) if who is not None else None


async def _validate_segment(values: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    from crm_marketing import segments

    if "condition" in values:
        await segments.parse(values["condition"], _caller())
    return values


async def _build(request: Request, acc: Access, record_id: int) -> Any:
    from crm_marketing import segments

    await acc.get(Segment, SEGMENT, record_id, action="update")
    return {"id": record_id, **await segments.build(record_id)}


async def _validate_campaign(values: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    from crm_marketing import personalization

    if before is not None and before.get("state") != "draft" and set(values) - {"cost"}:
        raise ValidationError({sorted(set(values) - {"cost"})[0]: N_("a sent campaign keeps what it was sent with")})
    for key in TEXTS:
        if key in values:
            personalization.check(str(values[key] or ""), key)
    if set(values) & set(AB):
        from crm_marketing import ab_test

        checked = ab_test.check({**(before or {}), **values})
        values.update({k: checked[k] for k in AB if k in values})
    if "cost" in values:
        try:
            cost = Decimal(str(values["cost"]))
        except InvalidOperation:
            raise ValidationError({"cost": N_("must be a number")}) from None
        if not cost.is_finite() or cost < 0 or cost >= Decimal("1e12"):
            raise ValidationError({"cost": N_("must be a number")})
        values["cost"] = cost.quantize(Decimal("0.01"))
        if before is not None:  # the update runs in this transaction: the ROI dataset's rows carry the new cost
            from crm_marketing import returns

            await returns.set_cost(int(before["id"]), values["cost"])
    return values


async def _send(request: Request, acc: Access, record_id: int) -> Any:
    from crm_marketing import campaigns

    return {"id": record_id, "recipients": await campaigns.send(acc, record_id)}


async def _validate_journey(values: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    from crm_marketing import journeys

    if "trigger" in values:
        values["trigger"] = await journeys.check_trigger(values["trigger"])
    if "steps" in values:
        values["steps"] = await journeys.check_steps(values["steps"], _caller())
    elif before is None:
        raise ValidationError({"steps": N_("is required")})
    return values


async def _validate_form(values: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    """Checked as the form editor checks it (``forms.check``), over the stored values for a partial update."""
    from crm_marketing import forms

    merged = {**(before or {}), **values}
    for key in ("fields", "tags"):
        merged[key] = forms.loaded(merged.get(key), [])
    checked = await forms.check(merged)
    return {k: checked[k] for k in values if k in checked}


async def _validate_event(values: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    from crm_marketing import journeys

    if before is not None:
        raise ValidationError({"name": N_("an event is not changed once received")})
    name = values.get("name")
    if not isinstance(name, str) or not journeys.event_name_ok(name):
        raise ValidationError({"name": N_("must be a name of letters, digits, '_', '.' or '-'")})
    values["at"] = dt.datetime.now(dt.UTC)
    return values


async def _roi(request: Request, acc: Access, record_id: int) -> Any:
    """The campaign's figures (as its ROI page shows them) with leads, won deals and revenue by last and first
    touch; read-only, through the caller's rights."""
    from crm_marketing import attribution, roi

    await acc.get(Campaign, CAMPAIGN, record_id)
    figures = await roi.figures(record_id, acc)
    credits = await attribution.for_campaign(acc, record_id)
    return {"id": record_id, **figures, "attribution": attribution.as_json(credits)}


def resources() -> list[Resource]:
    return [
        Resource(
            path="/marketing/segments",
            model=SEGMENT,
            table=Segment,
            summary="Segments and static lists",
            fields=("name", "is_static", "condition", "member_count", "built_at", "build_ms", "created_at", "version"),
            writable=("name", "is_static", "condition"),
            required=("name",),
            filters=("is_static",),
            sortable=("id", "name"),
            validate=_validate_segment,
            actions={"build": _build},
        ),
        Resource(
            path="/marketing/campaigns",
            model=CAMPAIGN,
            table=Campaign,
            summary="E-mail campaigns",
            fields=("name", "segment", *TEXTS, *AB, "ab_state", "ab_winner", "state", "cost", "currency", "sent_at",
                    "created_at", "version"),
            writable=("name", "segment", *TEXTS, *AB, "cost"),
            required=("name",),
            filters=("state", "segment"),
            sortable=("id", "name"),
            validate=_validate_campaign,
            actions={"send": _send, "roi": _roi},
            field_schemas={"cost": decimal_text(12, 2), "ab_share": {"type": "integer", "minimum": 0, "maximum": 90},
                           "ab_wait_hours": {"type": "integer", "minimum": 0, "maximum": 336}},
        ),
        Resource(
            path="/marketing/journeys",
            model=JOURNEY,
            table=Journey,
            summary="Nurture journeys: a trigger, then steps (wait, condition, action)",
            fields=("name", "trigger", "steps", "allow_reentry", "is_active", "created_at", "version"),
            writable=("name", "trigger", "steps", "allow_reentry", "is_active"),
            required=("name", "trigger"),
            filters=("is_active",),
            sortable=("id", "name"),
            validate=_validate_journey,
        ),
        Resource(
            path="/marketing/forms",
            model=FORM,
            table=CaptureForm,
            summary="Capture forms: asked fields, tags, static list, lead and thank-you text",
            fields=(*FORM_FIELDS, "created_at", "version"),
            writable=FORM_FIELDS,
            required=("name", "fields"),
            filters=("is_active",),
            sortable=("id", "name"),
            validate=_validate_form,
        ),
        Resource(
            path="/marketing/events",
            model=JOURNEY,
            table=MarketingEvent,
            summary="Custom events about a person (e.g. viewed_product_page), counted by journeys",
            fields=("person", "name", "detail", "at"),
            writable=("person", "name", "detail"),
            required=("person", "name"),
            filters=("person", "name"),
            sortable=("id",),
            validate=_validate_event,
            field_schemas={"name": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,100}$"}},
        ),
        *rfm_resources.resources(),  # value tiers (a settings page too) and RFM rebuilds
    ]
