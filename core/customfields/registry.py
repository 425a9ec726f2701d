"""Which models are extensible and which custom fields and layouts they have: a per-process cache of
``core_custom_field`` and ``core_form_layout``, kept in the runtime's state.

A model is extensible when the API resource serving it names its JSON column (``Resource(custom="custom")``).
Definitions are read from the cache synchronously (``Access.present`` is sync); :func:`fresh` reloads it when the
tables changed, checking at most every :data:`CHECK_SECONDS` (one small query), and ``Access.require`` calls it, so
every read or write through the access layer sees a definition at most that long after another worker saved it
(this worker's own changes: at once). Loading also hands the definitions' per-role rules to the security policy,
under the field's name (``custom.key``), so hidden / masked / read-only apply like a manifest's ``FieldRule``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from piccolo.table import Table

from core.customfields.definitions import FieldDef, Layout

#: how stale another worker's definition change may be here (seconds)
CHECK_SECONDS = 2.0
_STATE = "custom_fields"


@dataclass(frozen=True)
class Extensible:
    """A model that takes custom fields: its table, the JSON column holding them, a label, its API path."""

    model: str
    table: type[Table]
    column: str
    label: str
    path: str


@dataclass
class Registry:
    models: dict[str, Extensible]
    fields: dict[str, tuple[FieldDef, ...]] = field(default_factory=dict)
    layouts: dict[str, Layout] = field(default_factory=dict)
    stamp: tuple[Any, ...] = ()
    checked: float = 0.0


def _registry() -> Registry | None:
    from core import runtime

    current = runtime._current
    if current is None:
        return None
    found: Registry | None = current.state.get(_STATE)
    if found is None:
        models: dict[str, Extensible] = {}
        for res in current.state.get("api_resources", []):
            column = getattr(res, "custom", "")
            if column and res.model not in models:
                models[res.model] = Extensible(res.model, res.table, column, res.summary or res.model, res.path)
        found = current.state[_STATE] = Registry(models=models)
    return found


def extensible() -> dict[str, Extensible]:
    """Every extensible model of the running CRM, by model name."""
    reg = _registry()
    return dict(reg.models) if reg else {}


def extension(model: str) -> Extensible | None:
    reg = _registry()
    return reg.models.get(model) if reg else None


def column_of(model: str) -> str | None:
    """The JSON column holding ``model``'s custom fields, or None when it takes none."""
    ext = extension(model)
    return ext.column if ext else None


def definitions(model: str, *, archived: bool = False) -> list[FieldDef]:
    """The fields of ``model`` in form order: the active ones, or with ``archived`` the archived ones only."""
    reg = _registry()
    found = reg.fields.get(model, ()) if reg else ()
    return [f for f in found if f.is_archived == archived]


def all_definitions(model: str) -> list[FieldDef]:
    reg = _registry()
    return list(reg.fields.get(model, ())) if reg else []


def definition(model: str, key: str) -> FieldDef | None:
    """The active field ``key`` of ``model``."""
    return next((f for f in definitions(model) if f.key == key), None)


def by_name(model: str, name: str) -> FieldDef | None:
    """The active field named ``custom.key`` (its column's name, a dot, its key), or None."""
    column, dot, key = name.partition(".")
    if not dot or column != column_of(model):
        return None
    return definition(model, key)


def layout(model: str) -> Layout:
    reg = _registry()
    return (reg.layouts.get(model) if reg else None) or Layout(model=model)


def invalidate() -> None:
    """Reload at the next :func:`fresh` (call after a change this process made)."""
    reg = _registry()
    if reg is not None:
        reg.checked, reg.stamp = 0.0, ()


async def _stamp() -> tuple[Any, ...]:
    from core.models import CustomField

    # static SQL: counts and version sums change with every insert, edit and delete of either table
    rows = await CustomField.raw(
        "SELECT (SELECT COUNT(*) FROM core_custom_field) AS f_n, "
        "(SELECT COALESCE(SUM(version), 0) FROM core_custom_field) AS f_v, "
        "(SELECT COALESCE(MAX(id), 0) FROM core_custom_field) AS f_id, "
        "(SELECT COUNT(*) FROM core_form_layout) AS l_n, "
        "(SELECT COALESCE(SUM(version), 0) FROM core_form_layout) AS l_v")
    row = rows[0] if rows else {}
    return tuple(int(row.get(k) or 0) for k in ("f_n", "f_v", "f_id", "l_n", "l_v"))


async def fresh(force: bool = False) -> None:
    """Reload the definitions if another process (or this one) changed them since the last load."""
    reg = _registry()
    if reg is None or not reg.models:
        return
    now = time.monotonic()
    if not force and reg.checked and now - reg.checked < CHECK_SECONDS:
        return
    stamp = await _stamp()
    reg.checked = now
    if stamp == reg.stamp:
        return
    await _load(reg)
    reg.stamp = stamp


async def _load(reg: Registry) -> None:
    from core.models import CustomField, FormLayout

    fields: dict[str, list[FieldDef]] = {}
    rows = await CustomField.select().where(CustomField.model.is_in(sorted(reg.models))).order_by(
        CustomField.sequence).order_by(CustomField.id)
    for row in rows:
        ext = reg.models[row["model"]]
        fields.setdefault(ext.model, []).append(FieldDef.from_row(row, ext.column))
    reg.fields = {m: tuple(fs) for m, fs in fields.items()}
    layouts = await FormLayout.select().where(FormLayout.model.is_in(sorted(reg.models)))
    reg.layouts = {r["model"]: Layout.from_row(r) for r in layouts}
    _apply_rules(f for fs in reg.fields.values() for f in fs if not f.is_archived)


def _apply_rules(active: Iterable[FieldDef]) -> None:
    """The definitions' per-role rules as field rules of the compiled policy (replacing the previous ones)."""
    from core.addon import FieldRule
    from core.security.access import policy

    rules: dict[tuple[str, str], dict[str, FieldRule]] = {}
    for fd in active:
        for role, rule in fd.rules.items():
            rules.setdefault((fd.model, fd.name), {})[role] = FieldRule(role, fd.model, fd.name, rule)  # type: ignore[arg-type]
    policy().custom_rules = rules
