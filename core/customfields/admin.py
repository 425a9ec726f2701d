"""What an admin does with custom fields and form layouts: add, edit, archive, restore, purge a field's data,
lay out a form. Admins only; every change audited (model ``core.custom_field`` / ``core.form_layout``).

Archiving keeps every value (the field is shown nowhere and refused on writes; restoring brings it back as it
was); purging, allowed only on an archived field, deletes its values from every record and then the definition
(its key becomes free again): an explicit second step, audited with the number of records it touched.
A filterable field has an expression index (created when the flag is set or the field restored, dropped when
the flag is cleared or the field archived).
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import re
from collections.abc import Mapping
from typing import Any

from core import db
from core.customfields import registry, storage
from core.customfields.definitions import FILTERABLE, KINDS, RULES, FieldDef, Layout, Option, is_key
from core.customfields.values import check
from core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from core.i18n import N_
from core.security import audit
from core.security.principal import Principal

FIELD_MODEL = "core.custom_field"
LAYOUT_MODEL = "core.form_layout"
MAX_OPTIONS = 200
MAX_FIELDS = 200  # per model
_OPTION_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
_EDITABLE = ("label_en", "label_zh", "help_en", "help_zh", "options", "is_required", "default", "min_value",
             "max_value", "pattern", "max_length", "currency", "is_filterable", "is_listed", "is_searchable",
             "rules", "sequence", "target")
_FIELDS = ("model", "key", "kind", *_EDITABLE)


async def require_admin(who: Principal | None, what: str) -> Principal:
    if who is None or not who.is_admin:
        await audit.record("denied", model=FIELD_MODEL, detail=f"custom fields: {what}", principal=who)
        raise PermissionDenied(N_("administrators only"))
    return who


def _text(data: Mapping[str, Any], name: str, limit: int) -> str:
    value = data.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError({name: "must be text"})
    value = value.strip()
    if len(value) > limit or "\x00" in value:
        raise ValidationError({name: f"must be at most {limit} characters"})
    return value


def _bool(data: Mapping[str, Any], name: str) -> bool:
    value = data.get(name, False)
    if not isinstance(value, bool):
        raise ValidationError({name: "must be true or false"})
    return value


def _options(raw: Any) -> list[dict[str, str]]:
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_OPTIONS:
        raise ValidationError({"options": f"must be a list of at most {MAX_OPTIONS} options"})
    out: list[dict[str, str]] = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise ValidationError({"options": 'each option is {"key": ..., "en": ..., "zh": ...}'})
        key = item["key"].strip()
        if not _OPTION_KEY.match(key):
            raise ValidationError({"options": f"option key {key[:40]!r}: letters, digits, _ . - (at most 40)"})
        if any(o["key"] == key for o in out):
            raise ValidationError({"options": f"option key {key!r} appears twice"})
        out.append({"key": key, "en": _text(item, "en", 100), "zh": _text(item, "zh", 100)})
    return out


def _known_roles() -> set[str]:
    from core.security.access import policy

    return set(policy().roles)


def _rules(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValidationError({"rules": 'must map roles to hidden, masked or readonly: {"marketing": "masked"}'})
    known = _known_roles()
    out: dict[str, str] = {}
    for role, rule in raw.items():
        if rule in (None, "", "editable"):
            continue
        if rule not in RULES:
            raise ValidationError({"rules": f"{role}: must be one of {', '.join(RULES)}"})
        if role not in known or role == "admin":
            raise ValidationError({"rules": f"{str(role)[:60]!r} is not a role (admin sees every field)"})
        out[str(role)] = str(rule)
    return out


def _bound(kind: str, name: str, raw: Any) -> str:
    if raw in (None, ""):
        return ""
    text = str(raw).strip()
    try:
        if kind in ("number", "money"):
            number = decimal.Decimal(text)
            if not number.is_finite():
                raise ValueError(text)
            return format(number, "f")
        if kind == "date":
            return dt.date.fromisoformat(text).isoformat()
    except (ValueError, decimal.InvalidOperation):
        raise ValidationError({name: f"must be a {'date' if kind == 'date' else 'number'}"}) from None
    raise ValidationError({name: "only numbers, money and dates have a range"})


def _stored(values: Mapping[str, Any]) -> dict[str, Any]:
    """JSON columns as JSON text (a ``None`` default is the JSON ``null``, not SQL NULL)."""
    return {k: json.dumps(v, ensure_ascii=False) if k in ("options", "rules", "default") else v
            for k, v in values.items()}


def _clean(data: Mapping[str, Any], existing: FieldDef | None) -> dict[str, Any]:
    """A definition's stored values from admin input (all fields on create, those given on update)."""
    unknown = sorted(set(data) - set(_FIELDS) - {"version"})
    if unknown:
        raise ValidationError({unknown[0]: "is not a property of a custom field"})
    if existing is not None:
        for fixed in ("model", "key", "kind"):
            if fixed in data and data[fixed] != getattr(existing, fixed):
                raise ValidationError({fixed: "cannot change once the field exists (add another field)"})
    model = existing.model if existing else _text(data, "model", 100)
    ext = registry.extension(model)
    if ext is None:
        raise ValidationError({"model": f"{model[:100]!r} takes no custom fields (one of: "
                                        f"{', '.join(sorted(registry.extensible()))})"})
    kind = existing.kind if existing else data.get("kind")
    if kind not in KINDS:
        raise ValidationError({"kind": f"must be one of {', '.join(KINDS)}"})
    merged = {**(existing.as_dict() if existing else {}), **{k: v for k, v in data.items() if k != "version"}}
    out: dict[str, Any] = {"model": model, "kind": kind}
    if existing is None:
        key = data.get("key")
        if not is_key(key):
            raise ValidationError({"key": N_(
                "must be a lowercase letter then up to 39 lowercase letters, digits or _")})
        out["key"] = key
    for name, limit in (("label_en", 100), ("label_zh", 100), ("help_en", 300), ("help_zh", 300)):
        out[name] = _text(merged, name, limit)
    if not (out["label_en"] or out["label_zh"]):
        raise ValidationError({"label_en": N_("give the field a label (English or Chinese)")})
    out["options"] = _options(merged.get("options")) if kind in ("choice", "choices") else []
    if kind in ("choice", "choices") and not out["options"]:
        raise ValidationError({"options": N_("a choice field needs at least one option")})
    for name in ("is_required", "is_filterable", "is_listed", "is_searchable"):
        out[name] = _bool(merged, name)
    if out["is_filterable"] and kind not in FILTERABLE:
        raise ValidationError({"is_filterable": f"a {kind} field cannot be filtered on"})
    if out["is_searchable"] and kind not in ("text", "long_text", "choice", "choices"):
        raise ValidationError({"is_searchable": N_("only text and choice fields are searched")})
    out["min_value"] = _bound(kind, "min_value", merged.get("min_value"))
    out["max_value"] = _bound(kind, "max_value", merged.get("max_value"))
    out["pattern"] = _text(merged, "pattern", 200) if kind in ("text", "long_text") else ""
    if out["pattern"]:
        try:
            re.compile(out["pattern"])
        except re.error as exc:
            raise ValidationError({"pattern": f"is not a regular expression: {exc}"}) from None
    length = merged.get("max_length")
    if length not in (None, "") and kind in ("text", "long_text"):
        if isinstance(length, bool) or not isinstance(length, int) or not 1 <= length <= 20_000:
            raise ValidationError({"max_length": N_("must be a whole number from 1 to 20000")})
        out["max_length"] = length
    else:
        out["max_length"] = None
    out["currency"] = _text(merged, "currency", 3).upper() if kind == "money" else ""
    if kind == "money" and out["currency"] and not re.fullmatch("[A-Z]{3}", out["currency"]):
        raise ValidationError({"currency": N_("must be a three-letter code like CNY")})
    out["target"] = _text(merged, "target", 100) if kind == "link" else ""
    if kind == "link":
        from core.customfields.records import target_table

        if target_table(out["target"]) is None:
            raise ValidationError({"target": N_("must name a model records can link to (one with an API)")})
    out["rules"] = _rules(merged.get("rules"))
    sequence = merged.get("sequence", 100)
    if isinstance(sequence, bool) or not isinstance(sequence, int) or not 0 <= sequence <= 100_000:
        raise ValidationError({"sequence": N_("must be a whole number from 0 to 100000")})
    out["sequence"] = sequence
    default = merged.get("default")
    if kind == "link" and default not in (None, ""):
        raise ValidationError({"default": N_("a link has no default")})
    probe = FieldDef(id=0, model=model, key=out.get("key") or (existing.key if existing else "x"), kind=kind,
                     column=ext.column, options=tuple(Option(**o) for o in out["options"]),
                     min_value=out["min_value"], max_value=out["max_value"], pattern=out["pattern"],
                     max_length=out["max_length"], currency=out["currency"])
    try:
        out["default"] = check(probe, default)
    except ValueError as exc:
        raise ValidationError({"default": str(exc)}) from None
    return out


