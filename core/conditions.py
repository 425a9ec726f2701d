"""One condition language for automation rules, journeys, escalations and segments: a small JSON tree, checked
against the fields a model declares, compiled both to a Piccolo where-clause (evaluated in SQL, through the access
layer when a user is involved) and to a Python predicate over a record (evaluated on a change)::

    {"all": [{"field": "state", "op": "eq", "value": "open"},
             {"any": [{"field": "person.province", "op": "in", "value": ["广东", "上海"]},
                      {"not": {"field": "custom.rating", "op": "gte", "value": 4}}]}]}

- Nodes: ``{"all": [...]}``, ``{"any": [...]}`` (at least one item), ``{"not": {...}}`` and leaves
  ``{"field", "op", "value"}``. An empty condition (``None`` or ``{}``) matches every record.
- Fields: a declared column (``stage``), a custom field (``custom.<key>``), or a field of the record a reference
  points at, one hop away (``person.province``, ``person.custom.tier``).
- Operators: ``eq ne lt lte gt gte in contains is_empty changed_to changed``; which ones a field takes depends
  on its kind (:data:`OPS`). ``changed_to``/``changed`` compare the record before and after a change: only for
  rules triggered by a change, never in SQL.
- Semantics, the same in SQL and in Python: a comparison with a missing value (NULL) is false, ``ne`` is
  ``not eq`` (so a missing value is "not equal"), ``contains`` is a case-insensitive substring on text (the
  database's ``lower()``) and membership on a list (tags, several choices), ``is_empty`` is NULL, ``""`` or
  ``[]``.

Nothing here formats a value into SQL: identifiers come from the declared columns (custom keys are checked by
:mod:`core.customfields.storage`), values always travel as query parameters. A tree that does not fit is a 422
naming the path of the offending part (``condition.all[1].any[0].field``).
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

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
    Serial,
    SmallInt,
    Text,
    Timestamp,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import Column
from piccolo.columns.combination import WhereRaw
from piccolo.custom_types import Combinable
from piccolo.table import Table

from core import db
from core import values as core_values
from core.errors import PermissionDenied, ValidationError

Kind = Literal["text", "choice", "number", "decimal", "money", "boolean", "date", "datetime", "reference", "tags"]
ORDERED: frozenset[str] = frozenset({"number", "decimal", "money", "date", "datetime"})
#: the operators each kind of field takes
OPS: dict[str, tuple[str, ...]] = {
    kind: ("eq", "ne", "in", *(("lt", "lte", "gt", "gte") if kind in ORDERED else ()),
           *(("contains",) if kind == "text" else ()), "is_empty", "changed_to", "changed")
    for kind in ("text", "choice", "number", "decimal", "money", "boolean", "date", "datetime", "reference")
}
OPS["tags"] = ("contains", "is_empty", "changed")
ALL_OPS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "contains", "is_empty", "changed_to", "changed")
CHANGE_OPS = frozenset({"changed_to", "changed"})
MAX_DEPTH = 8
MAX_LEAVES = 100
MAX_LIST = 200
MAX_TEXT = 500


@dataclass(frozen=True)
class Field:
    """A field a condition may name: ``column`` of the schema's table, or a custom field (``custom`` is its
    :class:`~core.customfields.definitions.FieldDef`)."""

    name: str
    kind: Kind
    label: str = ""
    column: str = ""
    custom: Any = None
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Schema:
    """What conditions over ``model`` (stored in ``table``) may name: its fields, and per reference column the
    schema of the model it points at (one hop: a related schema has no relations of its own)."""

    model: str
    table: type[Table]
    fields: Mapping[str, Field]
    relations: Mapping[str, Schema] = field(default_factory=dict)


def _column_kind(column: Column) -> Kind | None:
    if isinstance(column, ForeignKey):
        return "reference"
    if isinstance(column, (Serial, Integer, BigInt, SmallInt)):
        return "number"
    if isinstance(column, (Numeric, Real, DoublePrecision)):
        return "decimal"
    if isinstance(column, Boolean):
        return "boolean"
    if isinstance(column, (Timestamptz, Timestamp)):
        return "datetime"
    if isinstance(column, Date):
        return "date"
    if isinstance(column, (Varchar, Text)):
        return "text"
    if isinstance(column, (JSON, JSONB)):
        return "tags"
    return None


_CUSTOM_KINDS: dict[str, Kind] = {"text": "text", "long_text": "text", "choice": "choice", "number": "decimal",
                                  "money": "money", "date": "date", "datetime": "datetime", "boolean": "boolean",
                                  "choices": "tags", "link": "reference"}


def schema_for(model: str, table: type[Table], fields: Iterable[str], *, labels: Mapping[str, str] | None = None,
               choices: Mapping[str, Sequence[str]] | None = None,
               relations: Mapping[str, Schema] | None = None, custom: bool = True) -> Schema:
    """The schema of ``model``: the named columns of ``table`` (their kind read from the column type; a JSON
    column is a list of tags), plus its active custom fields (``custom.<key>``) when ``custom``."""
    from core.customfields import registry

    out: dict[str, Field] = {}
    for name in fields:
        column = table._meta.get_column_by_name(name)
        kind = _column_kind(column)
        if kind is None:
            raise ValueError(f"{model}.{name}: a {type(column).__name__} column cannot be used in conditions")
        picks = tuple((choices or {}).get(name, ()))
        out[name] = Field(name, "choice" if picks and kind == "text" else kind, (labels or {}).get(name, name),
                          column=name, choices=picks)
    if custom:
        for fd in registry.definitions(model):
            out[fd.name] = Field(fd.name, _CUSTOM_KINDS.get(fd.kind, "text"), fd.label, custom=fd,
                                 choices=tuple(o.key for o in fd.options))
    return Schema(model, table, out, dict(relations or {}))


# --- the tree -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Leaf:
    path: str  # where it sits in the tree, for messages
    name: str  # the field as written: "stage", "person.province"
    field: Field
    relation: str  # "" or the reference column leading to the field's schema
    op: str
    value: Any


@dataclass(frozen=True)
class Group:
    op: Literal["all", "any"]
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


Node = Leaf | Group | Not
ALWAYS = Group("all", ())


def _bad(path: str, message: str) -> ValidationError:
    return ValidationError({path: message})


def parse(raw: Any, schema: Schema, *, path: str = "condition", changes: bool = False) -> Node:
    """``raw`` (decoded JSON) checked against ``schema`` as a tree; 422 naming the path of what does not fit.
    ``changes``: the condition is evaluated on a change, so ``changed_to``/``changed`` are allowed."""
    if raw is None or raw == {}:
        return ALWAYS
    counter = [0]
    return _parse(raw, schema, path, changes, 0, counter)


def _parse(raw: Any, schema: Schema, path: str, changes: bool, depth: int, counter: list[int]) -> Node:
    if depth > MAX_DEPTH:
        raise _bad(path, f"is nested deeper than {MAX_DEPTH} levels")
    if not isinstance(raw, dict):
        raise _bad(path, 'must be an object: {"all": [...]}, {"any": [...]}, {"not": {...}} or '
                         '{"field", "op", "value"}')
    groups = [k for k in ("all", "any", "not") if k in raw]
    if groups:
        key = groups[0]
        extra = sorted(set(raw) - {key})
        if extra:
            raise _bad(f"{path}.{extra[0]}", f"is not allowed next to {key!r}")
        if key == "not":
            return Not(_parse(raw["not"], schema, f"{path}.not", changes, depth + 1, counter))
        items = raw[key]
        if not isinstance(items, list):
            raise _bad(f"{path}.{key}", "must be a list of conditions")
        if key == "any" and not items:
            raise _bad(f"{path}.any", "needs at least one condition")
        return Group("all" if key == "all" else "any", tuple(
            _parse(item, schema, f"{path}.{key}[{i}]", changes, depth + 1, counter) for i, item in enumerate(items)))
    counter[0] += 1
    if counter[0] > MAX_LEAVES:
        raise _bad(path, f"a condition may compare at most {MAX_LEAVES} fields")
    return _leaf(raw, schema, path, changes)


def resolve(schema: Schema, name: str) -> tuple[str, Field] | None:
    """``(relation, field)`` for a field name (``stage``, ``custom.x``, ``person.province``), or None."""
    if name in schema.fields:
        return "", schema.fields[name]
    head, dot, rest = name.partition(".")
    related = schema.relations.get(head) if dot else None
    if related is not None and rest in related.fields:
        return head, related.fields[rest]
    return None


def _leaf(raw: dict[str, Any], schema: Schema, path: str, changes: bool) -> Leaf:
    unknown = sorted(set(raw) - {"field", "op", "value"})
    if unknown:
        raise _bad(f"{path}.{unknown[0]}", "is not a key of a condition (field, op, value)")
    name = raw.get("field")
    if not isinstance(name, str) or not name:
        raise _bad(f"{path}.field", "is required")
    found = resolve(schema, name)
    if found is None:
        raise _bad(f"{path}.field", f"{name[:80]!r} is not a field of {schema.model}")
    relation, fd = found
    op = raw.get("op")
    if not isinstance(op, str) or op not in ALL_OPS:
        raise _bad(f"{path}.op", f"must be one of {', '.join(ALL_OPS)}")
    if op not in OPS[fd.kind]:
        raise _bad(f"{path}.op", f"{op} does not apply to {name} (a {fd.kind} field): use "
                                 f"{', '.join(o for o in OPS[fd.kind] if changes or o not in CHANGE_OPS)}")
    if op in CHANGE_OPS:
        if not changes:
            raise _bad(f"{path}.op", f"{op} compares a record before and after a change: only rules triggered "
                                     "by a change may use it")
        if relation:
            raise _bad(f"{path}.op", f"{op} applies to the record's own fields, not to {relation}'s")
    value = _value(fd, op, raw.get("value"), raw, f"{path}.value")
    return Leaf(path, name, fd, relation, op, value)


def _value(fd: Field, op: str, value: Any, raw: Mapping[str, Any], path: str) -> Any:
    if op == "is_empty":
        if "value" not in raw:
            return True
        if not isinstance(value, bool):
            raise _bad(path, "must be true or false")
        return value
    if op == "changed":
        if "value" in raw:
            raise _bad(path, "changed takes no value (use changed_to)")
        return None
    if op == "in":
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_LIST:
            raise _bad(path, f"must be a list of 1 to {MAX_LIST} values")
        return tuple(_scalar(fd, v, f"{path}[{i}]") for i, v in enumerate(value))
    if value is None:
        raise _bad(path, "is required (compare with a missing value through is_empty)")
    if fd.kind == "tags":  # contains: one tag
        return _text(value, path, fd.choices)
    if op == "contains":
        return _text(value, path, ())
    return _scalar(fd, value, path)


def _text(value: Any, path: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise _bad(path, "must be text")
    problem = core_values.text_problem(value)
    if problem:
        raise _bad(path, problem)
    if len(value) > MAX_TEXT:
        raise _bad(path, f"must be at most {MAX_TEXT} characters")
    if choices and value not in choices:
        raise _bad(path, f"must be one of {', '.join(choices)}")
    return value


def _scalar(fd: Field, value: Any, path: str) -> Any:
    kind = fd.kind
    if kind in ("text", "choice"):
        return _text(value, path, fd.choices)
    if kind in ("number", "reference"):
        return core_values.integer(value, path)
    if kind in ("decimal", "money"):
        return core_values.finite_decimal(value, path)
    if kind == "boolean":
        if not isinstance(value, bool):
            raise _bad(path, "must be true or false")
        return value
    if kind == "date":
        if isinstance(value, str) and len(value.strip()) != 10:
            raise _bad(path, "must be a date like 2026-12-01")
        return core_values.check(Date(), value, path)
    if kind == "datetime":
        moment = core_values.check(Timestamptz(), value, path)
        return moment.astimezone(dt.UTC)
    raise _bad(path, f"cannot compare a {kind} field with a value")


def leaves(node: Node) -> list[Leaf]:
    if isinstance(node, Leaf):
        return [node]
    if isinstance(node, Not):
        return leaves(node.item)
    return [leaf for item in node.items for leaf in leaves(item)]


def related_fields(node: Node) -> dict[str, set[str]]:
    """Per reference column, the related fields the tree reads (what to load before :func:`matches`)."""
    out: dict[str, set[str]] = {}
    for leaf in leaves(node):
        if leaf.relation:
            out.setdefault(leaf.relation, set()).add(leaf.name.partition(".")[2])
    return out


def as_json(node: Node) -> Any:
    """The tree back as JSON (values in their JSON form): what is stored after :func:`parse`."""
    if isinstance(node, Leaf):
        out: dict[str, Any] = {"field": node.name, "op": node.op}
        if node.op != "changed":
            out["value"] = _json_value(node.value)
        return out
    if isinstance(node, Not):
        return {"not": as_json(node.item)}
    return {node.op: [as_json(i) for i in node.items]}


def _json_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


# --- Python ---------------------------------------------------------------------------------------------------


def _loaded(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _raw(record: Mapping[str, Any], leaf: Leaf) -> Any:
    """The record's value of ``leaf``'s field: own columns by name, custom fields out of their JSON column,
    related fields under their flat name (``person.province``, filled by whoever loads the record)."""
    if leaf.relation:
        return record.get(leaf.name)
    fd = leaf.field
    if fd.custom is not None:
        column, _, key = fd.name.partition(".")
        holder = _loaded(record.get(column))
        return holder.get(key) if isinstance(holder, dict) else None
    return record.get(fd.column)


def coerce(kind: str, raw: Any) -> Any:
    """A stored or JSON-encoded value as the Python value conditions compare (None when it is not one)."""
    if raw is None:
        return None
    try:
        if kind in ("text", "choice"):
            return raw if isinstance(raw, str) else str(raw)
        if kind in ("number", "reference"):
            return None if isinstance(raw, bool) else int(raw)
        if kind == "money" and isinstance(raw, dict):
            raw = raw.get("amount")
        if kind in ("decimal", "money"):
            return None if isinstance(raw, bool) or raw is None else decimal.Decimal(str(raw))
        if kind == "boolean":
            return bool(raw) if not isinstance(raw, str) else raw.lower() in ("1", "true", "t")
        if kind == "date":
            if isinstance(raw, dt.datetime):
                return raw.date()
            return raw if isinstance(raw, dt.date) else dt.date.fromisoformat(str(raw)[:10])
        if kind == "datetime":
            moment = raw if isinstance(raw, dt.datetime) else dt.datetime.fromisoformat(
                str(raw).replace("Z", "+00:00"))
            return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
        if kind == "tags":
            found = _loaded(raw)
            return [str(t) for t in found] if isinstance(found, list) else None
    except (ValueError, TypeError, decimal.InvalidOperation):
        return None
    return raw


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def _compare(op: str, kind: str, actual: Any, wanted: Any) -> bool:
    if op == "is_empty":
        return _empty(actual) is wanted
    if op == "contains":
        if kind == "tags":
            return isinstance(actual, list) and wanted in actual
        return isinstance(actual, str) and wanted.lower() in actual.lower()
    if actual is None:
        return op == "ne"
    if op in ("eq", "changed_to"):
        return bool(actual == wanted)
    if op == "ne":
        return bool(actual != wanted)
    if op == "in":
        return actual in wanted
    try:
        if op == "lt":
            return bool(actual < wanted)
        if op == "lte":
            return bool(actual <= wanted)
        if op == "gt":
            return bool(actual > wanted)
        return bool(actual >= wanted)
    except TypeError:
        return False


def matches(node: Node, record: Mapping[str, Any], before: Mapping[str, Any] | None = None) -> bool:
    """Does ``record`` (column → value, custom fields in their JSON column, related fields under their flat
    name) satisfy ``node``? ``before`` is the record before the change (None: it was just created, and every
    field counts as changed from empty)."""
    if isinstance(node, Group):
        results = (matches(item, record, before) for item in node.items)
        return all(results) if node.op == "all" else any(results)
    if isinstance(node, Not):
        return not matches(node.item, record, before)
    kind = node.field.kind
    actual = coerce(kind, _raw(record, node))
    if node.op in CHANGE_OPS:
        previous = coerce(kind, _raw(before, node)) if before is not None else None
        if previous == actual or (_empty(previous) and _empty(actual)):
            return False
        return node.op == "changed" or _compare("eq", kind, actual, node.value)
    return _compare(node.op, kind, actual, node.value)


# --- SQL ------------------------------------------------------------------------------------------------------

_TRUE_SQL = "1 = 1"


def _quoted(table: type[Table], column: Column) -> str:
    return f'"{table._meta.tablename}"."{column._meta.db_column_name}"'


def _negate(clause: Combinable | None) -> Combinable:
    if clause is None:
        return WhereRaw("1 = 0")
    # NULL (a comparison with a missing value) counts as false, so its negation is true, as in Python
    return WhereRaw("NOT COALESCE(({}), FALSE)", clause.querystring)


def _join(op: str, clauses: list[Combinable | None]) -> Combinable | None:
    if op == "all":
        present = [c for c in clauses if c is not None]
        if not present:
            return None
        out = present[0]
        for other in present[1:]:
            out = out & other
        return out
    present = [c for c in clauses if c is not None]
    if len(present) < len(clauses):  # an empty "all" inside "any": always true
        return None
    out = present[0]
    for other in present[1:]:
        out = out | other
    return out


def to_where(node: Node, schema: Schema, access: Any = None) -> Combinable | None:
    """``node`` as a where-clause on ``schema.table`` (None: no restriction). With ``access`` (a user's
    :class:`~core.security.access.Access`), a field the user sees hidden or masked is refused (403 naming the
    path), and a related field only matches related records the user may read."""
    if isinstance(node, Group):
        return _join(node.op, [to_where(item, schema, access) for item in node.items])
    if isinstance(node, Not):
        return _negate(to_where(node.item, schema, access))
    if node.op in CHANGE_OPS:
        raise _bad(f"{node.path}.op", f"{node.op} cannot be evaluated over stored records")
    if not node.relation:
        _check_access(access, schema.model, node.field.name, node)
        return _leaf_sql(node, schema.table, node.field)
    related = schema.relations[node.relation]
    _check_access(access, related.model, node.field.name, node)
    fk = schema.table._meta.get_column_by_name(node.relation)
    # negations and emptiness are taken over the record, so no related record reads as a missing value
    if node.op == "ne":
        return _negate(_related(Leaf(node.path, node.name, node.field, node.relation, "eq", node.value),
                                related, fk, access))
    if node.op == "is_empty":
        empty = fk.is_null() | _related(Leaf(node.path, node.name, node.field, node.relation, "is_empty", True),
                                        related, fk, access)
        return empty if node.value else _negate(empty)
    return _related(node, related, fk, access)


def _related(node: Leaf, related: Schema, fk: Column, access: Any) -> Combinable:
    inner = _leaf_sql(node, related.table, node.field)
    pk = related.table._meta.primary_key
    sub = related.table.select(pk)
    if inner is not None:
        sub = sub.where(inner)
    if access is not None:
        scopes = access.scopes(related.model, "read")
        if not scopes:
            raise PermissionDenied(f"you may not read {related.model}", field=f"{node.path}.field")
        rule = access.where(related.table, scopes)
        if rule is not None:
            sub = sub.where(rule)
    return fk.is_in(sub)


def _check_access(access: Any, model: str, name: str, node: Leaf) -> None:
    if access is None:
        return
    if not access.visible_fields(model, [name]) or access.is_masked(model, name):
        raise PermissionDenied(f"you may not filter on {node.name!r}", field=f"{node.path}.field")


def _leaf_sql(node: Leaf, table: type[Table], fd: Field) -> Combinable | None:
    if fd.custom is not None:
        return _custom_sql(node, table, fd)
    column = table._meta.get_column_by_name(fd.column)
    name = _quoted(table, column)
    op, value = node.op, node.value
    if op == "is_empty":
        if fd.kind == "tags":
            length = f"json_array_length(({name})::json)" if db.is_postgres() else f"json_array_length({name})"
            empty: Combinable = WhereRaw(f"({name} IS NULL OR {length} = 0)")
        elif fd.kind in ("text", "choice"):
            empty = column.is_null() | (column == "")
        else:
            empty = column.is_null()
        return empty if value else _negate(empty)
    if op == "contains":
        if fd.kind == "tags":
            if db.is_postgres():
                return WhereRaw(f"(({name})::jsonb @> {{}}::jsonb)", json.dumps([value]))
            return WhereRaw(f"EXISTS (SELECT 1 FROM json_each({name}) WHERE json_each.value = {{}})", value)
        position = "strpos" if db.is_postgres() else "instr"
        return WhereRaw(f"{position}(lower({name}), lower({{}})) > 0", value)
    if op == "ne":
        return _negate(column == value)
    if op == "in":
        return column.is_in(list(value))
    return {"eq": column.__eq__, "lt": column.__lt__, "lte": column.__le__, "gt": column.__gt__,
            "gte": column.__ge__}[op](value)


_SQL_OPS = {"eq": "=", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}


def _custom_param(fd: Field, value: Any) -> Any:
    """A condition value as the parameter compared with the custom field's SQL expression on this backend."""
    pg = db.is_postgres()
    kind = fd.kind
    if kind in ("decimal", "money"):
        return decimal.Decimal(value) if pg else float(value)
    if kind == "boolean":
        return ("true" if value else "false") if pg else int(bool(value))
    if kind == "reference":
        return str(value) if pg else int(value)
    if kind == "date":
        return value.isoformat()
    if kind == "datetime":
        return value.astimezone(dt.UTC).replace(microsecond=0).isoformat()
    return value


