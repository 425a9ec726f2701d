"""The administrator's automation rules: pages under ``/admin/automation`` (list, create, edit, enable, disable,
delete, run log, dry run) and the same over JSON under ``/api/admin/automation``. Administrators only (403,
audited); the operations are :mod:`core.automation.rules`'."""

from __future__ import annotations

import json
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from core import conditions
from core.automation import registry, rules, scans
from core.errors import Conflict, NotFound, ValidationError
from core.i18n import N_, gettext
from core.web import principal, render

RUN_PAGE = 50


def _id(request: Request) -> int:
    from core.values import record_id

    return record_id(request.path_params["id"])


def trigger_text(trigger: dict[str, Any]) -> str:
    """A trigger in words, in the reader's language."""
    kind = trigger.get("type", "")
    if kind == "created":
        return gettext("When a record is created")
    if kind == "updated":
        return gettext("When a record is updated")
    if kind == "deleted":
        return gettext("When a record is deleted")
    if kind == "changed":
        if "to" in trigger:
            return gettext("When %(field)s changes to %(value)s") % {"field": trigger.get("field"),
                                                                      "value": json.dumps(trigger["to"],
                                                                                          ensure_ascii=False)}
        return gettext("When %(field)s changes") % {"field": trigger.get("field")}
    if kind == "event":
        return gettext("On the event %(event)s") % {"event": trigger.get("event")}
    if kind == "time_after":
        return gettext("%(hours)s h after %(field)s") % {"hours": trigger.get("hours"), "field": trigger.get("field")}
    if kind == "idle":
        return gettext("No activity for %(hours)s h") % {"hours": trigger.get("hours")}
    if kind == "daily":
        return gettext("Every day at %(at)s") % {"at": trigger.get("at")}
    return str(kind)


async def _models() -> list[dict[str, str]]:
    return [{"model": m, "label": am.label} for m, am in sorted((await registry.models()).items())]


async def reference(model: str) -> dict[str, Any]:
    """What a rule over ``model`` may use: fields with their operators, triggers, action kinds."""
    am = await registry.model(model)
    schema = await registry.schema(model)
    if am is None or schema is None:
        raise NotFound(f"{model[:100]!r} cannot be automated")
    triggers = ["created", "updated", "changed", "deleted", "time_after", "daily"]
    if am.events:
        triggers.insert(4, "event")
    if am.idle is not None:
        triggers.insert(-1, "idle")
    kinds = [{"kind": a.kind, "label": gettext(a.label), "external": a.is_external}
             for a in (await registry.actions()).values() if not a.models or model in a.models]
    return {"model": model, "label": gettext(am.label), "fields": conditions.describe(schema), "triggers": triggers,
            "events": dict(am.events), "writable": list(am.writable), "tags": bool(am.tags),
            "actions": kinds, "ops": list(conditions.ALL_OPS)}


# --- HTML ---------------------------------------------------------------------------------------------------


async def rule_list(request: Request) -> Response:
    items = await rules.listing(principal(request))
    for item in items:
        item["trigger_text"] = trigger_text(item["trigger"])
    labels = {m["model"]: m["label"] for m in await _models()}
    return await render(request, "core/admin_automation.html", rules=items, labels=labels)


def _json_field(form: FormData, name: str, empty: Any) -> Any:
    raw = str(form.get(name) or "").strip()
    if not raw:
        return empty
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValidationError({name: f"is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"}) from None


def _form_data(form: FormData) -> dict[str, Any]:
    """A rule from the page's form: plain inputs for the trigger, JSON for the condition and the actions."""
    def text(name: str) -> str:
        value = form.get(name)
        return value.strip() if isinstance(value, str) else ""

    trigger: dict[str, Any] = {"type": text("trigger_type")}
    kind = trigger["type"]
    if kind in ("changed", "time_after"):
        trigger["field"] = text("trigger_field")
    if kind == "changed" and text("trigger_to"):
        raw = text("trigger_to")
        try:
            trigger["to"] = json.loads(raw)
        except ValueError:
            trigger["to"] = raw  # plain text: a word needs no quotes
    if kind in ("time_after", "idle"):
        hours = text("trigger_hours")
        trigger["hours"] = int(hours) if hours.isascii() and hours.isdigit() else hours
    if kind == "daily":
        trigger["at"] = text("trigger_at")
    if kind == "event":
        trigger["event"] = text("trigger_event")
    return {"name": text("name"), "model": text("model"), "trigger": trigger,
            "condition": _json_field(form, "condition", {}), "actions": _json_field(form, "actions", []),
            "is_active": form.get("is_active") is not None}


