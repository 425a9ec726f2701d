"""What a custom field and a form layout are, as frozen values read from ``core_custom_field`` and
``core_form_layout`` (the registry loads them; nothing here touches the database)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core import i18n
from core.db import json_column

#: a field's key: a safe SQL identifier fragment and JSON key, checked before any DDL or expression uses it
KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
KINDS: tuple[str, ...] = ("text", "long_text", "number", "money", "date", "datetime", "boolean", "choice",
                          "choices", "link")
KIND_LABELS: dict[str, str] = {
    "text": "Text", "long_text": "Long text", "number": "Number", "money": "Money", "date": "Date",
    "datetime": "Date and time", "boolean": "Yes/no", "choice": "One choice", "choices": "Several choices",
    "link": "Link to a record",
}
#: the rules a definition may give a role (a role without one edits the field)
RULES: tuple[str, ...] = ("hidden", "masked", "readonly")
#: kinds whose values can be filtered on by equality (and get an index when filterable)
FILTERABLE: frozenset[str] = frozenset(KINDS) - {"long_text"}


def is_key(value: object) -> bool:
    return isinstance(value, str) and bool(KEY.fullmatch(value))


_loaded = json_column  # a JSON column as read (core.db.json_column)


def _pick(en: str, zh: str) -> str:
    """The label in the reader's language, else the other one."""
    return (zh or en) if i18n.language() == "zh_CN" else (en or zh)


@dataclass(frozen=True)
class Option:
    """One choice of a ``choice``/``choices`` field: the stored ``key`` and its labels."""

    key: str
    en: str = ""
    zh: str = ""

    @property
    def label(self) -> str:
        return _pick(self.en, self.zh) or self.key


@dataclass(frozen=True)
class FieldDef:
    """One custom field of ``model``, stored under ``key`` in the model's JSON column ``column``."""

    id: int
    model: str
    key: str
    kind: str
    column: str = "custom"
    label_en: str = ""
    label_zh: str = ""
    help_en: str = ""
    help_zh: str = ""
    options: tuple[Option, ...] = ()
    is_required: bool = False
    default: Any = None
    min_value: str = ""
    max_value: str = ""
    pattern: str = ""
    max_length: int | None = None
    target: str = ""
    currency: str = ""
    is_filterable: bool = False
    is_listed: bool = False
    is_searchable: bool = False
    rules: Mapping[str, str] = field(default_factory=dict)
    sequence: int = 100
    is_archived: bool = False
    version: int = 1

    @property
    def name(self) -> str:
        """The field's name wherever a field is named: rules, errors, audit diffs, exports (``custom.key``)."""
        return f"{self.column}.{self.key}"

    @property
    def param(self) -> str:
        """Its list filter parameter (``cf_key``)."""
        return f"cf_{self.key}"

    @property
    def label(self) -> str:
        return _pick(self.label_en, self.label_zh) or self.key

    @property
    def help(self) -> str:
        return _pick(self.help_en, self.help_zh)

    def option(self, key: str) -> Option | None:
        return next((o for o in self.options if o.key == key), None)

    @classmethod
    def from_row(cls, row: Mapping[str, Any], column: str = "custom") -> FieldDef:
        options = tuple(Option(str(o.get("key", "")), str(o.get("en", "")), str(o.get("zh", "")))
                        for o in _loaded(row.get("options"), []) if isinstance(o, dict))
        rules = {str(k): str(v) for k, v in _loaded(row.get("rules"), {}).items() if v in RULES}
        return cls(id=int(row["id"]), model=str(row["model"]), key=str(row["key"]), kind=str(row["kind"]),
                   column=column, label_en=row.get("label_en") or "", label_zh=row.get("label_zh") or "",
                   help_en=row.get("help_en") or "", help_zh=row.get("help_zh") or "", options=options,
                   is_required=bool(row.get("is_required")), default=_loaded(row.get("default"), None),
                   min_value=row.get("min_value") or "", max_value=row.get("max_value") or "",
                   pattern=row.get("pattern") or "", max_length=row.get("max_length"),
                   target=row.get("target") or "", currency=row.get("currency") or "",
                   is_filterable=bool(row.get("is_filterable")), is_listed=bool(row.get("is_listed")),
                   is_searchable=bool(row.get("is_searchable")), rules=rules,
                   sequence=int(row.get("sequence") or 0), is_archived=bool(row.get("is_archived")),
                   version=int(row.get("version") or 1))

    def as_dict(self) -> dict[str, Any]:
        """The definition as the admin API shows it."""
        return {"id": self.id, "model": self.model, "key": self.key, "name": self.name, "kind": self.kind,
                "label_en": self.label_en, "label_zh": self.label_zh, "help_en": self.help_en,
                "help_zh": self.help_zh, "options": [{"key": o.key, "en": o.en, "zh": o.zh} for o in self.options],
                "is_required": self.is_required, "default": self.default, "min_value": self.min_value,
                "max_value": self.max_value, "pattern": self.pattern, "max_length": self.max_length,
                "target": self.target, "currency": self.currency, "is_filterable": self.is_filterable,
                "is_listed": self.is_listed, "is_searchable": self.is_searchable, "rules": dict(self.rules),
                "sequence": self.sequence, "is_archived": self.is_archived, "version": self.version}


@dataclass(frozen=True)
class Section:
    key: str
    en: str = ""
    zh: str = ""
    fields: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return _pick(self.en, self.zh)


@dataclass(frozen=True)
class Layout:
    """The form layout of ``model``: sections in order (each with its fields in order), the fields required on
    create and those that come later (not on the create form). No layout stored: one section, nothing extra."""

    model: str
    sections: tuple[Section, ...] = ()
    required: frozenset[str] = frozenset()
    later: frozenset[str] = frozenset()
    version: int = 0

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Layout:
        sections = tuple(Section(str(s.get("key", "")), str(s.get("en", "")), str(s.get("zh", "")),
                                 tuple(str(f) for f in s.get("fields", []) if isinstance(f, str)))
                         for s in _loaded(row.get("sections"), []) if isinstance(s, dict))
        return cls(model=str(row["model"]), sections=sections,
                   required=frozenset(str(f) for f in _loaded(row.get("required"), [])),
                   later=frozenset(str(f) for f in _loaded(row.get("later"), [])),
                   version=int(row.get("version") or 1))

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "version": self.version,
                "sections": [{"key": s.key, "en": s.en, "zh": s.zh, "fields": list(s.fields)}
                             for s in self.sections],
                "required": sorted(self.required), "later": sorted(self.later)}
