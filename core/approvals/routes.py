"""Approval pages and API: the inbox (``/approvals``: approve or reject with a comment), one request
(``/approvals/{id}``), the administrator's rules (``/admin/approvals``), and the same over JSON
(``/api/approvals``, ``/api/admin/approvals``)."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from core.approvals import flow, inbox, registry, rules
from core.errors import Conflict, NotFound, ValidationError
from core.i18n import N_
from core.web import form_str, principal, render, require_user

PAGE = 50


def _id(request: Request) -> int:
    from core.values import record_id

    return record_id(request.path_params["id"])


def _before(request: Request) -> int | None:
    from core.values import record_id

    raw = request.query_params.get("before", "")
    return record_id(raw, "before") if raw else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value.isoformat() if hasattr(value, "isoformat") else value


# --- the inbox ---------------------------------------------------------------------------------------------


async def approval_list(request: Request) -> Response:
    who = require_user(request)
    box = request.query_params.get("box") or "inbox"
    items = await inbox.listing(who, box, limit=PAGE + 1, before=_before(request))
    return await render(request, "core/approvals.html", items=items[:PAGE], box=box,
                        more=items[PAGE - 1]["id"] if len(items) > PAGE else None,
                        waiting=await inbox.inbox_count(who.user_id), decided=request.query_params.get("decided"))


async def approval_detail(request: Request, errors: dict[str, str] | None = None, status: int = 200,
                          comment: str = "") -> Response:
    who = require_user(request)
    item = await inbox.read(who, _id(request))
    return await render(request, "core/approval_detail.html", status=status, item=item, errors=errors or {},
                        comment=comment)


async def approval_decide(request: Request) -> Response:
    who = require_user(request)
    request_id = _id(request)
    form = await request.form()
    comment = str(form.get("comment") or "")
    decision = form_str(form, "decision")
    if decision not in ("approve", "reject"):
        raise ValidationError({"decision": N_("choose approve or reject")})
    try:
        await flow.decide(who, request_id, decision == "approve", comment)
    except (ValidationError, Conflict) as exc:
        errors = dict(exc.fields) if isinstance(exc, ValidationError) else {"": exc.message}
        return await approval_detail(request, errors, exc.status, comment)
    return RedirectResponse(f"/approvals?decided={request_id}", status_code=303)


async def api_list(request: Request) -> Response:
    from core.values import integer

    who = require_user(request)
    raw = request.query_params.get("limit", "50")
    limit = integer(int(raw) if raw.isascii() and raw.isdigit() else raw, "limit", (1, 200))
    items = await inbox.listing(who, request.query_params.get("box") or "inbox", limit=limit,
                                before=_before(request), state=request.query_params.get("state") or None)
    return JSONResponse({"items": _jsonable(items), "next": items[-1]["id"] if len(items) == limit else None,
                         "waiting": await inbox.inbox_count(who.user_id)})


async def api_read(request: Request) -> Response:
    return JSONResponse(_jsonable(await inbox.read(require_user(request), _id(request))))


async def api_decide(request: Request) -> Response:
    from core.api import json_body

    who = require_user(request)
    decision = request.path_params["decision"]
    if decision not in ("approve", "reject"):
        raise NotFound(N_("no such decision (approve, reject)"))
    body = await json_body(request, optional=True)
    unknown = sorted(set(body) - {"comment"})
    if unknown:
        raise ValidationError({unknown[0]: N_("is not a setting of a decision (comment)")})
    comment = body.get("comment", "")
    if not isinstance(comment, str):
        raise ValidationError({"comment": N_("must be text")})
    request_id = _id(request)
    await flow.decide(who, request_id, decision == "approve", comment)
    return JSONResponse(_jsonable(await inbox.read(who, request_id)))


# --- the administrator's rules -----------------------------------------------------------------------------


async def _actions() -> list[dict[str, Any]]:
    return sorted((registry.describe(a) for a in (await registry.actions()).values()),
                  key=lambda a: (a["action"] == registry.DELETE, a["label"], a["model"]))


def steps_from_text(text: str) -> list[dict[str, Any]]:
    """Approvers typed one per line: ``team_leader``, ``role:sales_manager``, ``user:<login>``."""
    out: list[dict[str, Any]] = []
    for line in text.splitlines():
        kind, _, value = line.strip().partition(":")
        if not kind:
            continue
        step: dict[str, Any] = {"approver": kind.strip()}
        if value.strip():
            step["role" if kind.strip() == "role" else "user"] = value.strip()
        out.append(step)
    return out


async def steps_to_text(steps: list[dict[str, Any]]) -> str:
    from core.security.models import User

    lines = []
    for step in steps:
        if step.get("approver") == "role":
            lines.append(f"role:{step.get('role')}")
        elif step.get("approver") == "user":
            row = await User.select(User.login).where(User.id == int(step.get("user") or 0)).first()
            lines.append(f"user:{row['login'] if row else step.get('user')}")
        else:
            lines.append(str(step.get("approver")))
    return "\n".join(lines)


async def rule_list(request: Request) -> Response:
    items = await rules.listing(principal(request))
    labels = {(a["action"], a["model"]): a["label"] for a in await _actions()}
    for item in items:
        item["action_label"] = labels.get((item["action"], item["model"]), item["action"])
        item["steps_text"] = (await steps_to_text(item["steps"])).replace("\n", " → ")
    return await render(request, "core/admin_approvals.html", rules=items)


async def rule_edit(request: Request) -> Response:
    who = principal(request)
    raw_id = request.path_params.get("id")
    existing = await rules.read(who, int(raw_id)) if raw_id is not None else None
    if existing is None:
        await rules.require_admin(who, "create")
    actions = await _actions()
    current = existing or {"name": "", "action": actions[0]["action"] if actions else "",
                           "model": actions[0]["model"] if actions else "", "condition": {},
                           "steps": [{"approver": "team_leader"}], "is_active": True, "sequence": 100}
    picked = request.query_params.get("action", "")
    if picked and existing is None:
        current["action"], _, current["model"] = picked.partition("|")
    values = {"name": current["name"], "action": f"{current['action']}|{current['model']}",
              "condition": json.dumps(current["condition"], ensure_ascii=False, indent=2) if current["condition"]
              else "", "steps": await steps_to_text(current["steps"]), "is_active": current["is_active"],
              "sequence": str(current["sequence"])}
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        form = await request.form()
        values = {k: str(form.get(k) or "") for k in ("name", "action", "condition", "steps", "sequence")}
        values["is_active"] = form.get("is_active") is not None
        key, _, model = str(values["action"]).partition("|")
        try:
            try:
                condition = json.loads(str(values["condition"])) if str(values["condition"]).strip() else {}
            except ValueError as exc:
                raise ValidationError({"condition": N_("is not valid JSON: %(error)s") % {"error": str(exc)}}) \
                    from None
            sequence = str(values["sequence"]).strip()
            data = {"name": values["name"], "action": key, "model": model, "condition": condition,
                    "steps": steps_from_text(str(values["steps"])), "is_active": values["is_active"],
                    "sequence": int(sequence) if sequence.isascii() and sequence.isdigit() else sequence or 100}
            if existing is None:
                saved = await rules.create(who, data)
            else:
                version = str(form.get("version") or "")
                saved = await rules.update(who, existing["id"], data, int(version) if version.isdigit() else None)
            return RedirectResponse(f"/admin/approvals?saved={saved['id']}#rule-{saved['id']}", status_code=303)
        except (ValidationError, Conflict) as exc:
            errors = dict(exc.fields) if isinstance(exc, ValidationError) else {str(exc.field or ""): exc.message}
            status = exc.status
    key, _, model = str(values["action"]).partition("|")
    chosen = next((a for a in actions if a["action"] == key and a["model"] == model), None)
    return await render(request, "core/admin_approval_form.html", status=status, rule=existing, values=values,
                        errors=errors, actions=actions, chosen=chosen)


async def rule_delete(request: Request) -> Response:
    await rules.delete(principal(request), _id(request))
    return RedirectResponse("/admin/approvals", status_code=303)


async def api_rules(request: Request) -> Response:
    return JSONResponse({"items": await rules.listing(principal(request))})


async def api_rule_create(request: Request) -> Response:
    from core.api import json_body

    return JSONResponse(await rules.create(principal(request), await json_body(request)), status_code=201)


async def api_rule_read(request: Request) -> Response:
    return JSONResponse(await rules.read(principal(request), _id(request)))


async def api_rule_update(request: Request) -> Response:
    from core.api import json_body

    body = await json_body(request)
    return JSONResponse(await rules.update(principal(request), _id(request), body, body.get("version")))


async def api_rule_delete(request: Request) -> Response:
    await rules.delete(principal(request), _id(request))
    return Response(status_code=204)


async def api_actions(request: Request) -> Response:
    await rules.require_admin(principal(request), "actions")
    return JSONResponse({"items": await _actions(), "approvers": list(rules.APPROVERS)})


ROUTES: list[BaseRoute] = [
    Route("/approvals", approval_list, methods=["GET"], name="approval_list"),
    Route("/approvals/{id:int}", approval_detail, methods=["GET"], name="approval_detail"),
    Route("/approvals/{id:int}", approval_decide, methods=["POST"], name="approval_decide"),
    Route("/admin/approvals", rule_list, methods=["GET"]),
    Route("/admin/approvals/new", rule_edit, methods=["GET", "POST"]),
    Route("/admin/approvals/{id:int}", rule_edit, methods=["GET", "POST"]),
    Route("/admin/approvals/{id:int}/delete", rule_delete, methods=["POST"]),
    Route("/api/approvals", api_list, methods=["GET"]),
    Route("/api/approvals/{id:int}", api_read, methods=["GET"]),
    Route("/api/approvals/{id:int}/{decision:str}", api_decide, methods=["POST"]),
    Route("/api/admin/approvals/actions", api_actions, methods=["GET"]),
    Route("/api/admin/approvals/rules", api_rules, methods=["GET"]),
    Route("/api/admin/approvals/rules", api_rule_create, methods=["POST"]),
    Route("/api/admin/approvals/rules/{id:int}", api_rule_read, methods=["GET"]),
    Route("/api/admin/approvals/rules/{id:int}", api_rule_update, methods=["PATCH"]),
    Route("/api/admin/approvals/rules/{id:int}", api_rule_delete, methods=["DELETE"]),
]
