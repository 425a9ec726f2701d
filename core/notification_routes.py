"""The notification center: the list behind the header's bell, and its JSON API."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from core import notifications
from core.errors import ValidationError
from core.i18n import N_
from core.web import render, require_user


def _plain(row: dict[str, object]) -> dict[str, object]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items() if k != "dedup_key"}


async def notification_list(request: Request) -> Response:
    who = require_user(request)
    unread_only = request.query_params.get("unread") == "1"
    rows = await notifications.recent(who.user_id, 100, unread_only=unread_only)
    return await render(request, "core/notifications.html", rows=rows, unread_only=unread_only)


async def notification_read(request: Request) -> Response:
    """Mark one (``id``) or every notification of the signed-in user read; back to the list or to its link."""
    who = require_user(request)
    form = await request.form()
    raw = str(form.get("id", ""))
    if raw and not (raw.isdigit() and len(raw) < 19):
        raise ValidationError({"id": N_("must be a notification id")})
    await notifications.mark_read(who.user_id, [int(raw)] if raw else None)
    target = str(form.get("next", ""))
    safe = target if target.startswith("/") and not target.startswith("//") else "/notifications"
    return RedirectResponse(safe, status_code=303)


async def notification_api(request: Request) -> Response:
    """``GET /api/notifications?unread=1``: the newest 100, and the unread count."""
    who = require_user(request)
    rows = await notifications.recent(who.user_id, 100, unread_only=request.query_params.get("unread") == "1")
    return JSONResponse({"items": [_plain(r) for r in rows], "unread": await notifications.unread_count(who.user_id)})


async def notification_api_read(request: Request) -> Response:
    """``POST /api/notifications/read`` with ``{"ids": [...]}`` (or ``{}`` for all)."""
    who = require_user(request)
    try:
        body = await request.json()
    except ValueError:
        raise ValidationError({"body": N_("must be a JSON object")}) from None
    ids = body.get("ids") if isinstance(body, dict) else None
    if ids is not None and not (isinstance(ids, list) and all(
            isinstance(i, int) and not isinstance(i, bool) and 0 < i < 2**63 for i in ids)):
        raise ValidationError({"ids": N_("must be a list of notification ids")})
    done = await notifications.mark_read(who.user_id, ids)
    return JSONResponse({"marked": done, "unread": await notifications.unread_count(who.user_id)})


ROUTES = [
    Route("/notifications", notification_list, methods=["GET"], name="notification_list"),
    Route("/notifications/read", notification_read, methods=["POST"], name="notification_read"),
    Route("/api/notifications", notification_api, methods=["GET"], name="notification_api"),
    Route("/api/notifications/read", notification_api_read, methods=["POST"], name="notification_api_read"),
]