def _custom_sql(node: Leaf, table: type[Table], fd: Field) -> Combinable:
    from core.customfields import storage

    definition = fd.custom
    text = storage.expression(table, definition)  # the key is checked there; the column is declared
    column = table._meta.get_column_by_name(definition.column)
    holder, key = _quoted(table, column), definition.key
    op, value = node.op, node.value
    pg = db.is_postgres()
    if op == "is_empty":
        if fd.kind == "tags":
            length = (f"json_array_length(({holder})::json -> '{key}')" if pg
                      else f"json_array_length({holder}, '$.{key}')")
            empty = WhereRaw(f"({text} IS NULL OR {length} = 0)")
        elif fd.kind == "money":
            empty = WhereRaw(f"({storage.expression(table, definition, sort=True)} IS NULL)")
        else:
            raw = f"({holder}->>'{key}')" if pg else f"json_extract({holder}, '$.{key}')"
            empty = WhereRaw(f"({raw} IS NULL OR {raw} = '')")
        return empty if value else _negate(empty)
    if op == "contains":
        if fd.kind == "tags":
            if pg:
                return WhereRaw(f"({text} @> {{}}::jsonb)", json.dumps([value]))
            return WhereRaw(f"EXISTS (SELECT 1 FROM json_each({holder}, '$.{key}') WHERE json_each.value = {{}})",
                            value)
        position = "strpos" if pg else "instr"
        return WhereRaw(f"{position}(lower({text}), lower({{}})) > 0", value)
    expr = storage.expression(table, definition, sort=True) if fd.kind == "money" else text
    if op == "ne":
        return _negate(WhereRaw(f"{expr} = {{}}", _custom_param(fd, value)))
    if op == "in":
        clause: Combinable | None = None
        for item in value:
            one = WhereRaw(f"{expr} = {{}}", _custom_param(fd, item))
            clause = one if clause is None else clause | one
        assert clause is not None
        return clause
    return WhereRaw(f"{expr} {_SQL_OPS[op]} {{}}", _custom_param(fd, value))


def describe(schema: Schema, *, changes: bool = True) -> list[dict[str, Any]]:
    """The fields a condition over ``schema`` may name, with their kind and operators (for forms and the API)."""
    out: list[dict[str, Any]] = []

    def add(prefix: str, fields: Mapping[str, Field], own: bool) -> None:
        for name, fd in fields.items():
            ops = [o for o in OPS[fd.kind] if (changes and own) or o not in CHANGE_OPS]
            out.append({"field": prefix + name, "kind": fd.kind, "label": fd.label or name, "ops": ops,
                        **({"choices": list(fd.choices)} if fd.choices else {})})

    add("", schema.fields, True)
    for relation, related in schema.relations.items():
        add(f"{relation}.", related.fields, False)
    return out
