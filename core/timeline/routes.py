"""The timeline's forms: write a note, follow or unfollow a record (then back to the record's page)."""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from core.errors import ValidationError
from core.i18n import N_
from core.timeline import notes
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


ROUTES = [
    Route("/timeline/notes", note_create, methods=["POST"], name="timeline_note"),
    Route("/timeline/follow", follow_toggle, methods=["POST"], name="timeline_follow"),
]
