"""What the sales pages share with the JSON API and with crm_contacts' pages: one write path
(``core.api.create_values`` / ``update_values``: rights, field rules, custom fields, audit, automation) and the
kernel's custom-field helpers for forms, record pages and lists (docs/engines.md, "Custom fields")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core import customfields
from core.api import Resource, create_values, custom_filters, update_values
from core.errors import NotFound
from core.i18n import N_
from core.runtime import current
from core.security.access import Access


def resource(model: str) -> Resource:
    """The API resource serving ``model`` (the one the JSON API writes through)."""
    found: list[Resource] = current().state.get("api_resources", [])
    for res in found:
        if res.model == model:
            return res
    raise NotFound(N_("no resource for %(model)s") % {"model": model})


async def save(acc: Access, model: str, values: dict[str, Any], form: Mapping[str, Any], *,
               record_id: int | None = None, version: str = "") -> int:
    """Create (``record_id`` None) or update one record from a page's form: the built-in ``values`` and the
    custom fields the form posted, checked exactly like the same call on the JSON API."""
    res = resource(model)
    creating = record_id is None
    if res.custom:
        custom = customfields.parse(acc, model, form, creating=creating)
        if custom or creating:
            values = {**values, res.custom: custom}
    if creating:
        on_form = [*values, *(f.name for f in customfields.definitions(model))]
        customfields.check_required(model, values, on_form)
        return await create_values(acc, res, values)
    assert record_id is not None
    await update_values(acc, res, record_id, values, int(version) if version.isdigit() else None)
    return record_id


async def inputs(acc: Access, model: str, stored: Any = None, *, creating: bool,
                 typed: Mapping[str, Any] | None = None) -> list[customfields.Input]:
    """The custom inputs of ``model``'s form for this user (the kernel macro ``custom_input`` draws them)."""
    return await customfields.inputs(acc, model, stored, creating=creating, typed=typed)


async def listing(acc: Access, model: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """A list page's custom parts: the columns (fields marked *column in lists*), the filter controls
    (filterable fields the user sees in clear), the where-clauses of the ``cf_<key>`` filters given, and the
    values typed in them."""
    await customfields.fresh()
    clear = [f for f in customfields.visible(acc, model) if not acc.is_masked(model, f.name)]
    filters = [f for f in clear if f.is_filterable]
    return {"listed": customfields.visible(acc, model, listed=True), "filters": filters,
            "where": custom_filters(acc, resource(model), params),
            "values": {f.param: str(params.get(f.param, "")) for f in filters}}


def cells(acc: Access, model: str, listed: list[customfields.FieldDef],
          rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row with its listed custom values as text (masked or absent as the user sees them)."""
    if not listed:
        return rows
    return [{**r, **customfields.cells(listed, acc.present(model, {"custom": r.get("custom")})["custom"])}
            for r in rows]
