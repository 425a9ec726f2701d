"""The public pages a campaign mail links to: no login, the signed token is the key.

- ``GET /marketing/public/unsubscribe/{token}`` shows a confirmation page; only a ``POST`` unsubscribes (RFC 8058:
  mail clients POST ``List-Unsubscribe=One-Click`` to the same URL, without cookies, hence no CSRF token under
  ``/<mount>/public/``: see docs/security.md).
- ``GET /marketing/public/open/{token}.gif`` the pixel; ``GET /marketing/public/click/{token}`` records and
  redirects to the URL signed into the token (never one taken from the query: no open redirect).

A forged or tampered token is a 400 and changes nothing.
"""

from __future__ import annotations

import base64
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from core.web import render
from crm_marketing import tokens, tracking

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_STORE = {"cache-control": "no-store, private"}


async def _bad(request: Request) -> Response:
    return await render(request, "crm_marketing/public_message.html", status=400, title="invalid")


def _agent(request: Request) -> str:
    return request.headers.get("user-agent", "")


async def _unsubscriber(request: Request) -> tuple[int, Any] | None:
    """The recipient an unsubscribe / preference link names, with its row; None for a forged, tampered or
    stale token (the caller answers 400)."""
    try:
        recipient_id = int(tokens.load("unsubscribe", request.path_params["token"]))
    except (tokens.BadToken, ValueError, TypeError):
        return None
    row = await tracking.recipient(recipient_id)
    return None if row is None else (recipient_id, row)


async def public_unsubscribe(request: Request) -> Response:
    found = await _unsubscriber(request)
    if found is None:
        return await _bad(request)
    _, row = found
    return await render(
        request, "crm_marketing/public_unsubscribe.html", token=request.path_params["token"], email=row["email"]
    )


async def public_unsubscribe_post(request: Request) -> Response:
    found = await _unsubscriber(request)
    if found is None:
        return await _bad(request)
    await tracking.unsubscribe(found[0], _agent(request))
    return await render(request, "crm_marketing/public_message.html", title="unsubscribed")


async def public_preferences(request: Request) -> Response:
    """The preference page: the address, whether it gets marketing mail, a button to change that."""
    found = await _unsubscriber(request)
    if found is None:
        return await _bad(request)
    recipient_id, row = found
    return await render(
        request,
        "crm_marketing/public_preferences.html",
        token=request.path_params["token"],
        email=row["email"],
        state=await tracking.status(recipient_id),
    )


async def public_preferences_post(request: Request) -> Response:
    found = await _unsubscriber(request)
    if found is None:
        return await _bad(request)
    recipient_id = found[0]
    form = await request.form()
    if form.get("action") == "subscribe":
        await tracking.resubscribe(recipient_id, _agent(request))
    else:
        await tracking.unsubscribe(recipient_id, _agent(request))
    return RedirectResponse(f"/marketing/public/preferences/{request.path_params['token']}?saved=1", status_code=303)


async def public_open(request: Request) -> Response:
    try:
        recipient_id = int(tokens.load("open", request.path_params["token"]))
    except (tokens.BadToken, ValueError, TypeError):
        return Response(b"", status_code=400)
    await tracking.hit(recipient_id, "open", _agent(request))
    return Response(PIXEL, media_type="image/gif", headers=NO_STORE)


async def public_click(request: Request) -> Response:
    try:
        recipient_id, url = tokens.load("click", request.path_params["token"])
        recipient_id = int(recipient_id)
    except (tokens.BadToken, ValueError, TypeError):
        return await _bad(request)
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return await _bad(request)
    await tracking.hit(recipient_id, "click", _agent(request), url)
    return RedirectResponse(url, status_code=302, headers=NO_STORE)


PUBLIC_ROUTES: list[BaseRoute] = [
    Route("/public/unsubscribe/{token:str}", public_unsubscribe, name="public_unsubscribe"),
    Route("/public/unsubscribe/{token:str}", public_unsubscribe_post, methods=["POST"], name="public_unsubscribe_post"),
    Route("/public/preferences/{token:str}", public_preferences, name="public_preferences"),
    Route("/public/preferences/{token:str}", public_preferences_post, methods=["POST"], name="public_preferences_post"),
    Route("/public/open/{token:str}.gif", public_open, name="public_open"),
    Route("/public/click/{token:str}", public_click, name="public_click"),
]
