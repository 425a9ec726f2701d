"""Pages of crm_marketing: campaigns (edit, preview, test send, send, ROI), segments (builder with a live count,
static lists) and the do-not-contact list. The public pages of the mails (unsubscribe, pixel, click) are in
``public.py``; both join ``ROUTES``. Every read and write goes through the kernel's access layer."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any

from crm_contacts.api import PERSON_MODEL
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from core import conditions, db
from core.errors import NotFound, PermissionDenied, ValidationError
from core.i18n import N_
from core.security import audit
from core.web import access, form_str, render
from crm_marketing import ab_test, attribution, campaigns, roi, segments
from crm_marketing.form_views import FORM_ROUTES
from crm_marketing.journey_views import JOURNEY_ROUTES
from crm_marketing.manifest import CAMPAIGN, SEGMENT, SUPPRESSION
from crm_marketing.models import Campaign, CampaignRecipient, Segment, SegmentMember, Suppression
from crm_marketing.public import PUBLIC_ROUTES
from crm_marketing.rfm_views import RFM_ROUTES

MEMBERS_SHOWN = 50
NEW_SEGMENT: dict[str, Any] = {
    "id": None,
    "name": "",
    "is_static": False,
    "condition": {},
    "member_count": 0,
    "built_at": None,
    "build_ms": None,
}
NEW_CAMPAIGN: dict[str, Any] = {
    "id": None,
    "name": "",
    "segment": None,
    "cost": None,
    **dict.fromkeys(("subject_en", "body_en", "subject_zh", "body_zh"), ""),
    **dict.fromkeys(("utm_campaign", "subject_b_en", "subject_b_zh"), ""),
    "ab_share": 0,
    "ab_wait_hours": 4,
}


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _id(request: Request) -> int:
    try:
        return int(request.path_params["id"])
    except (KeyError, ValueError):
        raise NotFound("not found") from None


def _int(value: Any, field: str) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        raise ValidationError({field: N_("must be a whole number")}) from None


# --- campaigns --------------------------------------------------------------------------------------------------


async def campaign_list(request: Request) -> Response:
    acc = access(request)
    await acc.require(CAMPAIGN)
    rows = (
        await (
            await acc.select(
                Campaign,
                CAMPAIGN,
                Campaign.id,
                Campaign.name,
                Campaign.state,
                Campaign.sent_at,
                Campaign.segment.name.as_alias("segment_name"),
            )
        )
        .order_by(Campaign.id, ascending=False)
        .limit(200)
    )
    return await render(request, "crm_marketing/campaign_list.html", rows=rows, may_create=acc.can(CAMPAIGN, "create"))


async def _segment_choices(acc: Any) -> list[dict[str, Any]]:
    if not acc.can(SEGMENT):
        return []
    return list(
        await (await acc.select(Segment, SEGMENT, Segment.id, Segment.name, Segment.member_count)).order_by(
            Segment.name
        )
    )


async def campaign_new(request: Request) -> Response:
    acc = access(request)
    await acc.require(CAMPAIGN, "create")
    return await render(
        request,
        "crm_marketing/campaign_form.html",
        c=dict(NEW_CAMPAIGN),
        errors={},
        segments=await _segment_choices(acc),
    )


async def campaign_save(request: Request) -> Response:
    acc = access(request)
    campaign_id = _id(request) if "id" in request.path_params else None
    form = await request.form()
    values = {k: form.get(k, "") for k in ("name", "segment", "cost", *campaigns.TEXT_FIELDS, *ab_test.FIELDS)}
    try:
        campaign_id = await campaigns.save(acc, values, campaign_id)
    except ValidationError as exc:
        return await render(
            request,
            "crm_marketing/campaign_form.html",
            status=422,
            c={**NEW_CAMPAIGN, **values, "id": campaign_id},
            errors=exc.fields,
            segments=await _segment_choices(acc),
        )
    return _see_other(f"/marketing/campaigns/{campaign_id}")


async def campaign_detail(request: Request) -> Response:
    acc = access(request)
    campaign = await campaigns.get(acc, _id(request))
    figures = await roi.figures(campaign["id"])
    failed = (
        await CampaignRecipient.select(
            CampaignRecipient.id, CampaignRecipient.email, CampaignRecipient.error, CampaignRecipient.attempts
        )
        .where((CampaignRecipient.campaign == campaign["id"]) & CampaignRecipient.state.is_in(["failed", "unknown"]))
        .limit(50)
    )
    failed = [acc.present(PERSON_MODEL, dict(r)) for r in failed]  # the address obeys the contact field rules
    sample = None
    if campaign["segment"]:
        sample = (
            await SegmentMember.select(SegmentMember.person).where(SegmentMember.segment == campaign["segment"]).first()
        )
    return await render(
        request,
        "crm_marketing/campaign_detail.html",
        c=campaign,
        f=figures,
        failed=failed,
        errors={},
        segments=await _segment_choices(acc),
        sample_person=sample["person"] if sample else "",
        may_update=acc.can(CAMPAIGN, "update"),
        ab=await ab_test.results(campaign["id"]) if campaign["ab_share"] else None,
    )


async def campaign_preview(request: Request) -> Response:
    acc = access(request)
    person_id = _int(request.query_params.get("person", ""), "person")
    language = request.query_params.get("language", "")
    shown = await campaigns.preview(acc, _id(request), person_id, language if language in ("en", "zh_CN") else "")
    return await render(
        request,
        "crm_marketing/campaign_preview.html",
        c=await campaigns.get(acc, _id(request)),
        preview=shown,
        person_id=person_id,
    )


async def campaign_test(request: Request) -> Response:
    acc = access(request)
    form = await request.form()
    campaign_id = _id(request)
    await campaigns.test_send(
        acc, campaign_id, form_str(form, "to", required=True, max_length=254), _int(form.get("person", ""), "person")
    )
    return _see_other(f"/marketing/campaigns/{campaign_id}?tested=1")


async def campaign_send(request: Request) -> Response:
    acc = access(request)
    campaign_id = _id(request)
    await campaigns.send(acc, campaign_id)
    return _see_other(f"/marketing/campaigns/{campaign_id}")


async def campaign_schedule(request: Request) -> Response:
    """``scheduled_at`` (``datetime-local``, in the user's time zone) schedules the send; empty unschedules."""
    from core.formatting import zone

    acc = access(request)
    campaign_id = _id(request)
    form = await request.form()
    text = form_str(form, "scheduled_at", max_length=40)
    at: dt.datetime | None = None
    if text:
        try:
            at = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValidationError({"scheduled_at": N_("is not a date and time")}) from None
        at = (at if at.tzinfo else at.replace(tzinfo=zone())).astimezone(dt.UTC)
    await campaigns.schedule(acc, campaign_id, at)
    return _see_other(f"/marketing/campaigns/{campaign_id}")


async def campaign_roi(request: Request) -> Response:
    acc = access(request)
    campaign = await campaigns.get(acc, _id(request))
    return await render(
        request,
        "crm_marketing/campaign_roi.html",
        c=campaign,
        f=await roi.figures(campaign["id"], acc),
        days=roi.ATTRIBUTION_DAYS,
        attribution=await attribution.for_campaign(acc, campaign["id"]),
        touch_days=attribution.TOUCH_DAYS,
    )


# --- segments ---------------------------------------------------------------------------------------------------


async def segment_list(request: Request) -> Response:
    acc = access(request)
    await acc.require(SEGMENT)
    rows = await (
        await acc.select(
            Segment,
            SEGMENT,
            Segment.id,
            Segment.name,
            Segment.is_static,
            Segment.member_count,
            Segment.built_at,
            Segment.build_ms,
        )
    ).order_by(Segment.name)
    return await render(request, "crm_marketing/segment_list.html", rows=rows, may_create=acc.can(SEGMENT, "create"))


async def _segment_page(
    request: Request,
    acc: Any,
    segment: dict[str, Any],
    errors: dict[str, str],
    status: int = 200,
    condition_text: str | None = None,
) -> Response:
    sch = await segments.schema()
    members = (
        await SegmentMember.select(SegmentMember.person)
        .where(SegmentMember.segment == segment["id"])
        .order_by(SegmentMember.id)
        .limit(MEMBERS_SHOWN)
        if segment.get("id")
        else []
    )
    person: Any = sch.table
    ids = [int(m["person"]) for m in members]
    people = (
        await (
            await acc.select(
                person,
                PERSON_MODEL,
                person.id,
                person.name,
                person.city,
                person.stage,
                where=person.id.is_in(ids or [0]),
            )
        ).order_by(person.name)
        if ids and acc.can(PERSON_MODEL)
        else []
    )
    if condition_text is None:
        raw = segment.get("condition") or {}
        raw = json.loads(raw) if isinstance(raw, str) else raw
        condition_text = json.dumps(raw, ensure_ascii=False, indent=2) if raw else ""
    fields = [
        f
        for f in conditions.describe(sch, changes=False)
        if acc.visible_fields(PERSON_MODEL, [f["field"]]) or f["field"] in segments.EXTRA_FIELDS
    ]
    return await render(
        request,
        "crm_marketing/segment_detail.html",
        status=status,
        s=segment,
        errors=errors,
        condition_text=condition_text,
        people=people,
        fields=fields,
        may_update=acc.can(SEGMENT, "update"),
        may_export=acc.can(SEGMENT, "export") and acc.can(PERSON_MODEL, "export"),
    )


async def segment_new(request: Request) -> Response:
    acc = access(request)
    await acc.require(SEGMENT, "create")
    return await _segment_page(request, acc, {**NEW_SEGMENT}, {})


async def segment_save(request: Request) -> Response:
    acc = access(request)
    segment_id = _id(request) if "id" in request.path_params else None
    await acc.require(SEGMENT, "update" if segment_id else "create")
    form = await request.form()
    name = str(form.get("name", "")).strip()[:200]
    is_static = form.get("is_static") == "1"
    text = str(form.get("condition", ""))
    current = dict(await acc.get(Segment, SEGMENT, segment_id, action="update")) if segment_id else {}
    try:
        if not name:
            raise ValidationError({"name": N_("is required")})
        raw = segments.decode(text) if not is_static else {}
        await segments.parse(raw, acc)
    except ValidationError as exc:
        return await _segment_page(
            request,
            acc,
            {**NEW_SEGMENT, **current, "name": name, "is_static": is_static},
            exc.fields,
            status=422,
            condition_text=text,
        )
    async with db.atomic():
        if segment_id is None:
            rows = await Segment.insert(Segment(name=name, is_static=is_static, condition=raw))
            segment_id = int(rows[0]["id"])
            await audit.record(
                "create", model=SEGMENT, record_id=segment_id, changes={"name": [None, name], "condition": [None, raw]}
            )
        else:
            await Segment.update(
                {Segment.name: name, Segment.condition: raw, Segment.version: Segment.version + 1}
            ).where(Segment.id == segment_id)
            await audit.record(
                "update",
                model=SEGMENT,
                record_id=segment_id,
                changes=audit.diff(
                    {"name": current["name"], "condition": current["condition"]},
                    {"name": name, "condition": json.dumps(raw)},
                ),
            )
    if not is_static:
        await segments.build(segment_id)
    return _see_other(f"/marketing/segments/{segment_id}")


async def segment_detail(request: Request) -> Response:
    acc = access(request)
    return await _segment_page(request, acc, dict(await acc.get(Segment, SEGMENT, _id(request))), {})


async def segment_build(request: Request) -> Response:
    acc = access(request)
    segment_id = _id(request)
    await acc.get(Segment, SEGMENT, segment_id, action="update")
    await segments.build(segment_id)
    return _see_other(f"/marketing/segments/{segment_id}")


async def segment_members(request: Request) -> Response:
    """Add or remove people of a static list (ids, one per line or comma-separated)."""
    acc = access(request)
    segment_id = _id(request)
    segment = await acc.get(Segment, SEGMENT, segment_id, action="update")
    if not segment["is_static"]:
        raise ValidationError({"people": N_("a dynamic segment's members come from its condition")})
    form = await request.form()
    ids = [_int(p, "people") for p in str(form.get("people", "")).replace(",", " ").split()][:1000]
    person: Any = (await segments.schema()).table
    if ids:
        readable = {
            int(r["id"]) for r in await (await acc.select(person, PERSON_MODEL, person.id, where=person.id.is_in(ids)))
        }
        missing = [i for i in ids if i not in readable]
        if missing:
            raise ValidationError({"people": f"{missing[0]}: does not exist or is not yours to use"})
    await segments.set_static_members(segment_id, ids, add=form.get("action") != "remove")
    await audit.record("update", model=SEGMENT, record_id=segment_id, detail=f"{form.get('action')} {len(ids)}")
    return _see_other(f"/marketing/segments/{segment_id}")


EXPORT_FIELDS = ("id", "name", "email", "phone", "province", "city", "stage", "language")


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # a cell a spreadsheet would run as a formula is written as text
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


async def segment_export(request: Request) -> Response:
    """The members as CSV, each field as the contact pages show it to this user (masked e-mails stay masked)."""
    acc = access(request)
    segment_id = _id(request)
    segment = await acc.get(Segment, SEGMENT, segment_id, action="export")
    person: Any = (await segments.schema()).table
    members = SegmentMember.select(SegmentMember.person).where(SegmentMember.segment == segment_id)
    query = await acc.select(
        person,
        PERSON_MODEL,
        *(person._meta.get_column_by_name(f) for f in EXPORT_FIELDS),
        where=person.id.is_in(members),
        action="export",
    )
    rows = [acc.present(PERSON_MODEL, dict(r)) for r in await query.order_by(person.id).limit(100_000)]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_FIELDS)
    for row in rows:
        writer.writerow([_cell(row.get(f)) for f in EXPORT_FIELDS])
    await audit.record("export", model=SEGMENT, record_id=segment_id, detail=f"{len(rows)} members as csv")
    return Response(
        ("\ufeff" + out.getvalue()).encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="segment-{segment["id"]}.csv"'},
    )


