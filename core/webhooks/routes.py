"""The administrator's webhooks: pages under ``/admin/webhooks`` (list, create, edit with the signing secret,
enable, disable, delete, delivery log with re-drive) and the same over JSON under ``/api/admin/webhooks``.
Administrators only (403, audited); the operations are :mod:`core.webhooks.subscriptions`'."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from core.errors import Conflict, ValidationError
from core.web import principal, render
from core.webhooks import events, signing, subscriptions

PAGE = 50


def _id(request: Request, name: str = "id") -> int:
    from core.values import record_id

    return record_id(request.path_params[name])


def _before(request: Request) -> int | None:
    from core.values import record_id

    raw = request.query_params.get("before", "")
    return record_id(raw, "before") if raw else None


def _form(form: FormData) -> dict[str, Any]:
    def text(name: str) -> str:
        value = form.get(name)
        return value.strip() if isinstance(value, str) else ""

    owner = text("owner")
    return {
        "name": text("name"),
        "url": text("url"),
        "events": [str(e) for e in form.getlist("events") if isinstance(e, str)],
        "owner": int(owner) if owner.isascii() and owner.isdigit() else owner,
        "is_active": form.get("is_active") is not None,
    }


async def _owners() -> list[dict[str, Any]]:
    from core.security.models import User

    return list(
        await User.select(User.id, User.login, User.name)
        .where(User.is_active == True)  # noqa: E712
        .order_by(User.login)
        .limit(500)
    )


# --- HTML ---------------------------------------------------------------------------------------------------


async def subscription_list(request: Request) -> Response:
    items = await subscriptions.listing(principal(request))
    return await render(request, "core/admin_webhooks.html", items=items)


async def subscription_edit(request: Request) -> Response:
    who = principal(request)
    raw_id = request.path_params.get("id")
    existing = await subscriptions.read(who, int(raw_id)) if raw_id is not None else None
    if existing is None:
        await subscriptions.require_admin(who, "create")
    values: dict[str, Any] = existing or {
        "name": "",
        "url": "",
        "events": [],
        "owner": who.user_id if who else 0,
        "is_active": True,
    }
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        form = await request.form()
        data = _form(form)
        values = {**values, **data}
        try:
            if existing is None:
                saved = await subscriptions.create(who, data)
            else:
                version = str(form.get("version") or "")
                saved = await subscriptions.update(
                    who, existing["id"], data, int(version) if version.isdigit() else None
                )
            return RedirectResponse(f"/admin/webhooks/{saved['id']}?saved=1", status_code=303)
        except (ValidationError, Conflict) as exc:
            errors = dict(getattr(exc, "fields", None) or {})
            if isinstance(exc, Conflict):
                errors = {str(exc.field or ""): exc.message}
            status = exc.status
    known = await events.known()
    recent = await subscriptions.deliveries(who, existing["id"], 5) if existing else []
    return await render(
        request,
        "core/admin_webhook_form.html",
        status=status,
        sub=existing,
        values=values,
        errors=errors,
        known=known,
        owners=await _owners(),
        recent=recent,
        header=signing.HEADER,
        window=signing.REPLAY_WINDOW,
    )


async def subscription_toggle(request: Request) -> Response:
    sub_id = _id(request)
    await subscriptions.set_active(principal(request), sub_id, request.url.path.endswith("/enable"))
    return RedirectResponse(f"/admin/webhooks#webhook-{sub_id}", status_code=303)


async def subscription_delete(request: Request) -> Response:
    await subscriptions.delete(principal(request), _id(request))
    return RedirectResponse("/admin/webhooks", status_code=303)


async def delivery_log(request: Request) -> Response:
    who = principal(request)
    sub = await subscriptions.read(who, _id(request))
    state = request.query_params.get("state") or None
    items = await subscriptions.deliveries(who, sub["id"], PAGE + 1, _before(request), state)
    more = items[PAGE]["id"] if len(items) > PAGE else None
    return await render(
        request, "core/admin_webhook_deliveries.html", sub=sub, items=items[:PAGE], more=more, state=state or ""
    )


async def delivery_redrive(request: Request) -> Response:
    row = await subscriptions.redrive(principal(request), _id(request, "delivery"))
    return RedirectResponse(f"/admin/webhooks/{row['subscription_id']}/deliveries", status_code=303)


# --- JSON ---------------------------------------------------------------------------------------------------


async def _body(request: Request) -> dict[str, Any]:
    from core.api import json_body

    return await json_body(request)


async def api_list(request: Request) -> Response:
    items = await subscriptions.listing(principal(request))
    return JSONResponse({"items": items, "events": await events.known()})


async def api_create(request: Request) -> Response:
    return JSONResponse(await subscriptions.create(principal(request), await _body(request)), status_code=201)


async def api_read(request: Request) -> Response:
    return JSONResponse(await subscriptions.read(principal(request), _id(request)))


async def api_update(request: Request) -> Response:
    body = await _body(request)
    return JSONResponse(await subscriptions.update(principal(request), _id(request), body, body.get("version")))


async def api_delete(request: Request) -> Response:
    await subscriptions.delete(principal(request), _id(request))
    return Response(status_code=204)


async def api_toggle(request: Request) -> Response:
    active = request.url.path.endswith("/enable")
    return JSONResponse(await subscriptions.set_active(principal(request), _id(request), active))


async def api_deliveries(request: Request) -> Response:
    from core.values import integer

    raw = request.query_params.get("limit", "50")
    limit = integer(int(raw) if raw.isascii() and raw.isdigit() else raw, "limit", (1, 200))
    items = await subscriptions.deliveries(
        principal(request), _id(request), limit, _before(request), request.query_params.get("state") or None
    )
    return JSONResponse({"items": items, "next": items[-1]["id"] if len(items) == limit else None})


async def api_redrive(request: Request) -> Response:
    return JSONResponse(await subscriptions.redrive(principal(request), _id(request, "delivery")), status_code=202)


ROUTES: list[BaseRoute] = [
    Route("/admin/webhooks", subscription_list, methods=["GET"]),
    Route("/admin/webhooks/new", subscription_edit, methods=["GET", "POST"]),
    Route("/admin/webhooks/{id:int}", subscription_edit, methods=["GET", "POST"]),
    Route("/admin/webhooks/{id:int}/enable", subscription_toggle, methods=["POST"]),
    Route("/admin/webhooks/{id:int}/disable", subscription_toggle, methods=["POST"]),
    Route("/admin/webhooks/{id:int}/delete", subscription_delete, methods=["POST"]),
    Route("/admin/webhooks/{id:int}/deliveries", delivery_log, methods=["GET"]),
    Route("/admin/webhooks/deliveries/{delivery:int}/redrive", delivery_redrive, methods=["POST"]),
    Route("/api/admin/webhooks", api_list, methods=["GET"]),
    Route("/api/admin/webhooks", api_create, methods=["POST"]),
    Route("/api/admin/webhooks/{id:int}", api_read, methods=["GET"]),
    Route("/api/admin/webhooks/{id:int}", api_update, methods=["PATCH"]),
    Route("/api/admin/webhooks/{id:int}", api_delete, methods=["DELETE"]),
    Route("/api/admin/webhooks/{id:int}/enable", api_toggle, methods=["POST"]),
    Route("/api/admin/webhooks/{id:int}/disable", api_toggle, methods=["POST"]),
    Route("/api/admin/webhooks/{id:int}/deliveries", api_deliveries, methods=["GET"]),
    Route("/api/admin/webhooks/deliveries/{delivery:int}/redrive", api_redrive, methods=["POST"]),
]
