"""Deactivating a user with their records handed over (:mod:`core.security.handover`): the admin's form with its
dry run under ``/admin/users/{id}/deactivate``, the transfer's report page, and the same over JSON under
``/api/admin/users/{id}/…``. Administrators only (403, audited)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from core.errors import NotFound, PermissionDenied, ValidationError
from core.i18n import N_, translate
from core.security import audit, handover
from core.security.handover import Plan
from core.security.models import Team, TeamMember, User
from core.security.principal import Principal
from core.web import render, require_user


async def _admin(request: Request) -> Principal:
    who = require_user(request)
    if not who.is_admin:
        await audit.record("denied", model="core.user", detail=f"admin page {request.method} {request.url.path}")
        raise PermissionDenied(N_("administrators only"))
    return who


async def _user(request: Request) -> dict[str, Any]:
    user_id = int(request.path_params["id"])
    user = await User.select(User.id, User.login, User.name, User.is_active).where(User.id == user_id).first()
    if user is None:
        raise NotFound(f"user {user_id} not found")
    return dict(user)


def _id(raw: Any, name: str) -> int | None:
    """An optional id from a form field (text) or a JSON body (a number); anything else names the field."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool) or not (isinstance(raw, int) or (isinstance(raw, str) and raw.isdigit())):
        raise ValidationError({name: N_("must be an id")})
    value = int(raw)
    if not 0 < value < 2**31:
        raise ValidationError({name: N_("must be an id")})
    return value


def _plan(user_id: int, values: Any) -> Plan:
    def text(name: str, default: str) -> str:
        value = values.get(name, default)
        return value[:20] if isinstance(value, str) and value else default

    return Plan(user_id=user_id, mode=text("mode", ""), to_user=_id(values.get("to_user"), "to_user"),
                team=_id(values.get("team"), "team"), strategy=text("strategy", "balanced"))


# --- HTML ---------------------------------------------------------------------------------------------------

async def _form(request: Request, user: dict[str, Any], *, plan: Plan | None = None,
                dry_run: dict[str, Any] | None = None, error: str = "", fields: dict[str, str] | None = None,
                status: int = 200) -> Response:
    people = await User.select(User.id, User.login, User.name).where(
        (User.is_active == True) & (User.id != user["id"])).order_by(User.login)  # noqa: E712
    teams = await Team.select(Team.id, Team.name).order_by(Team.name)
    sizes: dict[int, int] = {}
    for row in await TeamMember.select(TeamMember.team):
        sizes[row["team"]] = sizes.get(row["team"], 0) + 1
    return await render(request, "core/admin_user_deactivate.html", status=status, u=user,
                        owned=await handover.owned(user["id"]), people=people, teams=teams, sizes=sizes,
                        plan=plan or Plan(user["id"], "user"), dry_run=dry_run, error=error,
                        fields=fields or {}, history=(await handover.plans(user["id"]))[:10])


async def deactivate_form(request: Request) -> Response:
    await _admin(request)
    return await _form(request, await _user(request))


async def deactivate(request: Request) -> Response:
    """``step=preview`` shows who would get what; ``step=confirm`` deactivates and starts the transfer."""
    who = await _admin(request)
    user = await _user(request)
    form = await request.form()
    plan = Plan(user["id"], str(form.get("mode", "user"))[:20])
    try:
        plan = _plan(user["id"], form)
        if form.get("step") != "confirm":
            return await _form(request, user, plan=plan, dry_run=await handover.preview(plan))
        key = await handover.start(plan, by=who)
    except ValidationError as exc:
        inline = set(exc.fields) <= {"to_user", "team"}  # shown beside their field
        return await _form(request, user, plan=plan, error="" if inline else translate(exc.message),
                           fields=exc.fields, status=422)
    return RedirectResponse(handover.report_url(user["id"], key), status_code=303)


async def transfer_report(request: Request) -> Response:
    await _admin(request)
    user = await _user(request)
    found = await handover.report(user["id"], request.path_params["key"][:40])
    return await render(request, "core/admin_user_transfer.html", u=user, report=found)


# --- JSON ---------------------------------------------------------------------------------------------------

async def api_owned(request: Request) -> Response:
    """``GET /api/admin/users/{id}/owned-records``: what the user owns that would pass on, per kind."""
    await _admin(request)
    user = await _user(request)
    return JSONResponse({"user_id": user["id"], "is_active": user["is_active"],
                         "kinds": await handover.owned(user["id"])})


async def api_deactivate(request: Request) -> Response:
    """``POST /api/admin/users/{id}/deactivate`` with ``{"mode": "user"|"team"|"keep", "to_user", "team",
    "strategy": "balanced"|"round_robin", "dry_run"}``: the dry run (200), or deactivation and the transfer's
    key and report link (202)."""
    from core.api import json_body

    who = await _admin(request)
    user = await _user(request)
    body = await json_body(request)
    plan = _plan(user["id"], body)
    if body.get("dry_run") is True:
        return JSONResponse(await handover.preview(plan))
    key = await handover.start(plan, by=who)
    return JSONResponse({"transfer": key, "report": f"/api{handover.report_url(user['id'], key)}"}, status_code=202)


async def api_report(request: Request) -> Response:
    """``GET /api/admin/users/{id}/transfers/{key}``: the transfer's state and counts."""
    await _admin(request)
    user = await _user(request)
    found = await handover.report(user["id"], request.path_params["key"][:40])
    return JSONResponse({**found, "at": str(found["at"])})


ROUTES: list[BaseRoute] = [
    Route("/admin/users/{id:int}/deactivate", deactivate_form, methods=["GET"]),
    Route("/admin/users/{id:int}/deactivate", deactivate, methods=["POST"]),
    Route("/admin/users/{id:int}/transfers/{key:str}", transfer_report, methods=["GET"]),
    Route("/api/admin/users/{id:int}/owned-records", api_owned, methods=["GET"]),
    Route("/api/admin/users/{id:int}/deactivate", api_deactivate, methods=["POST"]),
    Route("/api/admin/users/{id:int}/transfers/{key:str}", api_report, methods=["GET"]),
]
