"""Settings pages generated from API resources: an addon marks a ``Resource`` with ``settings="Sales"`` and
gets a list and an edit form under ``/settings`` for it, with no view code of its own.

The pages go through the same write path as the JSON API (``core.api.create_values`` / ``update_values`` /
``delete_values``): the same rights, record and field rules, validation, version check and audit. Meant for
configuration tables (stages, rules, price lists, SLA policies, segments), not for the main work screens.
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

from piccolo.columns import JSON, Boolean, Date, ForeignKey, Integer, Numeric, Text, Timestamp, Timestamptz
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from core.api import Resource, create_values, delete_values, update_values
from core.customfields import forms as custom_forms
from core.customfields import records as custom_records
from core.errors import Conflict, NotFound, UserError, ValidationError
from core.i18n import N_
from core.security.access import Access, model_of, policy
from core.web import access, render

MAX_ROWS = 500
MAX_OPTIONS = 500


def _resources(request: Request) -> list[Resource]:
    found: list[Resource] = request.app.state.runtime.state.get("api_resources", [])
    return [r for r in found if r.settings]


def _resource(request: Request) -> Resource:
    path = "/" + request.path_params["path"]
    for res in _resources(request):
        if res.path == path:
            return res
    raise NotFound(N_("no settings page %(path)s") % {"path": path})


def _input(column: Any) -> str:
    """The HTML input kind for a column."""
    if isinstance(column, Boolean):
        return "checkbox"
    if isinstance(column, ForeignKey):
        return "select"
    if isinstance(column, (Integer, Numeric)):
        return "number"
    if isinstance(column, Date):
        return "date"
    if isinstance(column, (Timestamp, Timestamptz)):
        return "datetime-local"
    if isinstance(column, (Text, JSON)):
        return "textarea"
    return "text"


async def _options(column: ForeignKey[Any], acc: Access) -> list[tuple[int, str]]:
    """Choices for a reference: ``id — name`` of the referenced rows (their names only, nothing else), those
    the user may read when a grant governs them (the write accepts no others: ``Access.check_references``)."""
    target = column._foreign_key_meta.resolved_references
    pk = target._meta.primary_key
    label = next((c for c in target._meta.columns if c._meta.name in ("name", "login", "key")), pk)
    model = model_of(target)
    if model is not None and not acc.can(model):
        return []
    query = await acc.select(target, model, pk, label) if model is not None else target.select(pk, label)
    rows = await query.order_by(label).limit(MAX_OPTIONS)
    return [(r[pk._meta.name], str(r[label._meta.name])) for r in rows]


async def _fields(res: Resource, acc: Access) -> list[dict[str, Any]]:
    out = []
    rules = policy()
    for name in res.writable:
        # only what this user may edit: a masked value posted back would overwrite the real one, and a
        # read-only field would make every save a 403
        if name == res.custom or rules.field_rule(acc.roles, res.model, name)[0] != "editable":
            continue  # (custom fields: core.customfields.forms)
        column = res.table._meta.get_column_by_name(name)
        kind = _input(column)
        out.append({"name": name, "kind": kind, "required": name in res.required,
                    "options": await _options(column, acc) if isinstance(column, ForeignKey) else []})
    return out


def _parse(res: Resource, form: Any, fields: list[dict[str, Any]]) -> dict[str, Any]:
    """Form strings as column values; a bad one is a 422 naming the field (never a 500)."""
    values: dict[str, Any] = {}
    for f in fields:
        name, kind = f["name"], f["kind"]
        raw = form.get(name)
        if kind == "checkbox":
            values[name] = raw is not None
            continue
        raw = raw.strip() if isinstance(raw, str) else ""
        column = res.table._meta.get_column_by_name(name)
        if raw == "":
            values[name] = None if column._meta.null or kind in ("select", "date", "datetime-local") else (
                column.default if not callable(column.default) else "")
            continue
        try:
            if kind == "select" or isinstance(column, Integer):
                values[name] = int(raw)
            elif isinstance(column, Numeric):
                values[name] = decimal.Decimal(raw)
            elif kind == "date":
                values[name] = dt.date.fromisoformat(raw)
            elif kind == "datetime-local":
                values[name] = dt.datetime.fromisoformat(raw).replace(tzinfo=dt.UTC)
            else:
                values[name] = raw
        except (ValueError, decimal.InvalidOperation):
            raise ValidationError({name: f"{raw[:50]!r} is not a valid {kind}"}) from None
    return values


async def index(request: Request) -> Response:
    acc = access(request)
    sections: dict[str, list[Resource]] = {}
    for res in _resources(request):
        if acc.can(res.model, "read"):
            sections.setdefault(res.settings, []).append(res)
    return await render(request, "core/settings_index.html", sections=sections)


async def listing(request: Request) -> Response:
    acc = access(request)
    res = _resource(request)
    shown = ["id", *acc.visible_fields(res.model, res.fields)]
    columns = [res.table._meta.get_column_by_name(n) for n in shown]
    order = res.table._meta.get_column_by_name(res.sortable[-1] if len(res.sortable) > 1 else "id")
    rows = await (await acc.select(res.table, res.model, *columns)).order_by(order).limit(MAX_ROWS)
    presented = [acc.present(res.model, dict(r)) for r in rows]
    labels: dict[str, str] = {}
    if res.custom in shown:  # the custom column as one column per listed field
        listed = custom_records.visible(acc, res.model, listed=True)
        shown = [n for n in shown if n != res.custom] + [fd.name for fd in listed]
        labels = {fd.name: fd.label for fd in listed}
        presented = [{**r, **custom_records.cells(listed, r.get(res.custom))} for r in presented]
    return await render(request, "core/settings_list.html", res=res, shown=shown, labels=labels,
                  rows=presented,
                  can_create=acc.can(res.model, "create") and bool(res.writable))


async def edit(request: Request) -> Response:
    acc = access(request)
    res = _resource(request)
    raw_id = request.path_params.get("id")
    record_id = int(raw_id) if raw_id is not None else None
    row: dict[str, Any] = {}
    if record_id is not None:
        row = acc.present(res.model, await acc.get(res.table, res.model, record_id))
    else:
        await acc.require(res.model, "create")
    fields = await _fields(res, acc)
    creating = record_id is None
    custom = await custom_forms.inputs(acc, res.model, row.get(res.custom), creating=creating) if res.custom else []
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        form = await request.form()
        try:
            if form.get("delete") and record_id is not None:
                await delete_values(acc, res, record_id)
                return RedirectResponse(f"/settings{res.path}", status_code=303)
            values = _parse(res, form, fields)
            if res.custom:
                values[res.custom] = custom_forms.parse(acc, res.model, form, creating=creating)
            if record_id is None:
                await create_values(acc, res, values)
            else:
                version = str(form.get("version") or "")
                await update_values(acc, res, record_id, values, int(version) if version.isdigit() else None)
            return RedirectResponse(f"/settings{res.path}", status_code=303)
        except (ValidationError, Conflict, UserError) as exc:
            # the form comes back with what was typed and the reason next to the field
            errors = dict(getattr(exc, "fields", None) or {"": exc.message})
            status = exc.status
            row = {**row, **{k: v for k, v in form.items() if k not in ("csrf_token",)}}
            if res.custom:
                custom = await custom_forms.inputs(acc, res.model, row.get(res.custom), creating=creating,
                                                   typed=form)
    return await render(request, "core/settings_form.html", status=status, res=res, fields=fields, row=row,
                  custom=custom,
                  record_id=record_id, errors=errors,
                  can_delete=record_id is not None and acc.can(res.model, "delete"))


ROUTES: list[BaseRoute] = [
    Route("/settings", index, methods=["GET"]),
    Route("/settings/{path:path}/new", edit, methods=["GET", "POST"]),
    Route("/settings/{path:path}/{id:int}", edit, methods=["GET", "POST"]),
    Route("/settings/{path:path}", listing, methods=["GET"]),
]
