"""Custom values on the way into a record and out of it: the write path's checks (rights, kinds, links,
required, defaults), the merge into what is stored, and what a reader sees (hidden dropped, masked masked).

On a write, the model's JSON column carries only the fields being set (``{"vip_level": "gold"}``; ``null``
clears one): fields not named keep their value, so a role that does not see a field cannot wipe it, and archived
fields keep theirs. On a read, only active fields appear. Everywhere a field is named (errors, rules, audit
diffs, exports, imports) its name is ``custom.<key>``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from piccolo.table import Table

from core.customfields import registry
from core.customfields.definitions import FieldDef, is_key
from core.customfields.values import check, display
from core.errors import NotFound, PermissionDenied, ValidationError

if TYPE_CHECKING:
    from core.security.access import Access


def loaded(value: Any) -> dict[str, Any]:
    """A JSON column's value (the driver may give text) as a dict; anything else is no custom values."""
    if isinstance(value, str):
        try:
            value = json.loads(value or "{}")
        except ValueError:
            return {}
    return dict(value) if isinstance(value, dict) else {}


def names(model: str, raw: Any) -> list[str]:
    """The field names a custom-column value of a write sets (``custom.key``), for the rights check."""
    column = registry.column_of(model)
    if column is None or not isinstance(raw, dict):
        return []
    return [f"{column}.{key}" for key in raw]


