"""Pages of the journeys: the list (trigger, state, people in it) and a journey's steps with how many people
reached each, are at it now and left there (the drop-off). Journeys are written through the JSON API for now;
the page switches one on or off."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from core import db
from core.automation import registry
from core.errors import NotFound, ValidationError
from core.i18n import N_
from core.security import audit
from core.web import access, render
from crm_marketing import journeys
from crm_marketing.manifest import JOURNEY
from crm_marketing.models import Campaign, Journey, JourneyEnrollment, Segment


def _id(request: Request) -> int:
    try:
        return int(request.path_params["id"])
    except (KeyError, ValueError):
        raise NotFound("not found") from None


async def _names(trigger: dict[str, Any], steps: list[dict[str, Any]]) -> dict[str, dict[Any, str]]:
    """Names of the segments, campaigns and stages a journey mentions (to show them, not their keys)."""
    segment_ids = [int(trigger["segment"])] if trigger.get("type") == "segment" else []
    campaign_ids = [int(trigger["campaign"])] if trigger.get("type") == "campaign" else []
    campaign_ids += [int(s["campaign"]) for s in steps if s.get("kind") == "send_mail"]
    out: dict[str, dict[Any, str]] = {"segment": {}, "campaign": {}, "stage": {}}
    if any(s.get("kind") == "set_stage" for s in steps):
        # crm_contacts' stage labels, read by table name as segments read its tags
        for r in await Journey.raw('SELECT "key", "label" FROM "crm_contacts_stage"'):
            out["stage"][r["key"]] = r["label"]
    if segment_ids:
        for r in await Segment.select(Segment.id, Segment.name).where(Segment.id.is_in(segment_ids)):
            out["segment"][int(r["id"])] = r["name"]
    if campaign_ids:
        for r in await Campaign.select(Campaign.id, Campaign.name).where(Campaign.id.is_in(campaign_ids)):
            out["campaign"][int(r["id"])] = r["name"]
    return out


async def journey_list(request: Request) -> Response:
    acc = access(request)
    await acc.require(JOURNEY)
    rows = [
        dict(r)
        for r in await (
            await acc.select(Journey, JOURNEY, Journey.id, Journey.name, Journey.trigger, Journey.is_active)
        ).order_by(Journey.name)
    ]
    counts: dict[int, int] = {}
    if rows:
        for e in await JourneyEnrollment.select(JourneyEnrollment.journey).where(
            JourneyEnrollment.journey.is_in([r["id"] for r in rows]) & (JourneyEnrollment.state == "active")
        ):
            counts[int(e["journey"])] = counts.get(int(e["journey"]), 0) + 1
    for r in rows:
        r["trigger"] = journeys.loaded(r["trigger"], {})
        r["active_people"] = counts.get(int(r["id"]), 0)
    return await render(
        request,
        "crm_marketing/journey_list.html",
        rows=rows,
        trigger_labels=journeys.TRIGGER_LABELS,
        may_create=acc.can(JOURNEY, "create"),
    )


async def journey_detail(request: Request) -> Response:
    acc = access(request)
    journey = await acc.get(Journey, JOURNEY, _id(request))
    trigger = journeys.loaded(journey["trigger"], {})
    steps = journeys.loaded(journey["steps"], [])
    return await render(
        request,
        "crm_marketing/journey_detail.html",
        j=journey,
        trigger=trigger,
        steps=steps,
        figures=await journeys.funnel(int(journey["id"]), steps),
        names=await _names(trigger, steps),
        trigger_labels=journeys.TRIGGER_LABELS,
        step_labels=journeys.STEP_LABELS,
        on_labels=journeys.ON_LABELS,
        action_labels={k: a.label for k, a in (await registry.actions()).items()},
        may_update=acc.can(JOURNEY, "update"),
    )


async def journey_toggle(request: Request) -> Response:
    """Switch a journey on (people start entering at the next minute) or off (everyone in it waits)."""
    acc = access(request)
    journey_id = _id(request)
    journey = await acc.get(Journey, JOURNEY, journey_id, action="update")
    now_active = not journey["is_active"]
    changes: dict[Any, Any] = {Journey.is_active: now_active, Journey.version: Journey.version + 1}
    if now_active and acc.principal is not None:
        changes[Journey.started_by] = acc.principal.user_id
    await Journey.update(changes).where(Journey.id == journey_id)
    await audit.record(
        "update", model=JOURNEY, record_id=journey_id, changes={"is_active": [journey["is_active"], now_active]}
    )
    return RedirectResponse(f"/marketing/journeys/{journey_id}", status_code=303)


def _decode(text: str, field: str) -> Any:
    try:
        return json.loads(text) if text.strip() else None
    except ValueError:
        raise ValidationError({field: N_("must be JSON")}) from None


async def _form(
    request: Request, j: dict[str, Any], errors: dict[str, str], trigger_text: str, steps_text: str, status: int = 200
) -> Response:
    return await render(
        request,
        "crm_marketing/journey_form.html",
        status=status,
        j=j,
        errors=errors,
        trigger_text=trigger_text,
        steps_text=steps_text,
    )


async def journey_new(request: Request) -> Response:
    acc = access(request)
    await acc.require(JOURNEY, "create")
    return await _form(request, {"id": None, "name": "", "allow_reentry": False}, {}, "", "")


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=1)


async def journey_edit(request: Request) -> Response:
    acc = access(request)
    j = dict(await acc.get(Journey, JOURNEY, _id(request), action="update"))
    return await _form(request, j, {}, _dump(journeys.loaded(j["trigger"], {})), _dump(journeys.loaded(j["steps"], [])))


async def journey_save(request: Request) -> Response:
    """Create or change a journey from the form (trigger and steps as JSON, checked as the API checks them)."""
    acc = access(request)
    journey_id = _id(request) if "id" in request.path_params else None
    await acc.require(JOURNEY, "update" if journey_id else "create")
    current = dict(await acc.get(Journey, JOURNEY, journey_id, action="update")) if journey_id else {}
    form = await request.form()
    name = str(form.get("name", "")).strip()[:200]
    reentry = form.get("allow_reentry") == "1"
    trigger_text, steps_text = str(form.get("trigger", "")), str(form.get("steps", ""))
    try:
        if not name:
            raise ValidationError({"name": N_("is required")})
        trigger = await journeys.check_trigger(_decode(trigger_text, "trigger"))
        steps = await journeys.check_steps(_decode(steps_text, "steps"), acc)
        if journey_id and str(form.get("version", "")) != str(current["version"]):
            raise ValidationError({"name": N_("someone changed this journey meanwhile: reload it")})
    except ValidationError as exc:
        shown = {**current, "id": journey_id, "name": name, "allow_reentry": reentry}
        return await _form(request, shown, exc.fields, trigger_text, steps_text, status=422)
    async with db.atomic():
        if journey_id is None:
            rows = await Journey.insert(Journey(name=name, allow_reentry=reentry, trigger=trigger, steps=steps))
            journey_id = int(rows[0]["id"])
            await audit.record("create", model=JOURNEY, record_id=journey_id, changes={"name": [None, name]})
        else:
            await Journey.update(
                {
                    Journey.name: name,
                    Journey.allow_reentry: reentry,
                    Journey.trigger: trigger,
                    Journey.steps: steps,
                    Journey.version: Journey.version + 1,
                }
            ).where(Journey.id == journey_id)
            await audit.record(
                "update",
                model=JOURNEY,
                record_id=journey_id,
                changes=audit.diff(
                    {k: current[k] for k in ("name", "allow_reentry", "trigger", "steps")},
                    {
                        "name": name,
                        "allow_reentry": reentry,
                        "trigger": json.dumps(trigger),
                        "steps": json.dumps(steps),
                    },
                ),
            )
    return RedirectResponse(f"/marketing/journeys/{journey_id}", status_code=303)


JOURNEY_ROUTES: list[BaseRoute] = [
    Route("/journeys/new", journey_new, name="journey_new"),
    Route("/journeys", journey_save, methods=["POST"], name="journey_create"),
    Route("/journeys/{id:int}", journey_save, methods=["POST"], name="journey_update"),
    Route("/journeys/{id:int}/edit", journey_edit, name="journey_edit"),
    Route("/journeys", journey_list, name="journey_list"),
    Route("/journeys/{id:int}", journey_detail, name="journey_detail"),
    Route("/journeys/{id:int}/toggle", journey_toggle, methods=["POST"], name="journey_toggle"),
]
