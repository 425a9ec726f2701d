"""The timeline's forms (write a note, follow or unfollow a record, then back to the record's page) and its JSON
API (``/api/timeline/{model}/{record_id}``: read; ``…/notes``: write a note; ``…/follow``: PUT or DELETE)."""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from core.errors import ValidationError
from core.i18n import N_
from core.timeline import feed, notes
from core.web import access, form_str


async def _record(request: Request) -> tuple[FormData, str, int, str]:
    form = await request.form()
    model = form_str(form, "model", required=True, max_length=100)
    raw = form_str(form, "record_id", required=True, max_length=19)
    if not raw.isdigit():
        raise ValidationError({"record_id": N_("must be a record id")})
    target = str(form.get("next", "") or "")
    return form, model, int(raw), target if target.startswith("/") and not target.startswith("//") else "/"


async def note_create(request: Request) -> Response:
    """``POST /timeline/notes``: ``model``, ``record_id``, ``body`` (``@login`` mentions), ``next``."""
    acc = access(request)
    form, model, record_id, target = await _record(request)
    body = form.get("body", "")
    await notes.add_note(acc, model, record_id, body if isinstance(body, str) else "", target)
    return RedirectResponse(f"{target}#timeline", status_code=303)


async def follow_toggle(request: Request) -> Response:
    """``POST /timeline/follow``: ``model``, ``record_id``, ``follow`` (1 to follow, 0 to stop), ``next``."""
    acc = access(request)
    form, model, record_id, target = await _record(request)
    if form.get("follow") == "0":
        await notes.readable(acc, model, record_id)
        await notes.unfollow(acc, model, record_id)
    else:
        await notes.follow(acc, model, record_id, target)
    return RedirectResponse(f"{target}#timeline", status_code=303)


def _api_record(request: Request) -> tuple[str, int]:
    raw = str(request.path_params["record_id"])
    if not raw.isdigit() or len(raw) > 18:
        raise ValidationError({"record_id": N_("must be a record id")})
    return str(request.path_params["model"])[:100], int(raw)


async def api_read(request: Request) -> Response:
    """The record's timeline as the caller may see it (404 when they may not read the record)."""
    acc = access(request)
    model, record_id = _api_record(request)
    await notes.readable(acc, model, record_id)
    built = await feed.build(acc, model, record_id)
    items = [
        {
            "at": i.at.isoformat(),
            "kind": i.kind,
            "title": i.title,
            "body": i.body,
            "url": i.url,
            "source": i.source,
            "author": i.author,
            "changes": [{"field": c.field, "label": c.label, "old": c.old, "new": c.new} for c in i.changes],
        }
        for i in built.items
    ]
    return JSONResponse(
        {
            "model": model,
            "record_id": record_id,
            "following": built.following,
            "followers": built.followers,
            "items": items,
        }
    )


async def api_note(request: Request) -> Response:
    """``{"body": "…"}`` (``@login`` mentions): 201 with the note's id."""
    acc = access(request)
    model, record_id = _api_record(request)
    try:
        body = await request.json()
    except ValueError:
        raise ValidationError({"body": N_("must be a JSON object")}) from None
    text = body.get("body") if isinstance(body, dict) else None
    if not isinstance(text, str):
        raise ValidationError({"body": N_("is required")})
    note_id = await notes.add_note(acc, model, record_id, text)
    return JSONResponse({"id": note_id}, status_code=201)


async def api_follow(request: Request) -> Response:
    """PUT follows the record, DELETE stops; answers whether the caller follows it now."""
    acc = access(request)
    model, record_id = _api_record(request)
    await notes.readable(acc, model, record_id)
    if request.method == "DELETE":
        await notes.unfollow(acc, model, record_id)
        return JSONResponse({"following": False})
    await notes.follow(acc, model, record_id, check=False)
    return JSONResponse({"following": True})


ROUTES = [
    Route("/timeline/notes", note_create, methods=["POST"], name="timeline_note"),
    Route("/timeline/follow", follow_toggle, methods=["POST"], name="timeline_follow"),
    Route("/api/timeline/{model:str}/{record_id:str}", api_read, methods=["GET"], name="timeline_api"),
    Route("/api/timeline/{model:str}/{record_id:str}/notes", api_note, methods=["POST"], name="timeline_api_note"),
    Route(
        "/api/timeline/{model:str}/{record_id:str}/follow",
        api_follow,
        methods=["PUT", "DELETE"],
        name="timeline_api_follow",
    ),
]