async def segment_count(request: Request) -> Response:
    """The builder's live count: ``{"condition": {...}}`` in, ``{"count": n}`` or a 422 naming the field out."""
    acc = access(request)
    await acc.require(SEGMENT)
    try:
        body = json.loads(await request.body())
        raw = segments.decode(body.get("condition", "")) if isinstance(body, dict) else None
    except ValueError:
        raw = None
    if raw is None:
        return JSONResponse(
            {
                "error": {
                    "code": "validation",
                    "message": "condition: must be JSON",
                    "fields": {"condition": "must be JSON"},
                }
            },
            status_code=422,
        )
    try:
        return JSONResponse({"count": await segments.count(raw, acc)})
    except (ValidationError, PermissionDenied) as exc:
        fields = getattr(exc, "fields", None) or {getattr(exc, "field", None) or "condition": str(exc)}
        return JSONResponse(
            {"error": {"code": exc.code, "message": str(exc), "fields": fields}}, status_code=exc.status
        )


# --- do-not-contact ---------------------------------------------------------------------------------------------


async def suppression_list(request: Request) -> Response:
    acc = access(request)
    await acc.require(SUPPRESSION)
    rows = (
        await (
            await acc.select(
                Suppression,
                SUPPRESSION,
                Suppression.id,
                Suppression.email,
                Suppression.reason,
                Suppression.note,
                Suppression.created_at,
            )
        )
        .order_by(Suppression.id, ascending=False)
        .limit(500)
    )
    # an address is a contact's PII: shown as the contact pages show it to this role
    rows = [{**r, **acc.present(PERSON_MODEL, {"email": r["email"]})} for r in rows]
    return await render(
        request,
        "crm_marketing/suppression_list.html",
        rows=rows,
        may_create=acc.can(SUPPRESSION, "create"),
        may_delete=acc.can(SUPPRESSION, "delete"),
    )


