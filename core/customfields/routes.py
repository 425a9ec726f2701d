"""The admin's custom fields: pages under ``/admin/fields`` (list per model, add, edit, archive, restore, purge
data, form layout) and the same over JSON under ``/api/admin/custom-fields`` and ``/api/admin/form-layouts``.
Signed-in administrators only (anonymous: the login page or a 401; others: 403, audited); the operations are
:mod:`core.customfields.admin`'s."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from core.customfields import admin, registry
from core.customfields.definitions import KIND_LABELS, KINDS, RULES, FieldDef, Option
from core.customfields.values import from_text, to_text
from core.errors import Conflict, NotFound, ValidationError
from core.web import render, require_user

# --- HTML ---------------------------------------------------------------------------------------------------


def _models() -> list[dict[str, str]]:
    from core.i18n import gettext

    return [{"model": m, "label": gettext(e.label)} for m, e in sorted(registry.extensible().items())]


def _targets() -> list[str]:
    from core import runtime

    return sorted({r.model for r in runtime.current().state.get("api_resources", [])
                   if not r.model.startswith("core.")})


def _roles() -> list[str]:
    from core.security.access import policy

    return sorted(r for r in policy().roles if r != "admin")


async def field_list(request: Request) -> Response:
    fields = await admin.listing(require_user(request))
    model = request.query_params.get("model", "")
    by_model: dict[str, list[FieldDef]] = {m["model"]: [] for m in _models()}
    for fd in fields:
        by_model.setdefault(fd.model, []).append(fd)
    return await render(request, "core/admin_fields.html", models=_models(), by_model=by_model, current=model,
                        kinds=KIND_LABELS)


def _options_text(raw: str) -> list[dict[str, str]]:
    out = []
    for line in raw.splitlines():
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split("|")]
        out.append({"key": parts[0], "en": parts[1] if len(parts) > 1 else "",
                    "zh": parts[2] if len(parts) > 2 else ""})
    return out


def _form_data(form: FormData, existing: FieldDef | None) -> dict[str, Any]:
    """A definition's admin input from the page's form (the JSON API takes it as it is)."""
    def text(name: str) -> str:
        value = form.get(name)
        return value.strip() if isinstance(value, str) else ""

    data: dict[str, Any] = {}
    if existing is None:
        data.update(model=text("model"), key=text("key"), kind=text("kind"))
    kind = existing.kind if existing else data["kind"]
    for name in ("label_en", "label_zh", "help_en", "help_zh", "min_value", "max_value", "pattern", "currency",
                 "target"):
        data[name] = text(name)
    data["options"] = _options_text(text("options"))
    for name in ("is_required", "is_filterable", "is_listed", "is_searchable"):
        data[name] = form.get(name) is not None
    length, sequence = text("max_length"), text("sequence") or "100"
    data["max_length"] = int(length) if length.isdigit() else (length or None)
    data["sequence"] = int(sequence) if sequence.isdigit() else sequence
    data["rules"] = {role: text(f"rule_{role}") for role in _roles() if text(f"rule_{role}") in RULES}
    default = text("default")
    if default and kind in KINDS:
        probe = FieldDef(id=0, model="", key="x", kind=kind, options=tuple(
            Option(o["key"], o["en"], o["zh"]) for o in data["options"]), currency=data["currency"].upper())
        try:
            data["default"] = from_text(probe, default)
        except ValueError as exc:
            raise ValidationError({"default": str(exc)}) from None
    else:
        data["default"] = None
    return data


async def field_edit(request: Request) -> Response:
    who = require_user(request)
    raw_id = request.path_params.get("id")
    existing = await admin.get(who, int(raw_id)) if raw_id is not None else None
    if existing is None:
        await admin.require_admin(who, "create")
    errors: dict[str, str] = {}
    values: dict[str, Any] = existing.as_dict() if existing else {
        "model": request.query_params.get("model", ""), "kind": "text", "sequence": 100, "rules": {}, "options": []}
    if existing is not None:
        values["options_text"] = "\n".join(f"{o.key} | {o.en} | {o.zh}" for o in existing.options)
        values["default_text"] = to_text(existing, existing.default)
    status = 200
    if request.method == "POST":
        form = await request.form()
        try:
            data = _form_data(form, existing)
            values = {**values, **data}
            if existing is None:
                saved = await admin.create(who, data)
            else:
                version = str(form.get("version") or "")
                saved = await admin.update(who, existing.id, data, int(version) if version.isdigit() else None)
            return RedirectResponse(f"/admin/fields?model={saved.model}#field-{saved.id}", status_code=303)
        except (ValidationError, Conflict) as exc:
            errors = dict(getattr(exc, "fields", None) or {"": exc.message})
            if isinstance(exc, Conflict) and getattr(exc, "field", None):
                errors = {str(exc.field): exc.message}
            status = exc.status
            values["options_text"] = str(form.get("options") or "")
            values["default_text"] = str(form.get("default") or "")
    return await render(request, "core/admin_field_form.html", status=status, field=existing, values=values,
                        errors=errors, models=_models(), kinds=KIND_LABELS, roles=_roles(), rules=RULES,
                        targets=_targets())


async def field_archive(request: Request) -> Response:
    fd = await admin.set_archived(require_user(request), int(request.path_params["id"]), True)
    return RedirectResponse(f"/admin/fields?model={fd.model}", status_code=303)


async def field_restore(request: Request) -> Response:
    fd = await admin.set_archived(require_user(request), int(request.path_params["id"]), False)
    return RedirectResponse(f"/admin/fields?model={fd.model}", status_code=303)


async def field_purge(request: Request) -> Response:
    who = require_user(request)
    field_id = int(request.path_params["id"])
    fd = await admin.get(who, field_id)
    form = await request.form()
    await admin.purge(who, field_id, str(form.get("confirm") or "").strip())
    return RedirectResponse(f"/admin/fields?model={fd.model}", status_code=303)


def _layout_form(form: FormData, names: list[str]) -> dict[str, Any]:
    sections: list[dict[str, Any]] = []
    for line in str(form.get("sections") or "").splitlines():
        parts = [p.strip() for p in line.split("|")]
        if parts and parts[0]:
            sections.append({"key": parts[0], "en": parts[1] if len(parts) > 1 else "",
                             "zh": parts[2] if len(parts) > 2 else "", "fields": []})
    placed: list[tuple[str, int, int, str]] = []
    for i, name in enumerate(names):
        section = str(form.get(f"section__{name}") or "")
        order = str(form.get(f"order__{name}") or "")
        if section:
            placed.append((section, int(order) if order.isdigit() else 1000 + i, i, name))
    by_key = {s["key"]: s for s in sections}
    for section, _, _, name in sorted(placed, key=lambda p: (p[1], p[2])):
        if section not in by_key:
            raise ValidationError({"sections": f"{name}: no section {section!r} (add it above first)"})
        by_key[section]["fields"].append(name)
    return {"sections": sections, "required": [n for n in names if form.get(f"required__{n}") is not None],
            "later": [n for n in names if form.get(f"later__{n}") is not None]}


async def layout_edit(request: Request) -> Response:
    who = require_user(request)
    await admin.require_admin(who, "layout")
    await registry.fresh()
    model = request.path_params["model"]
    if registry.extension(model) is None:
        raise NotFound(f"{model[:100]!r} takes no custom fields")
    names = admin.layout_fields(model)
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        try:
            await admin.save_layout(who, model, _layout_form(await request.form(), names))
            return RedirectResponse(f"/admin/fields/layout/{model}?saved=1", status_code=303)
        except ValidationError as exc:
            errors, status = exc.fields, exc.status
    lay = registry.layout(model)
    where = {n: (s.key, i + 1) for s in lay.sections for i, n in enumerate(s.fields)}
    labels = {fd.name: fd.label for fd in registry.definitions(model)}
    rows = [{"name": n, "label": labels.get(n, n), "section": where.get(n, ("", 0))[0],
             "order": where.get(n, ("", 0))[1] or "", "required": n in lay.required, "later": n in lay.later}
            for n in names]
    sections_text = "\n".join(f"{s.key} | {s.en} | {s.zh}" for s in lay.sections)
    return await render(request, "core/admin_layout.html", status=status, model=model, rows=rows,
                        sections=lay.sections, sections_text=sections_text, errors=errors,
                        saved=request.query_params.get("saved") == "1")


# --- JSON ---------------------------------------------------------------------------------------------------


async def _body(request: Request) -> dict[str, Any]:
    from core.api import json_body

    return await json_body(request)


def _id(request: Request) -> int:
    from core.values import record_id

    return record_id(request.path_params["id"])


async def api_list(request: Request) -> Response:
    model = request.query_params.get("model") or None
    fields = await admin.listing(require_user(request), model)
    return JSONResponse({"items": [f.as_dict() for f in fields], "kinds": list(KINDS), "rules": list(RULES),
                         "models": [{"model": m, "label": e.label, "path": "/api" + e.path}
                                    for m, e in sorted(registry.extensible().items())]})


async def api_create(request: Request) -> Response:
    fd = await admin.create(require_user(request), await _body(request))
    return JSONResponse(fd.as_dict(), status_code=201)


async def api_read(request: Request) -> Response:
    return JSONResponse((await admin.get(require_user(request), _id(request))).as_dict())


async def api_update(request: Request) -> Response:
    body = await _body(request)
    fd = await admin.update(require_user(request), _id(request), body, body.get("version"))
    return JSONResponse(fd.as_dict())


async def api_action(request: Request) -> Response:
    who, field_id, action = require_user(request), _id(request), request.path_params["action"]
    if action == "archive":
        return JSONResponse((await admin.set_archived(who, field_id, True)).as_dict())
    if action == "restore":
        return JSONResponse((await admin.set_archived(who, field_id, False)).as_dict())
    if action == "purge":
        confirm = (await _body(request)).get("confirm")
        count = await admin.purge(who, field_id, confirm if isinstance(confirm, str) else "")
        return JSONResponse({"purged": field_id, "records": count})
    raise NotFound(f"no action {action!r} (archive, restore, purge)")


async def api_layout(request: Request) -> Response:
    who = require_user(request)
    model = request.path_params["model"]
    if request.method == "PUT":
        saved = await admin.save_layout(who, model, await _body(request))
        return JSONResponse({**saved.as_dict(), "fields": admin.layout_fields(model)})
    await admin.require_admin(who, "layout")
    await registry.fresh()
    if registry.extension(model) is None:
        raise NotFound(f"{model[:100]!r} takes no custom fields")
    return JSONResponse({**registry.layout(model).as_dict(), "fields": admin.layout_fields(model)})


ROUTES: list[BaseRoute] = [
    Route("/admin/fields", field_list, methods=["GET"]),
    Route("/admin/fields/new", field_edit, methods=["GET", "POST"]),
    Route("/admin/fields/layout/{model:str}", layout_edit, methods=["GET", "POST"]),
    Route("/admin/fields/{id:int}", field_edit, methods=["GET", "POST"]),
    Route("/admin/fields/{id:int}/archive", field_archive, methods=["POST"]),
    Route("/admin/fields/{id:int}/restore", field_restore, methods=["POST"]),
    Route("/admin/fields/{id:int}/purge", field_purge, methods=["POST"]),
    Route("/api/admin/custom-fields", api_list, methods=["GET"]),
    Route("/api/admin/custom-fields", api_create, methods=["POST"]),
    Route("/api/admin/custom-fields/{id:int}", api_read, methods=["GET"]),
    Route("/api/admin/custom-fields/{id:int}", api_update, methods=["PATCH"]),
    Route("/api/admin/custom-fields/{id:int}/{action:str}", api_action, methods=["POST"]),
    Route("/api/admin/form-layouts/{model:str}", api_layout, methods=["GET", "PUT"]),
]