async def _row(field_id: int) -> dict[str, Any]:
    from core.models import CustomField

    row = await CustomField.select().where(CustomField.id == field_id).first()
    if row is None or registry.extension(row["model"]) is None:
        raise NotFound(f"no custom field {field_id}")
    return dict(row)


def _def(row: Mapping[str, Any]) -> FieldDef:
    return FieldDef.from_row(row, registry.column_of(str(row["model"])) or "custom")


async def get(who: Principal | None, field_id: int) -> FieldDef:
    await require_admin(who, "read")
    await registry.fresh()
    return _def(await _row(field_id))


async def listing(who: Principal | None, model: str | None = None) -> list[FieldDef]:
    await require_admin(who, "list")
    await registry.fresh()
    models = [model] if model else sorted(registry.extensible())
    return [f for m in models for f in registry.all_definitions(m)]


async def _after(table_fd: tuple[Any, FieldDef], *, index: bool | None) -> None:
    """Outside the transaction: the index follows the flag, then every worker's cache reloads."""
    table, fd = table_fd
    if index is True:
        await storage.create_index(table, fd)
    elif index is False:
        await storage.drop_index(table, fd)
    registry.invalidate()
    await registry.fresh(force=True)


async def create(who: Principal | None, data: Mapping[str, Any]) -> FieldDef:
    from core.models import CustomField

    await require_admin(who, "create")
    await registry.fresh()
    values = _clean(data, None)
    if len(registry.all_definitions(values["model"])) >= MAX_FIELDS:
        raise ValidationError({"model": f"has {MAX_FIELDS} custom fields already"})
    async with db.atomic():
        same = (CustomField.model == values["model"]) & (CustomField.key == values["key"])
        if await CustomField.exists().where(same):
            raise Conflict(f"{values['model']} has a field {values['key']!r} already (archived fields keep their key "
                           "until purged)", field="key")
        rows = await CustomField.insert(CustomField(**_stored(values))).returning(CustomField.id)
        fd = _def(await _row(int(rows[0]["id"])))
        await audit.record("create", model=FIELD_MODEL, record_id=fd.id, changes=audit.diff(None, fd.as_dict()),
                           principal=who)
    ext = registry.extension(fd.model)
    assert ext is not None
    await _after((ext.table, fd), index=True if fd.is_filterable else None)
    return fd