async def suppression_add(request: Request) -> Response:
    acc = access(request)
    await acc.require(SUPPRESSION, "create")
    form = await request.form()
    email = form_str(form, "email", required=True, max_length=254).lower()
    if "@" not in email or any(c.isspace() for c in email):
        raise ValidationError({"email": N_("is not an e-mail address")})
    note = form_str(form, "note", max_length=300)
    async with db.atomic():
        if not await Suppression.exists().where(Suppression.email == email):
            rows = await Suppression.insert(Suppression(email=email, reason="do_not_contact", note=note))
            await audit.record(
                "create",
                model=SUPPRESSION,
                record_id=rows[0]["id"],
                changes={"email": [None, email], "note": [None, note]},
            )
    return _see_other("/marketing/suppressions")


async def suppression_delete(request: Request) -> Response:
    acc = access(request)
    row = await acc.get(Suppression, SUPPRESSION, _id(request), action="delete")
    async with db.atomic():
        await Suppression.delete().where(Suppression.id == row["id"])
        await audit.record("delete", model=SUPPRESSION, record_id=row["id"], changes={"email": [row["email"], None]})
    return _see_other("/marketing/suppressions")


ROUTES: list[BaseRoute] = [
    Route("/", campaign_list, name="campaign_list"),
    Route("/campaigns/new", campaign_new, name="campaign_new"),
    Route("/campaigns", campaign_save, methods=["POST"], name="campaign_create"),
    Route("/campaigns/{id:int}", campaign_detail, name="campaign_detail"),
    Route("/campaigns/{id:int}", campaign_save, methods=["POST"], name="campaign_update"),
    Route("/campaigns/{id:int}/preview", campaign_preview, name="campaign_preview"),
    Route("/campaigns/{id:int}/test", campaign_test, methods=["POST"], name="campaign_test"),
    Route("/campaigns/{id:int}/send", campaign_send, methods=["POST"], name="campaign_send"),
    Route("/campaigns/{id:int}/schedule", campaign_schedule, methods=["POST"], name="campaign_schedule"),
    Route("/campaigns/{id:int}/roi", campaign_roi, name="campaign_roi"),
    Route("/segments", segment_list, name="segment_list"),
    Route("/segments", segment_save, methods=["POST"], name="segment_create"),
    Route("/segments/new", segment_new, name="segment_new"),
    Route("/segments/count", segment_count, methods=["POST"], name="segment_count"),
    Route("/segments/{id:int}", segment_detail, name="segment_detail"),
    Route("/segments/{id:int}", segment_save, methods=["POST"], name="segment_update"),
    Route("/segments/{id:int}/export", segment_export, name="segment_export"),
    Route("/segments/{id:int}/build", segment_build, methods=["POST"], name="segment_build"),
    Route("/segments/{id:int}/members", segment_members, methods=["POST"], name="segment_members"),
    Route("/suppressions", suppression_list, name="suppression_list"),
    Route("/suppressions", suppression_add, methods=["POST"], name="suppression_add"),
    Route("/suppressions/{id:int}/delete", suppression_delete, methods=["POST"], name="suppression_delete"),
    *JOURNEY_ROUTES,
    *RFM_ROUTES,
    *FORM_ROUTES,
    *PUBLIC_ROUTES,
]
