"""Export, PDF, HTML edit form, count and reveal for crm_testbase notes — all through core.security.access."""

import csv
import io

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from core import db
from core.reports import render_pdf_async
from core.runtime import current
from core.security import audit
from core.templating import static_dirs
from core.web import access

NOTE = "crm_testbase.note"
FIELDS = ("title", "phone", "internal", "owner")


def _note():
    from crm_testbase.models import Note

    return Note


async def note_count(request: Request) -> Response:
    return JSONResponse({"count": await access(request).count(_note(), NOTE)})


async def note_export(request: Request) -> Response:
    header, rows = await access(request).export(_note(), NOTE, FIELDS)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return Response(out.getvalue(), media_type="text/csv")


async def note_pdf(request: Request) -> Response:
    acc = access(request)
    row = acc.present(NOTE, await acc.get(_note(), NOTE, int(request.path_params["id"])))
    html = request.app.state.templates.get_template("crm_sectest/note.html").render(note=row)
    pdf = await render_pdf_async(html, assets=static_dirs(current().addons))
    return Response(pdf, media_type="application/pdf")


async def note_update(request: Request) -> Response:
    """An HTML form post: only title/phone/internal are on the form; anything else is mass assignment."""
    acc = access(request)
    note = _note()
    record_id = int(request.path_params["id"])
    form = await request.form()
    values = {k: str(v) for k, v in form.items() if k != "csrf_token"}
    await acc.check_write(NOTE, values, allowed=("title", "phone", "internal"))
    async with db.atomic():
        before = await acc.get(note, NOTE, record_id, action="update")
        await note.update({note._meta.get_column_by_name(k): v for k, v in values.items()}).where(
            note.id == record_id)
        await audit.record("update", model=NOTE, record_id=record_id,
                           changes=audit.diff({k: before.get(k) for k in values}, values))
    return RedirectResponse(f"/notes/{record_id}", status_code=303)


async def note_reveal(request: Request) -> Response:
    acc = access(request)
    value = await acc.reveal(_note(), NOTE, int(request.path_params["id"]), request.path_params["field"])
    return JSONResponse({"value": value})


async def public_whoami(request: Request) -> Response:
    """A signed-link endpoint's view of the request: whose principal it would act as (none, ever)."""
    from core.security import context

    who, ctx = request.state.principal, context.principal()
    return JSONResponse({"state": who.login if who else None, "context": ctx.login if ctx else None,
                         "session": request.state.session is not None})


ROUTES = [
    Route("/count", note_count),
    Route("/public/whoami", public_whoami, methods=["GET", "POST"], name="public_whoami"),
    Route("/export.csv", note_export),
    Route("/notes/{id:int}.pdf", note_pdf),
    Route("/notes/{id:int}", note_update, methods=["POST"]),
    Route("/notes/{id:int}/reveal/{field:str}", note_reveal, methods=["POST"]),
]
