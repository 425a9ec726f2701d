"""One's own account: preferences (language, time zone, e-mail notifications, password) and API tokens
(created with a subset of one's roles and an expiry, shown once, revocable)."""

from __future__ import annotations

import datetime as dt
import json

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from core import formatting, i18n
from core.errors import PermissionDenied, ValidationError
from core.i18n import N_
from core.security import audit, sessions, users
from core.security.models import ApiToken, User
from core.web import form_str, render, require_user

#: language code → its name in that language (a reader who cannot read the page still finds their own)
LANGUAGE_NAMES = {"zh_CN": "简体中文", "en": "English"}
#: field → its label, to name a field in an error message in the reader's language
FIELD_LABELS = {"language": "Language", "timezone": "Time zone", "has_email_notifications": "E-mail notifications",
                "current_password": "Current password", "new_password": "New password",
                "confirm_password": "Repeat the new password"}
NOTICES = {"preferences": "Preferences saved.", "password": "Password changed; your other sessions have ended."}


async def preferences(request: Request, *, errors: dict[str, str] | None = None,
                      values: dict[str, object] | None = None) -> Response:
    """The preferences page; after a refused save, ``errors`` (field → message) and the values sent."""
    who = require_user(request)
    row = await User.select(User.language, User.timezone, User.has_email_notifications).where(
        User.id == who.user_id).first()
    prefs = {**(row or {}), **(values or {})}
    prefs["language"] = prefs.get("language") or i18n.language()
    now = dt.datetime.now(dt.UTC)
    live_tokens = await ApiToken.count().where(
        (ApiToken.user == who.user_id) & ApiToken.revoked_at.is_null()
        & (ApiToken.expires_at.is_null() | (ApiToken.expires_at > now)))
    shown = {field: i18n.gettext("%(field)s: %(message)s") % {
        "field": i18n.gettext(FIELD_LABELS.get(field, field)), "message": i18n.gettext(message)}
        for field, message in (errors or {}).items()}
    done = request.query_params.get("done", "")
    return await render(request, "core/preferences.html", status=422 if errors else 200, prefs=prefs,
                        errors=shown, languages=list(LANGUAGE_NAMES.items()), timezones=formatting.timezones(),
                        site_timezone=formatting.site_timezone(), now=now, live_tokens=live_tokens,
                        notice=i18n.gettext(NOTICES[done]) if done in NOTICES else "")


async def preferences_save(request: Request) -> Response:
    who = require_user(request)
    form = await request.form()
    values: dict[str, object] = {"language": str(form.get("language", ""))[:20],
                                 "timezone": str(form.get("timezone", ""))[:100],
                                 "has_email_notifications": form.get("has_email_notifications") == "1"}
    try:
        await users.set_preferences(who.user_id, language=str(values["language"]), timezone=str(values["timezone"]),
                                    has_email_notifications=bool(values["has_email_notifications"]))
    except ValidationError as exc:
        return await preferences(request, errors=exc.fields, values=values)
    i18n.set_language(str(values["language"]).replace("-", "_"))
    return RedirectResponse("/account/preferences?done=preferences", status_code=303)


async def password_change(request: Request) -> Response:
    who = require_user(request)
    info = request.scope.get("state", {}).get("session")
    if who.via_token or info is None:
        raise PermissionDenied(N_("change your password from a logged-in page"))
    form = await request.form()
    try:
        await users.change_own_password(who.user_id, str(form.get("current_password", "")),
                                        str(form.get("new_password", "")),
                                        confirm=str(form.get("confirm_password", "")), keep_session=info.session_id)
    except ValidationError as exc:
        return await preferences(request, errors=exc.fields)
    return RedirectResponse("/account/preferences?done=password", status_code=303)


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
        raise PermissionDenied(N_("an API token cannot create tokens"))
    form = await request.form()
    wanted = sorted({str(r) for r in form.getlist("roles")})
    if not wanted:
        raise ValidationError({"roles": N_("choose at least one role")})
    beyond = [r for r in wanted if r not in who.roles]
    if beyond:
        await audit.record("denied", model="core.api_token", detail=f"token roles beyond the user's: {beyond}")
        raise PermissionDenied(N_("a token cannot carry roles you do not have: %(roles)s") % {
            "roles": ", ".join(beyond)}, field="roles")
    days = form_str(form, "days") or "90"
    if not days.isdigit() or not 1 <= int(days) <= 3650:
        raise ValidationError({"days": N_("must be between 1 and 3650")})
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
    Route("/account/preferences", preferences, methods=["GET"]),
    Route("/account/preferences", preferences_save, methods=["POST"]),
    Route("/account/password", password_change, methods=["POST"]),
    Route("/account/tokens", token_list, methods=["GET"]),
    Route("/account/tokens", token_create, methods=["POST"]),
    Route("/account/tokens/{id:int}/revoke", token_revoke, methods=["POST"]),
]