async def prepare(acc: Access, model: str, values: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:
    """``values`` with the custom column checked: an object of known, active fields, each value of its kind,
    links to records the user may read; on create, defaults filled in and required fields present.
    422 naming ``custom.<key>``. (Rights are :meth:`Access.check_write`'s, which knows these names too.)"""
    ext = registry.extension(model)
    if ext is None:
        return dict(values)
    await registry.fresh()
    column = ext.column
    if column not in values and not creating:
        return dict(values)
    raw = values.get(column)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ValidationError({column: "must be an object of custom fields"})
    out: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for key, value in raw.items():
        fd = registry.definition(model, key) if is_key(key) else None
        if fd is None:
            errors[f"{column}.{str(key)[:60]}"] = f"is not a field of {model}"
            continue
        try:
            out[key] = check(fd, value)
        except ValueError as exc:
            errors[fd.name] = str(exc)
    for fd in registry.definitions(model):
        if creating and out.get(fd.key) is None and fd.default is not None:
            with contextlib.suppress(ValueError):  # a default the field no longer accepts (options changed)
                out[fd.key] = check(fd, fd.default)
        if fd.is_required and fd.name not in errors and (fd.key in out or creating) and out.get(fd.key) is None:
            errors[fd.name] = "is required"
    if errors:
        raise ValidationError(errors)
    await check_links(acc, model, out)
    return {**values, column: {k: v for k, v in out.items() if v is not None} if creating else out}


async def check_links(acc: Access, model: str, partial: Mapping[str, Any]) -> None:
    """A link is checked like a read of the record it names: out of reach or missing, one 422 naming it."""
    from core.security.access import REFERENCE_REFUSED

    for key, value in partial.items():
        fd = registry.definition(model, key)
        if fd is None or fd.kind != "link" or value is None:
            continue
        table = target_table(fd.target)
        try:
            if table is None:
                raise NotFound(fd.target)
            await acc.get(table, fd.target, int(value))
        except (NotFound, PermissionDenied):
            raise ValidationError({fd.name: REFERENCE_REFUSED}) from None


def target_table(model: str) -> type[Table] | None:
    """The table of a model a link may point at: one an API resource serves (so reads of it are granted)."""
    from core import runtime

    current = runtime._current
    for res in current.state.get("api_resources", []) if current else []:
        if res.model == model:
            table: type[Table] = res.table
            return table
    return None


def merge(model: str, before: Any, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` of an update with the custom column's partial object merged into the stored one."""
    column = registry.column_of(model)
    if column is None or column not in values:
        return dict(values)
    merged = {**loaded(before), **loaded(values[column])}
    return {**values, column: {k: v for k, v in merged.items() if v is not None}}


def flat(model: str, values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``values`` with the custom column spread into ``custom.<key>`` entries (audit diffs name fields)."""
    column = registry.column_of(model)
    if values is None or column is None or column not in values:
        return dict(values) if values is not None else None
    out = {k: v for k, v in values.items() if k != column}
    out.update({f"{column}.{k}": v for k, v in loaded(values[column]).items()})
    return out


def present(acc: Access, model: str, value: Any) -> dict[str, Any]:
    """The custom values ``acc`` may see: active fields only, hidden ones dropped, masked ones masked."""
    from core.security.access import policy
    from core.security.masking import mask

    defs = registry.definitions(model)
    if not defs or value in (None, "", "{}"):  # a list page's usual row: nothing to decode
        return {}
    data = loaded(value)
    if not data:
        return {}
    pol = policy()
    out: dict[str, Any] = {}
    for fd in defs:
        if fd.key not in data:
            continue
        rule, masker, _ = pol.field_rule(acc.roles, model, fd.name)
        if rule == "hidden":
            continue
        out[fd.key] = mask(data[fd.key], masker) if rule == "masked" else data[fd.key]
    return out


def visible(acc: Access, model: str, *, listed: bool = False) -> list[FieldDef]:
    """The active fields ``acc`` sees (masked included), optionally only those shown as list columns."""
    shown = set(acc.visible_fields(model, [f.name for f in registry.definitions(model)]))
    return [f for f in registry.definitions(model) if f.name in shown and (f.is_listed or not listed)]


def cells(fields: Iterable[FieldDef], presented: Any) -> dict[str, str]:
    """``{custom.key: text}`` of a presented row's custom values, for list columns and exports."""
    data = loaded(presented)
    return {fd.name: display(fd, data.get(fd.key)) for fd in fields}


@dataclass(frozen=True)
class Shown:
    """One custom value on a record page: its field, what to print and, for a link, where it leads."""

    field: FieldDef
    text: str
    url: str | None = None


async def shown(acc: Access, model: str, presented: Any) -> list[Shown]:
    """The custom values of one presented record as its page prints them (links by the name of the record,
    when the user may read it)."""
    data = loaded(presented)
    out: list[Shown] = []
    for fd in visible(acc, model):
        value = data.get(fd.key)
        if value is None or value == "":
            continue
        text, url = display(fd, value), None
        if fd.kind == "link" and isinstance(value, int):
            text, url = await _link_label(acc, fd, value)
        out.append(Shown(fd, text, url))
    return out


async def _link_label(acc: Access, fd: FieldDef, record_id: int) -> tuple[str, str | None]:
    table = target_table(fd.target)
    if table is None or not acc.can(fd.target):
        return f"#{record_id}", None
    label = next((c for c in table._meta.columns if c._meta.name in ("name", "title", "number", "subject")), None)
    if label is None:
        return f"#{record_id}", None
    query = await acc.select(table, fd.target, label, where=table._meta.primary_key == record_id)
    row = await query.first()
    if row is None:
        return f"#{record_id}", None
    shown_row = acc.present(fd.target, dict(row))
    return str(shown_row.get(label._meta.name) or f"#{record_id}"), None


def search_terms(model: str, value: Any) -> str:
    """Lowercased values of the searchable text and choice fields no role sees hidden or masked (so a term
    never finds a record by a value some reader may not see)."""
    data = loaded(value)
    parts: list[str] = []
    for fd in registry.definitions(model):
        if not fd.is_searchable or fd.rules or data.get(fd.key) in (None, ""):
            continue
        if fd.kind in ("text", "long_text", "choice", "choices"):
            parts.append(display(fd, data[fd.key]))
            if fd.kind in ("choice", "choices"):
                parts.append(" ".join(data[fd.key]) if isinstance(data[fd.key], list) else str(data[fd.key]))
    return " ".join(parts).lower()


def schema(model: str, *, write: bool = False, update: bool = False) -> dict[str, Any]:
    """The JSON Schema of ``model``'s custom column in the API: an object of its active fields (a create must
    carry the required ones that have no default); a field some role sees masked may read as masked text."""
    from core.customfields.values import schema as field_schema

    props: dict[str, Any] = {}
    required: list[str] = []
    for fd in registry.definitions(model):
        one = field_schema(fd, write=write)
        if not write and "masked" in fd.rules.values():
            one = {"anyOf": [one, {"type": "string", "description": "masked"}]}
        props[fd.key] = one
        if write and not update and fd.is_required and fd.default is None:
            required.append(fd.key)
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False,
                           "description": "custom fields (docs/engines.md); on update only those sent change"}
    if required:
        out["required"] = required
    return out