def _texts(values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    trigger = values.get("trigger") or {}
    out["trigger_type"] = trigger.get("type", "created")
    out["trigger_field"] = trigger.get("field", "")
    to = trigger.get("to")
    out["trigger_to"] = "" if "to" not in trigger else (to if isinstance(to, str) else json.dumps(to))
    out["trigger_hours"] = trigger.get("hours", "")
    out["trigger_at"] = trigger.get("at", "")
    out["trigger_event"] = trigger.get("event", "")
    condition = values.get("condition")
    out["condition_text"] = json.dumps(condition, ensure_ascii=False, indent=2) if condition else ""
    actions = values.get("actions")
    out["actions_text"] = json.dumps(actions, ensure_ascii=False, indent=2) if actions else ""
    return out


async def rule_edit(request: Request) -> Response:
    who = principal(request)
    raw_id = request.path_params.get("id")
    existing = await rules.read(who, int(raw_id)) if raw_id is not None else None
    if existing is None:
        await rules.require_admin(who, "create")
    models = await _models()
    values: dict[str, Any] = existing or {
        "model": request.query_params.get("model") or (models[0]["model"] if models else ""),
        "trigger": {"type": "created"}, "condition": {}, "actions": [], "is_active": True, "name": ""}
    texts = _texts(values)
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        form = await request.form()
        texts.update(name=str(form.get("name") or ""), model=str(form.get("model") or ""),
                     condition_text=str(form.get("condition") or ""), actions_text=str(form.get("actions") or ""),
                     is_active=form.get("is_active") is not None,
                     **{k: str(form.get(k) or "") for k in ("trigger_type", "trigger_field", "trigger_to",
                                                            "trigger_hours", "trigger_at", "trigger_event")})
        try:
            data = _form_data(form)
            if existing is None:
                saved = await rules.create(who, data)
            else:
                version = str(form.get("version") or "")
                saved = await rules.update(who, existing["id"], data, int(version) if version.isdigit() else None)
            return RedirectResponse(f"/admin/automation?saved={saved['id']}#rule-{saved['id']}", status_code=303)
        except (ValidationError, Conflict) as exc:
            errors = dict(getattr(exc, "fields", None) or {})
            if isinstance(exc, Conflict):
                errors = {str(exc.field or ""): exc.message}
            status = exc.status
    model = texts.get("model") or ""
    try:
        ref = await reference(model) if model else None
    except NotFound:
        ref = None
    return await render(request, "core/admin_automation_form.html", status=status, rule=existing, values=texts,
                        errors=errors, models=models, ref=ref, triggers=registry.TRIGGERS)


async def rule_toggle(request: Request) -> Response:
    active = request.url.path.endswith("/enable")
    rule_id = _id(request)
    try:
        await rules.set_active(principal(request), rule_id, active)
    except ValidationError as exc:
        return await render(request, "core/error.html", status=exc.status, message=exc.message, fields=exc.fields)
    return RedirectResponse(f"/admin/automation#rule-{rule_id}", status_code=303)


async def rule_delete(request: Request) -> Response:
    await rules.delete(principal(request), _id(request))
    return RedirectResponse("/admin/automation", status_code=303)


def _before(request: Request) -> int | None:
    raw = request.query_params.get("before", "")
    if not raw:
        return None
    from core.values import record_id

    return record_id(raw, "before")


async def run_log(request: Request) -> Response:
    who = principal(request)
    rule_id = _id(request)
    rule = await rules.read(who, rule_id)
    state = request.query_params.get("state") or None
    if state not in (None, "done", "failed", "skipped", "pending", "running"):
        raise ValidationError({"state": N_("must be done, failed, skipped, pending or running")})
    runs = await rules.runs(who, rule_id, RUN_PAGE + 1, _before(request), state)
    more = runs[RUN_PAGE]["id"] if len(runs) > RUN_PAGE else None
    am = await registry.model(rule["model"])
    for run in runs:
        run["url"] = am.url.replace("{id}", str(run["record_id"])) if am is not None and am.url else ""
        run["at"] = scans._aware(run["created_at"])
    return await render(request, "core/admin_automation_runs.html", rule=rule, runs=runs[:RUN_PAGE], more=more,
                        state=state or "", trigger=trigger_text(rule["trigger"]))


async def dry_run_page(request: Request) -> Response:
    who = principal(request)
    rule_id = _id(request)
    rule = await rules.read(who, rule_id)
    result = await rules.dry_run(who, rule_id)
    return await render(request, "core/admin_automation_dry_run.html", rule=rule, result=result,
                        trigger=trigger_text(rule["trigger"]))


# --- JSON ---------------------------------------------------------------------------------------------------


async def _body(request: Request) -> dict[str, Any]:
    from core.api import json_body

    return await json_body(request)


async def api_list(request: Request) -> Response:
    return JSONResponse({"items": await rules.listing(principal(request)), "models": await _models(),
                         "triggers": list(registry.TRIGGERS)})


async def api_schema(request: Request) -> Response:
    await rules.require_admin(principal(request), "schema")
    model = request.query_params.get("model", "")
    return JSONResponse(await reference(model))


async def api_create(request: Request) -> Response:
    return JSONResponse(await rules.create(principal(request), await _body(request)), status_code=201)


async def api_read(request: Request) -> Response:
    return JSONResponse(await rules.read(principal(request), _id(request)))


async def api_update(request: Request) -> Response:
    body = await _body(request)
    return JSONResponse(await rules.update(principal(request), _id(request), body, body.get("version")))


async def api_delete(request: Request) -> Response:
    await rules.delete(principal(request), _id(request))
    return Response(status_code=204)


async def api_action(request: Request) -> Response:
    who, rule_id, action = principal(request), _id(request), request.path_params["action"]
    if action in ("enable", "disable"):
        return JSONResponse(await rules.set_active(who, rule_id, action == "enable"))
    if action == "dry-run":
        return JSONResponse(await rules.dry_run(who, rule_id))
    raise NotFound(f"no action {action[:50]!r} (enable, disable, dry-run)")


async def api_runs(request: Request) -> Response:
    from core.values import integer

    raw = request.query_params.get("limit", "50")
    limit = integer(int(raw) if raw.isascii() and raw.isdigit() else raw, "limit", (1, 200))
    state = request.query_params.get("state") or None
    items = await rules.runs(principal(request), _id(request), limit, _before(request), state)
    return JSONResponse({"items": items, "next": items[-1]["id"] if len(items) == limit else None})


ROUTES: list[BaseRoute] = [
    Route("/admin/automation", rule_list, methods=["GET"]),
    Route("/admin/automation/new", rule_edit, methods=["GET", "POST"]),
    Route("/admin/automation/{id:int}", rule_edit, methods=["GET", "POST"]),
    Route("/admin/automation/{id:int}/enable", rule_toggle, methods=["POST"]),
    Route("/admin/automation/{id:int}/disable", rule_toggle, methods=["POST"]),
    Route("/admin/automation/{id:int}/delete", rule_delete, methods=["POST"]),
    Route("/admin/automation/{id:int}/runs", run_log, methods=["GET"]),
    Route("/admin/automation/{id:int}/dry-run", dry_run_page, methods=["GET"]),
    Route("/api/admin/automation/rules", api_list, methods=["GET"]),
    Route("/api/admin/automation/rules", api_create, methods=["POST"]),
    Route("/api/admin/automation/schema", api_schema, methods=["GET"]),
    Route("/api/admin/automation/rules/{id:int}", api_read, methods=["GET"]),
    Route("/api/admin/automation/rules/{id:int}", api_update, methods=["PATCH"]),
    Route("/api/admin/automation/rules/{id:int}", api_delete, methods=["DELETE"]),
    Route("/api/admin/automation/rules/{id:int}/runs", api_runs, methods=["GET"]),
    Route("/api/admin/automation/rules/{id:int}/{action:str}", api_action, methods=["POST"]),
]
