"""One's own account: API tokens (created with a subset of one's roles and an expiry, shown once, revocable)."""

from __future__ import annotations

import datetime as dt
import json

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from core.errors import PermissionDenied, ValidationError
from core.security import audit, sessions
from core.security.models import ApiToken
from core.web import form_str, render, require_user


async def token_list(request: Request, secret: str = "", status: int = 200) -> Response:
    who = require_user(request)
    rows = await ApiToken.select(ApiToken.id, ApiToken.name, ApiToken.prefix, ApiToken.roles, ApiToken.expires_at,
                                 ApiToken.revoked_at, ApiToken.last_used_at).where(
        ApiToken.user == who.user_id).order_by(ApiToken.id)
    for row in rows:
        row["roles"] = json.loads(row["roles"]) if isinstance(row["roles"], str) else row["roles"]
    return await render(request, "core/tokens.html", status=status, tokens=rows, secret=secret, roles=sorted(who.roles),
                  now=dt.datetime.now(dt.UTC))


async def token_create(request: Request) -> Response:
    who = require_user(request)
    if who.via_token:
        raise PermissionDenied("an API token cannot create tokens")
    form = await request.form()
    wanted = sorted({str(r) for r in form.getlist("roles")})
    if not wanted:
        raise ValidationError({"roles": "choose at least one role"})
    beyond = [r for r in wanted if r not in who.roles]
    if beyond:
        await audit.record("denied", model="core.api_token", detail=f"token roles beyond the user's: {beyond}")
        raise PermissionDenied(f"a token cannot carry roles you do not have: {', '.join(beyond)}", field="roles")
    days = form_str(form, "days") or "90"
    if not days.isdigit() or not 1 <= int(days) <= 3650:
        raise ValidationError({"days": "must be between 1 and 3650"})
    name = form_str(form, "name", required=True, max_length=200)
    secret = await sessions.create_token(who.user_id, name, roles=wanted, days=int(days))
    await audit.record("create", model="core.api_token", record_id=secret[:12],
                       changes={"name": [None, name], "roles": [None, wanted], "days": [None, int(days)]})
    return await token_list(request, secret=secret, status=201)


async def token_revoke(request: Request) -> Response:
    who = require_user(request)
    token_id = int(request.path_params["id"])
    if await sessions.revoke_token(token_id, who.user_id):
        await audit.record("revoke", model="core.api_token", record_id=token_id)
    return RedirectResponse("/account/tokens", status_code=303)


ROUTES = [
    Route("/account/tokens", token_list, methods=["GET"]),
    Route("/account/tokens", token_create, methods=["POST"]),
    Route("/account/tokens/{id:int}/revoke", token_revoke, methods=["POST"]),
]
