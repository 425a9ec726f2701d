"""Admin pages: users (create, profile, roles, (de)activate, password reset), roles (declared and custom),
teams (leader, members); the audit log page (admin and auditor) is :mod:`core.security.audit_page`. Every change
is audited by :mod:`core.security.users`; every page refuses non-admins (403, audited)."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from core.errors import Conflict, PermissionDenied, ValidationError
from core.i18n import N_
from core.security import audit, audit_page, users
from core.security.access import policy
from core.security.account import ROUTES as ACCOUNT_ROUTES
from core.security.handover_routes import ROUTES as HANDOVER_ROUTES
from core.security.models import Session, Team, TeamMember, User, UserRole
from core.security.principal import Principal
from core.web import form_str, render, require_user

LANGUAGES = ("en", "zh_CN")


async def _admin(request: Request) -> Principal:
    who = require_user(request)
    if not who.is_admin:
        await audit.record("denied", model="core.user", detail=f"admin page {request.method} {request.url.path}")
        raise PermissionDenied(N_("administrators only"))
    return who


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, str) and value.isdigit() else None


async def known_roles() -> set[str]:
    return set(policy().roles) | {r["name"] for r in await users.custom_roles()}


async def _role_choices() -> list[dict[str, str]]:
    declared = [{"name": r.name, "label": r.label} for r in policy().roles.values()]
    custom = [{"name": r["name"], "label": r["label"]} for r in await users.custom_roles()]
    return sorted(declared + custom, key=lambda r: r["name"])


# --- users -------------------------------------------------------------------------------------------------

async def user_list(request: Request, error: str = "", status: int = 200) -> Response:
    await _admin(request)
    rows = await User.select(User.id, User.login, User.name, User.email, User.is_active).order_by(User.login)
    roles: dict[int, list[str]] = {}
    for r in await UserRole.select(UserRole.user, UserRole.role).order_by(UserRole.role):
        roles.setdefault(r["user"], []).append(r["role"])
    return await render(request, "core/admin_users.html", status=status, users=rows, roles=roles,
                  all_roles=await _role_choices(), error=error)


async def user_create(request: Request) -> Response:
    await _admin(request)
    form = await request.form()
    try:
        user_id = await users.create_user(
            form_str(form, "login", required=True, max_length=150), form_str(form, "name"),
            str(form.get("password", "")), roles=[str(r) for r in form.getlist("roles")],
            email=form_str(form, "email"), known_roles=await known_roles())
    except (ValidationError, Conflict) as exc:
        return await user_list(request, error=exc.message, status=exc.status)
    return RedirectResponse(f"/admin/users/{user_id}", status_code=303)


async def user_detail(request: Request, error: str = "", status: int = 200) -> Response:
    await _admin(request)
    user_id = int(request.path_params["id"])
    user = await User.select(User.id, User.login, User.name, User.email, User.language, User.is_active,
                             User.last_login_at).where(User.id == user_id).first()
    if user is None:
        from core.errors import NotFound

        raise NotFound(N_("user %(id)s not found") % {"id": user_id})
    held = {r["role"] for r in await UserRole.select(UserRole.role).where(UserRole.user == user_id)}
    live = await Session.count().where((Session.user == user_id) & Session.revoked_at.is_null())
    teams = await Team.select(Team.name).where(Team.id.is_in(
        [r["team"] for r in await TeamMember.select(TeamMember.team).where(TeamMember.user == user_id)] or [0]))
    return await render(request, "core/admin_user.html", status=status, u=user, held=held, sessions=live,
                  teams=[t["name"] for t in teams], all_roles=await _role_choices(), languages=LANGUAGES,
                  error=error)


async def user_update(request: Request) -> Response:
    who = await _admin(request)
    user_id = int(request.path_params["id"])
    form = await request.form()
    chosen = [str(r) for r in form.getlist("roles")]
    if user_id == who.user_id and "admin" not in chosen:
        return await user_detail(request, error="You cannot remove your own administrator role.", status=422)
    language = form_str(form, "language") or "en"
    try:
        if language not in LANGUAGES:
            raise ValidationError({"language": N_("must be one of %(choices)s") % {"choices": ", ".join(LANGUAGES)}})
        await users.update_user(user_id, name=form_str(form, "name", max_length=200),
                                email=form_str(form, "email", max_length=254), language=language)
        await users.set_roles(user_id, chosen, known_roles=await known_roles())
    except ValidationError as exc:
        return await user_detail(request, error=exc.message, status=422)
    return RedirectResponse(f"/admin/users/{user_id}", status_code=303)


async def user_toggle(request: Request) -> Response:
    who = await _admin(request)
    user_id = int(request.path_params["id"])
    form = await request.form()
    active = form.get("active") == "1"
    if user_id == who.user_id and not active:
        return await user_detail(request, error="You cannot deactivate yourself.", status=422)
    await users.set_active(user_id, active)
    return RedirectResponse(f"/admin/users/{user_id}", status_code=303)


async def user_password(request: Request) -> Response:
    await _admin(request)
    user_id = int(request.path_params["id"])
    form = await request.form()
    try:
        await users.set_password(user_id, str(form.get("password", "")))
    except ValidationError as exc:
        return await user_detail(request, error=exc.message, status=422)
    return RedirectResponse(f"/admin/users/{user_id}", status_code=303)


# --- roles -------------------------------------------------------------------------------------------------

async def role_list(request: Request, error: str = "", status: int = 200) -> Response:
    await _admin(request)
    pol = policy()
    declared = [{"name": r.name, "label": r.label, "implies": sorted(pol.implied.get(r.name, ()))}
                for r in sorted(pol.roles.values(), key=lambda r: r.name)]
    return await render(request, "core/admin_roles.html", status=status, declared=declared,
                  custom=await users.custom_roles(), all_roles=await _role_choices(), error=error)


async def _save_role(request: Request, role_id: int | None) -> Response:
    await _admin(request)
    form: FormData = await request.form()
    try:
        await users.save_role(form_str(form, "name", max_length=60), form_str(form, "label", max_length=200),
                              [str(r) for r in form.getlist("implies")], declared=set(policy().roles),
                              role_id=role_id)
    except (ValidationError, Conflict) as exc:
        return await role_list(request, error=exc.message, status=exc.status)
    return RedirectResponse("/admin/roles", status_code=303)


async def role_create(request: Request) -> Response:
    return await _save_role(request, None)


async def role_update(request: Request) -> Response:
    return await _save_role(request, int(request.path_params["id"]))


async def role_delete(request: Request) -> Response:
    await _admin(request)
    await users.delete_role(int(request.path_params["id"]))
    return RedirectResponse("/admin/roles", status_code=303)


# --- teams -------------------------------------------------------------------------------------------------

async def team_list(request: Request, error: str = "", status: int = 200) -> Response:
    await _admin(request)
    teams = await Team.select(Team.id, Team.name, Team.leader).order_by(Team.name)
    members: dict[int, set[int]] = {}
    for r in await TeamMember.select(TeamMember.team, TeamMember.user):
        members.setdefault(r["team"], set()).add(r["user"])
    people = await User.select(User.id, User.login, User.name).where(User.is_active == True).order_by(  # noqa: E712
        User.login)
    return await render(request, "core/admin_teams.html", status=status, teams=teams, members=members, people=people,
                  logins={p["id"]: p["login"] for p in people}, error=error)


def _team_form(form: FormData) -> tuple[int | None, list[int]]:
    leader = _int(form.get("leader"))
    members = [m for m in (_int(v) for v in form.getlist("members")) if m is not None]
    return leader, members


async def team_create(request: Request) -> Response:
    await _admin(request)
    form = await request.form()
    leader, members = _team_form(form)
    try:
        await users.create_team(form_str(form, "name", required=True, max_length=200), leader=leader,
                                members=members)
    except (ValidationError, Conflict) as exc:
        return await team_list(request, error=exc.message, status=exc.status)
    return RedirectResponse("/admin/teams", status_code=303)


async def team_update(request: Request) -> Response:
    await _admin(request)
    leader, members = _team_form(await request.form())
    await users.update_team(int(request.path_params["id"]), leader=leader, members=members)
    return RedirectResponse("/admin/teams", status_code=303)


ROUTES = [
    Route("/admin/users", user_list, methods=["GET"]),
    Route("/admin/users", user_create, methods=["POST"]),
    Route("/admin/users/{id:int}", user_detail, methods=["GET"]),
    Route("/admin/users/{id:int}", user_update, methods=["POST"]),
    Route("/admin/users/{id:int}/active", user_toggle, methods=["POST"]),
    Route("/admin/users/{id:int}/password", user_password, methods=["POST"]),
    Route("/admin/roles", role_list, methods=["GET"]),
    Route("/admin/roles", role_create, methods=["POST"]),
    Route("/admin/roles/{id:int}", role_update, methods=["POST"]),
    Route("/admin/roles/{id:int}/delete", role_delete, methods=["POST"]),
    Route("/admin/teams", team_list, methods=["GET"]),
    Route("/admin/teams", team_create, methods=["POST"]),
    Route("/admin/teams/{id:int}", team_update, methods=["POST"]),
    Route("/admin/audit", audit_page.audit_list, methods=["GET"]),
    *ACCOUNT_ROUTES,
    *HANDOVER_ROUTES,
]
