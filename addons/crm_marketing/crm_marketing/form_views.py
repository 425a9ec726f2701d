"""Pages of the capture forms: the list, the editor, a form's page (its public link, the HTML snippet to embed,
the latest submissions and the journeys it triggers), and the public page and endpoint under
``/marketing/public/forms/{id}`` (no login, no CSRF token: rate-limited per address, with a honeypot)."""

from __future__ import annotations

from typing import Any

from crm_contacts.api import PERSON_MODEL
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from core.errors import NotFound, ValidationError
from core.i18n import language
from core.web import access, render
from crm_marketing import forms
from crm_marketing.manifest import FORM, SEGMENT
from crm_marketing.models import CaptureForm, FormSubmission, Journey, Segment

NEW_FORM: dict[str, Any] = {"id": None, "name": "", "title_en": "", "title_zh": "", "fields": [
    {"field": "name", "required": True}, {"field": "email", "required": True}], "tags": [], "segment": None,
    "thanks_en": "", "thanks_zh": "", "creates_lead": True, "is_active": True}
SUBMISSIONS_SHOWN = 50


def _id(request: Request) -> int:
    try:
        return int(request.path_params["id"])
    except (KeyError, ValueError):
        raise NotFound("not found") from None


async def _lists(acc: Any) -> list[dict[str, Any]]:
    if not acc.can(SEGMENT):
        return []
    return list(await (await acc.select(Segment, SEGMENT, Segment.id, Segment.name, where=Segment.is_static.eq(True)))
                .order_by(Segment.name))


def _posted(form: Any) -> dict[str, Any]:
    """The editor's fields as :func:`forms.check` takes them (one checkbox pair per person field)."""
    fields = [{"field": k, "required": form.get(f"required_{k}") == "on"} for k in forms.FIELDS
              if form.get(f"ask_{k}") == "on"]
    values: dict[str, Any] = {k: form.get(k, "") for k in ("name", "title_en", "title_zh", "thanks_en", "thanks_zh",
                                                           "segment")}
    values["fields"] = fields
    values["tags"] = [t for t in str(form.get("tags", "")).replace("，", ",").split(",") if t.strip()]
    values["creates_lead"] = form.get("creates_lead") == "on"
    values["is_active"] = form.get("is_active") == "on"
    return values


async def form_list(request: Request) -> Response:
    acc = access(request)
    rows = list(await (await acc.select(CaptureForm, FORM, CaptureForm.id, CaptureForm.name, CaptureForm.is_active))
                .order_by(CaptureForm.id, ascending=False))
    return await render(request, "crm_marketing/form_list.html", rows=rows,
                        counts=await forms.counts([int(r["id"]) for r in rows]), may_create=acc.can(FORM, "create"))


async def form_new(request: Request) -> Response:
    acc = access(request)
    await acc.require(FORM, "create")
    return await render(request, "crm_marketing/form_edit.html", f=dict(NEW_FORM), errors={}, lists=await _lists(acc),
                        choices=forms.FIELDS)


async def form_edit(request: Request) -> Response:
    acc = access(request)
    row = await acc.get(CaptureForm, FORM, _id(request), action="update")
    shown = {**row, "fields": forms.loaded(row["fields"], []), "tags": forms.loaded(row["tags"], [])}
    return await render(request, "crm_marketing/form_edit.html", f=shown, errors={}, lists=await _lists(acc),
                        choices=forms.FIELDS)


async def form_save(request: Request) -> Response:
    acc = access(request)
    form_id = _id(request) if "id" in request.path_params else None
    values = _posted(await request.form())
    try:
        form_id = await forms.save(acc, values, form_id)
    except ValidationError as exc:
        return await render(request, "crm_marketing/form_edit.html", status=422,
                            f={**NEW_FORM, **values, "id": form_id}, errors=exc.fields, lists=await _lists(acc),
                            choices=forms.FIELDS)
    return RedirectResponse(f"/marketing/forms/{form_id}", status_code=303)


async def form_detail(request: Request) -> Response:
    acc = access(request)
    row = await acc.get(CaptureForm, FORM, _id(request))
    shown = {**row, "fields": forms.loaded(row["fields"], []), "tags": forms.loaded(row["tags"], [])}
    recent = [acc.present(PERSON_MODEL, {**dict(r), **forms.loaded(r["data"], {})}) for r in
              await FormSubmission.select().where(FormSubmission.form == row["id"])
              .order_by(FormSubmission.id, ascending=False).limit(SUBMISSIONS_SHOWN)]
    triggered = [j for j in await Journey.select(Journey.id, Journey.name, Journey.trigger)
                 if forms.loaded(j["trigger"], {}).get("type") == "form"
                 and forms.loaded(j["trigger"], {}).get("form") == row["id"]]
    url = forms.public_url(row["id"])
    # the snippet alone, without the page layout: what a site pastes into its own page
    snippet = request.app.state.templates.get_template("crm_marketing/form_snippet.html").render(
        f=shown, url=url, labels=forms.FIELDS, honeypot=forms.HONEYPOT, zh=language().startswith("zh"))
    return await render(request, "crm_marketing/form_detail.html", f=shown, url=url,
                        snippet=snippet.strip(), recent=recent, journeys=triggered,
                        counts=(await forms.counts([row["id"]]))[row["id"]], labels=forms.FIELDS,
                        may_update=acc.can(FORM, "update"))


# --- public -------------------------------------------------------------------------------------------------------


async def _public_form(request: Request) -> dict[str, Any]:
    try:
        form = await forms.active(int(request.path_params["id"]))
    except ValueError:
        form = None
    if form is None:
        raise NotFound("no such form")
    return form


async def public_form(request: Request) -> Response:
    form = await _public_form(request)
    return await render(request, "crm_marketing/public_form.html", f=form, labels=forms.FIELDS, values={},
                        utm=forms.utm_of({}, request.query_params), errors={}, too_many=False, honeypot=forms.HONEYPOT,
                        zh=language().startswith("zh"))


async def public_form_post(request: Request) -> Response:
    form = await _public_form(request)
    raw = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    ip = request.client.host if request.client else ""
    zh = language().startswith("zh")
    try:
        await forms.throttle(ip)
        await forms.submit(form, raw, request.query_params, ip=ip, language="zh_CN" if zh else "en")
    except forms.TooMany:
        return await render(request, "crm_marketing/public_form.html", status=429, f=form, labels=forms.FIELDS,
                            values=raw, utm=forms.utm_of(raw, request.query_params), errors={}, too_many=True,
                            honeypot=forms.HONEYPOT, zh=zh)
    except ValidationError as exc:
        return await render(request, "crm_marketing/public_form.html", status=422, f=form, labels=forms.FIELDS,
                            values=raw, utm=forms.utm_of(raw, request.query_params), errors=exc.fields, too_many=False,
                            honeypot=forms.HONEYPOT, zh=zh)
    return await render(request, "crm_marketing/public_form_thanks.html", f=form, zh=zh)


FORM_ROUTES: list[BaseRoute] = [
    Route("/forms", form_list, name="form_list"),
    Route("/forms", form_save, methods=["POST"], name="form_create"),
    Route("/forms/new", form_new, name="form_new"),
    Route("/forms/{id:int}", form_detail, name="form_detail"),
    Route("/forms/{id:int}", form_save, methods=["POST"], name="form_update"),
    Route("/forms/{id:int}/edit", form_edit, name="form_edit"),
    Route("/public/forms/{id:int}", public_form, name="public_form"),
    Route("/public/forms/{id:int}", public_form_post, methods=["POST"], name="public_form_post"),
]