async def update(who: Principal | None, field_id: int, data: Mapping[str, Any], expected: Any) -> FieldDef:
    from core.models import CustomField

    await require_admin(who, "update")
    await registry.fresh()
    if isinstance(expected, bool) or not isinstance(expected, int):
        raise ValidationError({"version": N_("is required (the version you read), so concurrent edits are not lost")})
    async with db.atomic():
        before = _def(await _row(field_id))
        values = _clean(data, before)
        values.pop("model", None)
        values["updated_at"] = dt.datetime.now(dt.UTC)
        changes: dict[Any, Any] = {CustomField._meta.get_column_by_name(k): v for k, v in _stored(values).items()}
        changes[CustomField.version] = CustomField.version + 1
        done = await CustomField.update(changes).where(
            (CustomField.id == field_id) & (CustomField.version == expected)).returning(CustomField.id)
        if not done:
            raise Conflict(f"custom field {field_id} was changed by someone else (version {before.version})",
                           field="version")
        after = _def(await _row(field_id))
        await audit.record("update", model=FIELD_MODEL, record_id=field_id, principal=who,
                           changes=audit.diff(before.as_dict(), after.as_dict()))
    index = None
    if not after.is_archived and after.is_filterable != before.is_filterable:
        index = after.is_filterable
    ext = registry.extension(after.model)
    assert ext is not None
    await _after((ext.table, after), index=index)
    return after


