"""Custom fields and layouts on HTML forms: the inputs a user gets, reading them back, and the layout's
sections, order and required-on-create fields. Any form of an extensible model uses these (the settings
pages of :mod:`core.forms`, crm_contacts' person and organization forms); the macro
``core/custom_inputs.html`` renders an :class:`Input`.

A user gets an input for each active field they may edit; a field they see read-only or masked is shown, not
editable (and never posted back: a masked value would overwrite the real one); a hidden one is absent. On the
create form, fields the layout says come later are left off.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.customfields import registry
from core.customfields.definitions import FieldDef, Layout
from core.customfields.records import loaded, target_table
from core.customfields.values import display, from_text, to_text
from core.errors import ValidationError
from core.i18n import gettext

if TYPE_CHECKING:
    from core.security.access import Access

MAX_LINK_OPTIONS = 500
_INPUTS = {"text": "text", "long_text": "textarea", "number": "number", "money": "money", "date": "date",
           "datetime": "datetime-local", "boolean": "checkbox", "choice": "select", "choices": "multiselect",
           "link": "select"}


@dataclass(frozen=True)
class Input:
    """One custom field on a form: ``name`` is the input's name (``custom.key``); ``value`` its text (a list
    of option keys for several choices, a bool for a checkbox)."""

    field: FieldDef
    name: str
    label: str
    input: str
    value: Any
    required: bool = False
    help: str = ""
    options: tuple[tuple[str, str], ...] = ()
    readonly: bool = False
    text: str = ""


@dataclass(frozen=True)
class Group:
    """A section of a laid-out form: its label (empty: no heading) and the names of its fields, in order."""

    key: str
    label: str
    names: tuple[str, ...]


def on_form(acc: Access, model: str, *, creating: bool) -> list[tuple[FieldDef, str]]:
    """``(field, rule)`` for each active field the user sees on this form (rule: editable, readonly, masked)."""
    from core.security.access import policy

    lay = registry.layout(model)
    out: list[tuple[FieldDef, str]] = []
    for fd in registry.definitions(model):
        rule = policy().field_rule(acc.roles, model, fd.name)[0]
        if rule == "hidden" or (creating and fd.name in lay.later):
            continue
        out.append((fd, rule))
    return out


async def inputs(acc: Access, model: str, stored: Any = None, *, creating: bool,
                 typed: Mapping[str, Any] | None = None) -> list[Input]:
    """The custom inputs of ``model``'s form for this user: values from ``stored`` (the record's custom
    column, as :meth:`Access.present` gave it) or, when a post comes back with errors, ``typed`` (the form)."""
    await registry.fresh()
    data = loaded(stored)
    lay = registry.layout(model)
    out: list[Input] = []
    for fd, rule in on_form(acc, model, creating=creating):
        value: Any = data.get(fd.key)
        if creating and value is None and fd.default is not None:
            value = fd.default
        if typed is not None and rule == "editable":
            if fd.kind == "choices":
                value = [str(v) for v in _getlist(typed, fd.name)]
            elif fd.kind == "boolean":
                value = typed.get(fd.name) is not None
            else:
                value = str(typed.get(fd.name) or "")
        elif fd.kind == "choices":
            value = list(value) if isinstance(value, list) else []
        elif fd.kind == "boolean":
            value = bool(value) if rule == "editable" else value
        elif rule == "editable":
            value = _money_text(fd, value) if fd.kind == "money" else to_text(fd, value)
        options: tuple[tuple[str, str], ...] = tuple((o.key, o.label) for o in fd.options)
        if fd.kind == "link" and rule == "editable":
            options = tuple(await link_options(acc, fd))
        required = fd.is_required or (creating and fd.name in lay.required)
        out.append(Input(field=fd, name=fd.name, label=fd.label, input=_INPUTS[fd.kind], value=value,
                         required=required, help=fd.help, options=options, readonly=rule != "editable",
                         text=display(fd, data.get(fd.key)) if rule != "editable" else ""))
    return out


def _money_text(fd: FieldDef, value: Any) -> str:
    if not isinstance(value, dict):
        return ""
    currency = str(value.get("currency") or "")
    amount = str(value.get("amount") or "")
    return amount if currency == (fd.currency or "CNY") else f"{amount} {currency}"


def _getlist(form: Mapping[str, Any], name: str) -> list[Any]:
    getlist = getattr(form, "getlist", None)
    if getlist is not None:
        return list(getlist(name))
    value = form.get(name)
    return list(value) if isinstance(value, (list, tuple)) else ([] if value is None else [value])


async def link_options(acc: Access, fd: FieldDef) -> list[tuple[str, str]]:
    """Records a link may name: those of its target the user may read (by name), like a reference's choices."""
    table = target_table(fd.target)
    if table is None or not acc.can(fd.target):
        return []
    pk = table._meta.primary_key
    label = next((c for c in table._meta.columns if c._meta.name in ("name", "title", "number", "subject")), pk)
    query = await acc.select(table, fd.target, pk, label)
    rows = await query.order_by(label).limit(MAX_LINK_OPTIONS)
    return [(str(r[pk._meta.name]), str(r[label._meta.name])) for r in rows]


def parse(acc: Access, model: str, form: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:
    """The custom values a form posted, for the write path (``{key: value}``; an emptied field is ``None``):
    only fields this user may edit and that were on the form. 422 naming each field that does not read."""
    out: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for fd, rule in on_form(acc, model, creating=creating):
        if rule != "editable":
            continue
        try:
            if fd.kind == "choices":
                out[fd.key] = [str(v) for v in _getlist(form, fd.name) if str(v)] or None
            elif fd.kind == "boolean":
                out[fd.key] = form.get(fd.name) is not None
            else:
                raw = form.get(fd.name)
                out[fd.key] = from_text(fd, raw if isinstance(raw, str) else "")
        except ValueError as exc:
            errors[fd.name] = str(exc)
    if errors:
        raise ValidationError(errors)
    return out


def arrange(model: str, names: Sequence[str], *, creating: bool) -> list[Group]:
    """``names`` (the form's built-in fields and ``custom.key`` names) grouped and ordered by ``model``'s
    layout; fields the layout does not place follow in a last group; on create, the later ones are dropped."""
    lay = registry.layout(model)
    wanted = [n for n in names if not (creating and n in lay.later)]
    groups: list[Group] = []
    placed: set[str] = set()
    for section in lay.sections:
        chosen = tuple(n for n in section.fields if n in wanted)
        placed.update(chosen)
        if chosen:
            groups.append(Group(section.key, section.label, chosen))
    rest = tuple(n for n in wanted if n not in placed)
    if rest:
        groups.append(Group("more", gettext("More") if groups else "", rest))
    return groups


def required_on_create(model: str) -> frozenset[str]:
    """Fields the layout requires on the create form (beyond the model's own rules)."""
    return registry.layout(model).required


def check_required(model: str, values: Mapping[str, Any], names: Iterable[str]) -> None:
    """Refuse a create leaving empty a field the layout requires (only among ``names``, the form's fields):
    422 naming each. Custom values are read from the model's JSON column in ``values``."""
    column = registry.column_of(model)
    custom = loaded(values.get(column)) if column else {}
    missing: dict[str, str] = {}
    for name in sorted(required_on_create(model) & set(names)):
        head, dot, key = name.partition(".")
        value = custom.get(key) if dot and head == column else values.get(name)
        if value in (None, "", []):
            missing[name] = "is required"
    if missing:
        raise ValidationError(missing)


def layout_of(model: str) -> Layout:
    return registry.layout(model)
