"""Size limits on stored values: one rule for every free-text and JSON field of every addon.

A ``Varchar`` column holds at most its declared length (PostgreSQL refuses more with an error, SQLite would
store it); a ``Text`` column at most :data:`MAX_TEXT` characters; a ``JSON`` column at most :data:`MAX_JSON`
bytes once serialized (custom fields, UTM data, tags…); a value with no column behind it (a structure the
addon expands itself, e.g. quote lines) at most :data:`MAX_STRUCTURE` bytes as JSON, and as text
:data:`MAX_TEXT`. Past a limit the write is a 422 naming the field. :meth:`core.security.access.Access.check_write`
applies it to the values of every write that passes through it (the JSON API, settings pages, services).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from piccolo.columns import JSON, JSONB, Text, Varchar
from piccolo.table import Table

from core.errors import ValidationError

MAX_TEXT = 20_000
MAX_JSON = 64 * 1024
MAX_STRUCTURE = 1024 * 1024

_tables: dict[str, type[Table]] = {}


def table_for(model: str) -> type[Table] | None:
    """The table of a model by the naming rule (``crm_x.noun`` is table ``crm_x_noun``) among the tables of
    the booted addons and the kernel, if it has one."""
    if model not in _tables:
        from core import runtime
        from core.migrations_registry import kernel_tables, tables_of

        name = model.replace(".", "_")
        booted = runtime._current.addons if runtime._current is not None else []
        # the declared classes, not the stand-ins of the same name that migrations build
        tables = kernel_tables() + [t for addon in booted for t in tables_of(addon.models, addon.name)]
        found = next((t for t in tables if t._meta.tablename == name), None)
        if found is None:
            return None
        _tables[model] = found
    return _tables[model]


def _size(value: Any) -> int:
    return len(value.encode() if isinstance(value, str) else json.dumps(value, default=str).encode())


def problem(column: Any, value: Any) -> str | None:
    """What is wrong with storing ``value`` in ``column`` (None: no column known), or None if it fits."""
    if value is None:
        return None
    if isinstance(column, (JSON, JSONB)):
        return f"is larger than {MAX_JSON // 1024} KB" if _size(value) > MAX_JSON else None
    if isinstance(value, str):
        if isinstance(column, Varchar) and column.length and len(value) > column.length:
            return f"is longer than {column.length} characters"
        if (column is None or isinstance(column, Text)) and len(value) > MAX_TEXT:
            return f"is longer than {MAX_TEXT} characters"
        return None
    if column is None and isinstance(value, (dict, list, tuple)) and _size(value) > MAX_STRUCTURE:
        return f"is larger than {MAX_STRUCTURE // (1024 * 1024)} MB"
    return None


def check(values: Mapping[str, Any], table: type[Table] | None = None) -> None:
    """Refuse (422, naming every field past its limit) values too large to store in ``table``."""
    columns = {c._meta.name: c for c in table._meta.columns} if table is not None else {}
    wrong = {name: msg for name, value in values.items() if (msg := problem(columns.get(name), value))}
    if wrong:
        raise ValidationError(wrong)
