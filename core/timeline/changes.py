"""A record's audit rows in words, as one reader may see them: "Stage: Quoted → Negotiation".

Each field by its label (custom fields by theirs, then the API resource's, then its name in words), each value
formatted for the reader: a reference by the name of the record it points at (when the reader may read that
record), a user by name, yes/no, numbers and dates by :mod:`core.formatting`, an enumeration's key by its
translated label. The reader's field rules apply first: a hidden field is left out, a masked one shows masked.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import re
from dataclasses import dataclass
from typing import Any

from piccolo.columns import (
    JSON,
    JSONB,
    BigInt,
    Boolean,
    Date,
    DoublePrecision,
    ForeignKey,
    Integer,
    Numeric,
    Real,
    SmallInt,
    Timestamptz,
)
from piccolo.columns.base import Column
from piccolo.table import Table

from core import formatting, i18n, labels
from core.security.access import Access, policy

#: audit actions that are no change of the record (reads, refusals, replays)
NOT_CHANGES = frozenset(
    {
        "denied",
        "export",
        "reveal",
        "search",
        "gdpr_export",
        "idempotent_replay",
        "login",
        "logout",
        "login_failed",
        "login_throttled",
        "auth_failed",
        "csrf_failed",
        "notify_failed",
    }
)
#: the columns that name a record, tried in order (a ``name_zh`` beside ``name`` for Chinese readers)
_NAMING = ("name", "title", "subject", "reference", "number", "code", "login", "key")
_SKIPPED = frozenset({"version", "updated_at", "search_text", "stage_entered_at"})
MAX_TEXT = 120
#: a key of the kernel's own metadata records (a custom field's model ``crm_contacts.person``, its name
#: ``custom.loyalty_tier``): shown as words there; elsewhere a dotted value is data ("example.com")
_KEY = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+")


@dataclass(frozen=True)
class ChangeLine:
    """One field that changed: its label and both values, as the reader may see them."""

    field: str
    label: str
    old: str
    new: str


def _column(table: type[Table] | None, name: str) -> Column | None:
    if table is None:
        return None
    try:
        return table._meta.get_column_by_name(name)
    except ValueError:
        return None


def _resource_labels(model: str) -> dict[str, str]:
    from core.runtime import _current

    resources = _current.state.get("api_resources", []) if _current is not None else []
    for res in resources:
        if res.model == model:
            return dict(res.labels)
    return {}


def _choices(model: str) -> dict[str, tuple[str, ...]]:
    from core.runtime import _current

    found: dict[str, dict[str, tuple[str, ...]]] = (
        _current.state.get("timeline_choices", {}) if _current is not None else {}
    )
    return found.get(model, {})


async def remember_choices() -> None:
    """Which text fields are enumerations (their keys shown by label): what automation models declare."""
    from core.automation import registry
    from core.runtime import _current

    if _current is None or "timeline_choices" in _current.state:
        return
    found: dict[str, dict[str, tuple[str, ...]]] = {}
    for am in (await registry.models()).values():
        found[am.model] = {k: tuple(v) for k, v in am.choices.items()}
    _current.state["timeline_choices"] = found


def field_label(model: str, field: str) -> str:
    """A field's label in the reader's language."""
    from core.customfields import registry as custom_fields

    fd = custom_fields.by_name(model, field)
    if fd is not None:
        return fd.label
    found = _resource_labels(model).get(field)
    return i18n.translate(found or labels.humanize(field))


def _plain(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _words(value: Any) -> str:
    """A structured value (a custom field's options, its validation) in words, never JSON: a label with its
    translations in the reader's language, a mapping as "Key: value; …", a list joined by commas."""
    if isinstance(value, dict):
        if "en" in value or "zh" in value:
            local = value.get("zh") if i18n.language().startswith("zh") else None
            return str(local or value.get("en") or value.get("key") or "—")
        return "; ".join(f"{i18n.translate(labels.humanize(str(k)))}: {_words(v)}" for k, v in value.items()) or "—"
    if isinstance(value, list):
        return ", ".join(_words(v) for v in value) or "—"
    return _plain(value)


def _parsed_time(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def has_changes(raw: Any) -> bool:
    """Whether an audit row's ``changes`` names any field (a row that names only fields a reader may not see is
    no news to that reader; one that names none — an archive, a delete — is)."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw or "{}")
        except ValueError:
            return False
    return isinstance(raw, dict) and bool(raw)


class Reader:
    """Formats one reader's values, caching the names of the records they point at."""

    def __init__(self, access: Access) -> None:
        self.access = access
        self._names: dict[tuple[str, int], str] = {}

    async def _name(self, target: type[Table], ref: int) -> str:
        from core.security.access import model_of

        key = (target._meta.tablename, ref)
        if key in self._names:
            return self._names[key]
        model = model_of(target)
        naming = [c for c in _NAMING if _column(target, c) is not None]
        text = f"#{ref}"
        if naming:
            row: dict[str, Any] | None
            columns = [target._meta.get_column_by_name(c) for c in naming]
            zh = _column(target, f"{naming[0]}_zh")
            if zh is not None:
                columns.append(zh)
            if model is None:  # no grant governs it (stages, users): its name is no secret
                row = await target.select(*columns).where(target._meta.primary_key == ref).first()
            elif self.access.can(model):
                query = await self.access.select(
                    target, model, *columns, where=target._meta.primary_key == ref, include_archived=True
                )
                found = await query.first()
                row = self.access.present(model, dict(found)) if found is not None else None
            else:
                row = None
            if row is not None:
                local = row.get(f"{naming[0]}_zh") if i18n.language().startswith("zh") else None
                text = str(local or next((row[c] for c in naming if row.get(c)), text))
        self._names[key] = text
        return text

    async def value(self, model: str, table: type[Table] | None, field: str, value: Any) -> str:
        if value is None or value == "" or value == [] or value == {}:
            return "—"
        column = _column(table, field)
        if isinstance(column, ForeignKey) and isinstance(value, (int, str)) and str(value).isdigit():
            return await self._name(column._foreign_key_meta.resolved_references, int(value))
        if isinstance(column, Boolean) or isinstance(value, bool):
            return i18n.gettext("Yes") if value in (True, "true", "True", 1) else i18n.gettext("No")
        if isinstance(column, Timestamptz):
            at = _parsed_time(value)
            return formatting.format_datetime(at) if at is not None else _plain(value)
        if isinstance(column, Date):
            try:
                return formatting.format_date(dt.date.fromisoformat(str(value)[:10]))
            except ValueError:
                return _plain(value)
        if isinstance(column, (Numeric, Real, DoublePrecision, Integer, BigInt, SmallInt)):
            try:
                return formatting.format_number(decimal.Decimal(str(value)))
            except (decimal.InvalidOperation, ValueError, TypeError):
                return _plain(value)
        if isinstance(column, (JSON, JSONB)) and isinstance(value, list):
            return _words(value)
        if isinstance(value, str) and value in _choices(model).get(field, ()):
            return i18n.translate(labels.humanize(value))
        if isinstance(value, (dict, list)):
            return _words(value)
        if model.startswith("core.") and isinstance(value, str) and _KEY.fullmatch(value):
            return labels.model(value)
        return _plain(value)


async def lines(reader: Reader, model: str, changes: Any) -> list[ChangeLine]:
    """``changes`` (an audit diff ``{field: [old, new]}``) in words for ``reader``'s access; hidden fields
    are left out, masked ones masked (custom fields by their own rules)."""
    from core.customfields import records as custom_values
    from core.customfields import registry as custom_fields
    from core.customfields.values import display
    from core.limits import table_for

    if isinstance(changes, str):
        try:
            changes = json.loads(changes or "{}")
        except ValueError:
            return []
    if not isinstance(changes, dict):
        return []
    access = reader.access
    pol = policy()
    table = table_for(model)
    custom = custom_fields.column_of(model)
    out: list[ChangeLine] = []
    for field, pair in changes.items():
        if field in _SKIPPED or not isinstance(pair, list) or len(pair) != 2 or pair[0] == pair[1]:
            continue
        if custom and field == custom:  # the whole column in one diff: one line per custom field seen
            old_values = custom_values.present(access, model, pair[0])
            new_values = custom_values.present(access, model, pair[1])
            for each in custom_fields.definitions(model):
                a, b = old_values.get(each.key), new_values.get(each.key)
                if a != b:
                    out.append(
                        ChangeLine(
                            each.name,
                            each.label,
                            display(each, a) if a is not None else "—",
                            display(each, b) if b is not None else "—",
                        )
                    )
            continue
        rule, _, _ = pol.field_rule(access.roles, model, field)
        if rule == "hidden":
            continue
        shown = access.present_diff(model, {field: pair})[field]
        fd = custom_fields.by_name(model, field)
        if fd is not None:
            old = display(fd, shown[0]) if shown[0] is not None else "—"
            new = display(fd, shown[1]) if shown[1] is not None else "—"
        elif rule == "masked":
            old, new = _plain(shown[0]) if shown[0] else "—", _plain(shown[1]) if shown[1] else "—"
        else:
            old = await reader.value(model, table, field, shown[0])
            new = await reader.value(model, table, field, shown[1])
        if old == new:  # nothing to a reader: none became empty ("— → —")
            continue
        out.append(ChangeLine(field, field_label(model, field), old, new))
    return out