async def set_archived(who: Principal | None, field_id: int, archived: bool) -> FieldDef:
    """Archive (values kept, shown nowhere) or restore a field."""
    from core.models import CustomField

    await require_admin(who, "archive" if archived else "restore")
    async with db.atomic():
        before = _def(await _row(field_id))
        if before.is_archived == archived:
            return before
        await CustomField.update({CustomField.is_archived: archived, CustomField.version: CustomField.version + 1,
                                  CustomField.updated_at: dt.datetime.now(dt.UTC)}).where(CustomField.id == field_id)
        await audit.record("archive" if archived else "restore", model=FIELD_MODEL, record_id=field_id,
                           detail=f"{before.model} {before.name}", principal=who)
        after = _def(await _row(field_id))
    ext = registry.extension(after.model)
    assert ext is not None
    await _after((ext.table, after), index=(not archived) if after.is_filterable else None)
    return after


async def purge(who: Principal | None, field_id: int, confirm: str) -> int:
    """Delete an archived field's values from every record, then the field; returns how many records held
    a value. ``confirm`` must repeat the field's key."""
    from core.models import CustomField, FormLayout

    await require_admin(who, "purge")
    before = _def(await _row(field_id))
    if not before.is_archived:
        raise Conflict(N_("archive the field first: only an archived field's data can be deleted"), field="is_archived")
    if confirm != before.key:
        raise ValidationError({"confirm": f"type the field's key ({before.key}) to delete its data"})
    ext = registry.extension(before.model)
    assert ext is not None
    await storage.drop_index(ext.table, before)
    async with db.atomic():
        count = await storage.purge_values(ext.table, before)
        await CustomField.delete().where(CustomField.id == field_id)
        for row in await FormLayout.select().where(FormLayout.model == before.model):
            layout = Layout.from_row(row).as_dict()
            _drop_name(layout, before.name)
            await FormLayout.update({FormLayout.sections: json.dumps(layout["sections"], ensure_ascii=False),
                                     FormLayout.required: json.dumps(layout["required"]),
                                     FormLayout.later: json.dumps(layout["later"]),
                                     FormLayout.version: FormLayout.version + 1}).where(FormLayout.id == row["id"])
        await audit.record("purge", model=FIELD_MODEL, record_id=field_id, principal=who,
                           detail=f"{before.model} {before.name}: values deleted from {count} records",
                           changes=audit.diff(before.as_dict(), None))
    registry.invalidate()
    await registry.fresh(force=True)
    return count


def _drop_name(layout: dict[str, Any], name: str) -> None:
    for section in layout["sections"]:
        section["fields"] = [f for f in section["fields"] if f != name]
    layout["required"] = [f for f in layout["required"] if f != name]
    layout["later"] = [f for f in layout["later"] if f != name]


# --- form layouts ---------------------------------------------------------------------------------------------

def layout_fields(model: str) -> list[str]:
    """What a layout of ``model`` may place: the writable fields of its API resource and its active custom
    fields (``custom.key``)."""
    from core.customfields.records import target_table

    ext = registry.extension(model)
    if ext is None or target_table(model) is None:
        return []
    from core import runtime

    res = next(r for r in runtime.current().state.get("api_resources", []) if r.model == model)
    builtin = [f for f in res.writable if f != ext.column]
    return [*builtin, *[fd.name for fd in registry.definitions(model)]]


async def save_layout(who: Principal | None, model: str, data: Mapping[str, Any]) -> Layout:
    from core.models import FormLayout

    await require_admin(who, "layout")
    await registry.fresh()
    if registry.extension(model) is None:
        raise NotFound(f"{model[:100]!r} has no form layout (it takes no custom fields)")
    known = set(layout_fields(model))
    raw_sections = data.get("sections") or []
    if not isinstance(raw_sections, list) or len(raw_sections) > 20:
        raise ValidationError({"sections": N_("must be a list of at most 20 sections")})
    sections: list[dict[str, Any]] = []
    placed: set[str] = set()
    for item in raw_sections:
        if not isinstance(item, dict) or not is_key(item.get("key")):
            raise ValidationError({"sections": 'each section is {"key": "main", "en": …, "zh": …, "fields": […]}'})
        fields = item.get("fields") or []
        if not isinstance(fields, list) or any(not isinstance(f, str) for f in fields):
            raise ValidationError({"sections": f"{item['key']}: fields must be a list of field names"})
        for name in fields:
            if name not in known:
                raise ValidationError({"sections": f"{name[:60]!r} is not a field of {model}"})
            if name in placed:
                raise ValidationError({"sections": f"{name!r} is in two sections"})
            placed.add(name)
        if any(s["key"] == item["key"] for s in sections):
            raise ValidationError({"sections": f"section {item['key']!r} appears twice"})
        sections.append({"key": item["key"], "en": _text(item, "en", 100), "zh": _text(item, "zh", 100),
                         "fields": list(fields)})
    lists: dict[str, list[str]] = {}
    for name in ("required", "later"):
        value = data.get(name) or []
        if not isinstance(value, list) or any(not isinstance(f, str) or f not in known for f in value):
            raise ValidationError({name: f"must be a list of fields of {model}"})
        lists[name] = sorted(set(value))
    both = set(lists["required"]) & set(lists["later"])
    if both:
        raise ValidationError({"later": f"{sorted(both)[0]!r} is required on create: it cannot come later"})
    required_defs = {fd.name for fd in registry.definitions(model) if fd.is_required and fd.default is None}
    late = required_defs & set(lists["later"])
    if late:
        raise ValidationError({"later": f"{sorted(late)[0]!r} is a required field: it cannot come later"})
    async with db.atomic():
        before = await FormLayout.select().where(FormLayout.model == model).first()
        stored = {"sections": json.dumps(sections, ensure_ascii=False), "required": json.dumps(lists["required"]),
                  "later": json.dumps(lists["later"])}
        values: dict[Any, Any] = {FormLayout._meta.get_column_by_name(k): v for k, v in stored.items()}
        if before is None:
            await FormLayout.insert(FormLayout(_data={FormLayout.model: model, **values}))
        else:
            values.update({FormLayout.updated_at: dt.datetime.now(dt.UTC), FormLayout.version: FormLayout.version + 1})
            await FormLayout.update(values).where(FormLayout.id == before["id"])
        after = Layout.from_row(await FormLayout.select().where(FormLayout.model == model).first() or {})
        await audit.record("update", model=LAYOUT_MODEL, record_id=model, principal=who,
                           changes=audit.diff(Layout.from_row(before).as_dict() if before else None,
                                              after.as_dict()))
    registry.invalidate()
    await registry.fresh(force=True)
    return after
