"""Datasets: the figures reporting may compute, declared by addons (``crm_datasets``), computed here through
the access layer — a figure counts only rows the user may read, and a dimension or measure on a field the
user sees hidden or masked is refused, so a report never leaks what the model's own pages would not show.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, TypeVar

from piccolo.columns import BigInt, Date, ForeignKey, Integer, Numeric, Real, SmallInt, Timestamp, Timestamptz
from piccolo.columns.base import Column
from piccolo.custom_types import Combinable
from piccolo.query.functions.aggregate import Avg, Count, Max, Min, Sum
from piccolo.querystring import QueryString
from piccolo.table import Table

from core import conditions, db, hooks
from core.customfields import registry as custom_fields
from core.customfields import storage
from core.errors import NotFound, PermissionDenied, UserError, ValidationError
from core.hooks import Dataset, Dimension, Measure
from core.security.access import Access

T = TypeVar("T")

_AGGREGATES = {"sum": Sum, "avg": Avg, "min": Min, "max": Max}


async def datasets(access: Access | None = None) -> list[Dataset]:
    """Every installed dataset; with ``access``, only those over models the user may read. A dataset over an
    extensible model gets a dimension ``cf_<key>`` for each of its active custom fields that can be grouped
    by (its column is the field's name, ``custom.<key>``)."""
    await custom_fields.fresh()
    found: list[Dataset] = await hooks.call("crm_datasets")
    return [_with_custom(d) for d in found if access is None or access.can(d.model)]


_GROUPABLE = ("text", "number", "date", "boolean", "choice", "link")


def _with_custom(ds: Dataset) -> Dataset:
    extra = tuple(Dimension(fd.param, fd.label, fd.name) for fd in custom_fields.definitions(ds.model)
                  if fd.kind in _GROUPABLE and fd.param not in {d.name for d in ds.dimensions})
    return replace(ds, dimensions=ds.dimensions + extra) if extra else ds


def _group(ds: Dataset, dim: Dimension) -> Any:
    """The column (or a custom field's expression, selected as the dimension's name) to group by."""
    fd = custom_fields.by_name(ds.model, dim.column)
    if fd is not None:
        return storage.selectable(ds.table, fd, dim.name)
    return _column(ds, dim.column, "dimensions")


async def dataset(key: str, access: Access) -> Dataset:
    for found in await datasets(access):
        if found.key == key:
            return found
    raise NotFound(f"no dataset {key!r}")


def _column(ds: Dataset, name: str, field: str) -> Column:
    try:
        return ds.table._meta.get_column_by_name(name)
    except ValueError:
        raise ValidationError({field: f"{ds.key} has no column {name!r}"}) from None


def _check_field(access: Access, ds: Dataset, name: str, field: str) -> None:
    if not access.visible_fields(ds.model, [name]) or access.is_masked(ds.model, name):
        raise PermissionDenied(f"you may not report on {name!r}", field=field)


def _aggregate(ds: Dataset, measure: Measure, alias: str) -> Any:
    if measure.aggregate == "count":
        return Count(alias=alias)
    if measure.span is not None:
        return _span_figure(ds, measure.aggregate, measure.span, alias)
    if measure.aggregate == "return":
        return _return_figure(ds, measure.column, measure.cost, alias)
    if measure.column is None:
        raise ValidationError({"measures": f"{measure.name} needs a column"})
    return _AGGREGATES[measure.aggregate](_column(ds, measure.column, "measures"), alias=alias)


def _span_figure(ds: Dataset, aggregate: str, span: tuple[str, str], alias: str) -> QueryString:
    """``aggregate`` of the days from ``span[0]`` to ``span[1]`` of each row (rows missing either count not)."""
    if aggregate not in _AGGREGATES:
        raise ValidationError({"measures": f"{aggregate} cannot take days between dates"})
    start, end = (_column(ds, c, "measures") for c in span)
    if not (_is_date(start) and _is_date(end)):
        raise ValidationError({"measures": f"{span[0]} and {span[1]} must be dates"})
    a, b = (c._meta.get_full_name(with_alias=False) for c in (start, end))
    if db.is_postgres():  # seconds as float8 per row (EXTRACT gives numeric: several times slower), days once
        return QueryString(f"{aggregate.upper()}(date_part('epoch', {b} - {a})) / 86400.0", alias=alias)
    return QueryString(f"{aggregate.upper()}(julianday({b}) - julianday({a}))", alias=alias)


def _return_figure(ds: Dataset, gain: str | None, cost: str | None, alias: str) -> QueryString:
    """``(SUM(gain) - MAX(cost)) / MAX(cost)``: every row of a group carries its one cost; NULL for no cost."""
    if gain is None or cost is None:
        raise ValidationError({"measures": "a return needs a column and a cost"})
    a, b = (_column(ds, c, "measures")._meta.get_full_name(with_alias=False) for c in (gain, cost))
    return QueryString(f"(SUM({a}) - MAX({b})) * 1.0 / NULLIF(MAX({b}), 0)", alias=alias)


def _number(ds: Dataset, measure: Measure, value: Any) -> Any:
    """A figure as the column's type: money stays Decimal at the column's scale on both databases (SQLite's
    SUM gives a float), never a float; days between dates to a tenth of a day."""
    if value is None or measure.aggregate == "count":
        return value
    if measure.span is not None:
        return Decimal(str(value)).quantize(Decimal("0.1"))
    if measure.aggregate == "return":  # a fraction: 0.2500 is 25 %
        return Decimal(str(value)).quantize(Decimal("0.0001"))
    column = ds.table._meta.get_column_by_name(measure.column or "")
    if isinstance(column, Numeric) and column.digits:
        return Decimal(str(value)).quantize(Decimal(1).scaleb(-column.digits[1]))
    return Decimal(str(value)) if isinstance(value, float) else value


async def aggregate(access: Access, key: str, dimensions: Sequence[str] = (), measures: Sequence[str] = (),
                    where: Combinable | None = None, limit: int = 1000) -> list[dict[str, Any]]:
    """Rows of ``dimensions`` (by name) and ``measures`` (by name) over the rows of dataset ``key`` the user
    may read, grouped by the dimensions, largest first measure first."""
    ds = await dataset(key, access)
    dims = {d.name: d for d in ds.dimensions}
    meas = {m.name: m for m in ds.measures}
    unknown = [n for n in dimensions if n not in dims]
    if unknown:
        raise ValidationError({"dimensions": f"unknown: {', '.join(unknown)}"})
    unknown = [n for n in measures if n not in meas]
    if unknown or not measures:
        raise ValidationError({"measures": f"unknown: {', '.join(unknown)}" if unknown else "choose at least one"})
    group_by = []
    for name in dimensions:
        _check_field(access, ds, dims[name].column, "dimensions")
        group_by.append(_group(ds, dims[name]))
    figures = []
    for name in measures:
        for col in _measure_columns(meas[name]):
            _check_field(access, ds, col, "measures")
        figures.append(_aggregate(ds, meas[name], name))
    query = await access.select(ds.table, ds.model, *group_by, *figures, where=where)
    if group_by:
        query = query.group_by(*group_by)
    rows = await query.limit(limit)
    out = []
    for row in rows:
        item = {name: row[name if custom_fields.by_name(ds.model, dims[name].column) else dims[name].column]
                for name in dimensions}
        for name in measures:
            item[name] = _number(ds, meas[name], row[name])
        out.append(item)
    first = measures[0]
    return sorted(out, key=lambda r: r[first] if r[first] is not None else 0, reverse=True)


# --- Report queries: what a report builder asks of a dataset, answered by SQL aggregations ---------------------

GRAINS = ("day", "week", "month", "quarter", "year")
AGGREGATES = ("count", "sum", "avg", "min", "max", "distinct")
#: a report runs at most this long on PostgreSQL before the database cancels it
TIMEOUT_SECONDS = 20.0
#: an export's query (every group, sorted, before the first row comes) at most this long
EXPORT_TIMEOUT_SECONDS = 120.0
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_LABEL_COLUMNS = ("name", "title", "display_name", "reference", "login")
_PG_GRAIN = {"day": "YYYY-MM-DD", "month": "YYYY-MM", "quarter": 'YYYY-"Q"Q', "year": "YYYY"}
_SQLITE_GRAIN = {"day": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}


@dataclass(frozen=True)
class Query:
    """A report's question: ``dimensions`` are dimension names, a date one with a grain (``created_at:month``);
    ``measures`` are the dataset's measure names or ``aggregate:column`` over a column the dataset declares
    (``distinct:owner``); ``condition`` is a :mod:`core.conditions` tree over those columns; ``sort`` names a
    dimension or measure (``-`` first: descending); ``totals`` adds subtotal and grand-total rows."""

    dataset: str
    dimensions: tuple[str, ...] = ()
    measures: tuple[str, ...] = ("count",)
    condition: Any = None
    sort: str = ""
    limit: int = 1000
    totals: bool = False


@dataclass(frozen=True)
class ResultColumn:
    """One column of a result: ``key`` in the rows, what it is, and (for a reference) ``label_key``: the referenced
    record's name, ``<label_key>_zh`` its Chinese name when the referenced table has one (``name_zh``), and
    ``<key>__order`` its place when it has a ``sequence`` (pipeline stages)."""

    key: str
    label: str
    kind: str  # "dimension" | "measure"
    label_key: str = ""
    money: bool = False


@dataclass
class Result:
    """Rows (one per group) and, with totals, ``totals``: rows with ``_level`` = how many leading dimensions
    they keep (0: the grand total)."""

    columns: list[ResultColumn]
    rows: list[dict[str, Any]]
    totals: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class _Dim:
    name: str
    key: str
    expr: Any  # a column or a QueryString selected as ``key``
    label: str
    #: (key in the row, column of the referenced table): filled after the aggregate (``_labelled``), by id
    label_exprs: tuple[tuple[str, Any], ...] = ()
    label_key: str = ""
    group: Any = None  # what GROUP BY names when not ``expr`` itself (a date's period: ``expr`` derives from it)
    target: Any = None  # the table a reference's labels are read from

    @property
    def grouped(self) -> Any:
        return self.expr if self.group is None else self.group


@dataclass(frozen=True)
class _Measure:
    key: str
    label: str
    aggregate: str
    column: str | None
    span: tuple[str, str] | None = None
    cost: str | None = None


def _measure_columns(m: Measure) -> tuple[str, ...]:
    if m.span is not None:
        return m.span
    return tuple(c for c in (m.column, m.cost) if c)


def _declared_columns(ds: Dataset) -> list[str]:
    return list(dict.fromkeys([d.column for d in ds.dimensions] + [c for m in ds.measures
                                                                   for c in _measure_columns(m)]))


def _is_date(column: Column) -> bool:
    return isinstance(column, (Date, Timestamp, Timestamptz))


def _grain_group(column: Column, grain: str) -> QueryString | None:
    """What a date dimension groups by on PostgreSQL: ``date_trunc`` (cheap per row); the period's text is
    written once per group from it (``to_char`` of each of a million rows cost a card a tenth of its time)."""
    if not db.is_postgres():
        return None
    return QueryString(f"date_trunc('{grain}', {column._meta.get_full_name(with_alias=False)})")


def _grain_expr(column: Column, grain: str, alias: str) -> QueryString:
    name = column._meta.get_full_name(with_alias=False)
    if db.is_postgres():
        fmt = "YYYY-MM-DD" if grain == "week" else _PG_GRAIN[grain]
        return QueryString(f"to_char(date_trunc('{grain}', {name}), '{fmt}')", alias=alias)
    if grain == "week":  # the Monday the week starts on, as on PostgreSQL
        return QueryString(f"date({name}, 'weekday 0', '-6 days')", alias=alias)
    if grain == "quarter":
        return QueryString(f"strftime('%Y', {name}) || '-Q' || ((CAST(strftime('%m', {name}) AS INTEGER) + 2) / 3)",
                           alias=alias)
    return QueryString(f"strftime('{_SQLITE_GRAIN[grain]}', {name})", alias=alias)


def _dimension(access: Access, ds: Dataset, spec: str) -> _Dim:
    name, _, grain = spec.partition(":")
    dims = {d.name: d for d in ds.dimensions}
    if name not in dims:
        raise ValidationError({"dimensions": f"{ds.key} has no dimension {name!r}"})
    dim = dims[name]
    _check_field(access, ds, dim.column, "dimensions")
    if custom_fields.by_name(ds.model, dim.column) is not None:
        if grain:
            raise ValidationError({"dimensions": f"{name!r} takes no date grain"})
        return _Dim(name, name, _group(ds, dim), dim.label)
    column = _column(ds, dim.column, "dimensions")
    if grain:
        if grain not in GRAINS or not _is_date(column):
            raise ValidationError({"dimensions": f"{name!r} takes no date grain {grain!r}"})
        key = f"{name}__{grain}"
        return _Dim(spec, key, _grain_expr(column, grain, key), dim.label, group=_grain_group(column, grain))
    if isinstance(column, ForeignKey):
        target = column._foreign_key_meta.resolved_references
        names = {c._meta.name for c in target._meta.columns}
        found = next((n for n in _LABEL_COLUMNS if n in names), None)
        if found is not None:
            label_key = f"{name}__label"
            wanted = [(label_key, found)]
            if f"{found}_zh" in names:  # a Chinese name beside the English one (``name_zh``): both come along
                wanted.append((f"{label_key}_zh", f"{found}_zh"))
            if "sequence" in names:  # ordered records (pipeline stages): their order, for funnels
                wanted.append((f"{name}__order", "sequence"))
            return _Dim(name, dim.column, column, dim.label, tuple(wanted), label_key, target=target)
    return _Dim(name, dim.column, column, dim.label)


def _measure(access: Access, ds: Dataset, spec: str) -> _Measure:
    declared = {m.name: m for m in ds.measures}
    if spec in declared:
        m = declared[spec]
        for used in _measure_columns(m):
            _check_field(access, ds, used, "measures")
        return _Measure(spec, m.label, m.aggregate, m.column, m.span, m.cost)
    aggregate_, _, column = spec.partition(":")
    if aggregate_ not in AGGREGATES or not column:
        raise ValidationError({"measures": f"{ds.key} has no measure {spec!r}"})
    if column not in _declared_columns(ds):
        raise ValidationError({"measures": f"{ds.key} has no column {column!r}"})
    col = _column(ds, column, "measures")
    if aggregate_ in ("sum", "avg") and not isinstance(col, (Numeric, Integer, BigInt, SmallInt, Real)):
        raise ValidationError({"measures": f"{aggregate_} needs a number, {column!r} is not one"})
    _check_field(access, ds, column, "measures")
    labels = {d.column: d.label for d in ds.dimensions} | {m.column: m.label for m in ds.measures if m.column}
    return _Measure(f"{aggregate_}__{column}", f"{aggregate_}({labels.get(column, column)})", aggregate_, column)


def _figure(ds: Dataset, m: _Measure) -> Any:
    if m.aggregate == "count":
        return Count(alias=m.key)
    if m.span is not None:
        return _span_figure(ds, m.aggregate, m.span, m.key)
    if m.aggregate == "return":
        return _return_figure(ds, m.column, m.cost, m.key)
    column = _column(ds, m.column or "", "measures")
    if m.aggregate == "distinct":
        return Count(distinct=[column], alias=m.key)
    return _AGGREGATES[m.aggregate](column, alias=m.key)


def _typed(ds: Dataset, m: _Measure, value: Any) -> Any:
    if value is None or m.aggregate in ("count", "distinct"):
        return value
    return _number(ds, Measure(m.key, m.label, "return" if m.aggregate == "return" else "sum", m.column, m.span),
                   value)


def filter_schema(ds: Dataset) -> conditions.Schema:
    """The fields a report's condition may name: the columns the dataset declares (and its custom fields)."""
    usable = [c for c in _declared_columns(ds) if custom_fields.by_name(ds.model, c) is None
              and conditions._column_kind(ds.table._meta.get_column_by_name(c)) is not None]
    labels = {d.column: d.label for d in ds.dimensions} | {m.column: m.label for m in ds.measures if m.column}
    return conditions.schema_for(ds.model, ds.table, usable, labels=labels)


def _order(query: Any, sort: str, keys: set[str]) -> Any:
    key = sort.lstrip("-")
    if key not in keys or not _NAME.match(key):
        raise ValidationError({"sort": f"cannot sort by {key!r}: choose a dimension or a measure of the report"})
    return query.order_by(QueryString(f'"{key}"'), ascending=not sort.startswith("-"))


async def _level(access: Access, ds: Dataset, dims: Sequence[_Dim], measures: Sequence[_Measure],
                 where: Combinable | None, sort: str, limit: int) -> list[dict[str, Any]]:
    query = await access.select(ds.table, ds.model, *[d.expr for d in dims], *[_figure(ds, m) for m in measures],
                                where=where)
    if dims:
        query = query.group_by(*[d.grouped for d in dims])
    if sort:
        query = _order(query, sort, {d.key for d in dims} | {m.key for m in measures})
    return await _labelled(dims, await query.limit(limit))


async def _labelled(dims: Sequence[_Dim], rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` with each reference's name (and Chinese name, order) read by id from the referenced table: after
    the aggregate, a lookup of its few groups, rather than a join of every row before it (a join widened a
    million rows' grouping key with texts)."""
    out = [dict(r) for r in rows]
    for d in dims:
        if not d.label_exprs:
            continue
        ids = sorted({r[d.key] for r in out if r.get(d.key) is not None})
        pk = d.target._meta.primary_key
        found: dict[Any, Mapping[str, Any]] = {}
        for start in range(0, len(ids), 5000):
            part = ids[start:start + 5000]
            for hit in await d.target.select(pk.as_alias("_id"), *[getattr(d.target, c).as_alias(alias)
                                                                   for alias, c in d.label_exprs]).where(
                    pk.is_in(part)):
                found[hit["_id"]] = hit
        for r in out:
            hit = found.get(r.get(d.key))
            r.update({alias: hit[alias] if hit else None for alias, _ in d.label_exprs})
    return out


async def _rollup_pg(access: Access, ds: Dataset, dims: Sequence[_Dim], measures: Sequence[_Measure],
                     where: Combinable | None) -> list[dict[str, Any]]:
    """Every subtotal level in one statement: ``GROUP BY ROLLUP`` with ``GROUPING()`` telling a subtotal's
    empty cell from a real NULL."""
    names = [d.grouped for d in dims]
    parts = [QueryString("({})", _bare(c)) for c in names]
    grouping = QueryString("GROUPING(" + ", ".join("{}" for _ in names) + ")", *[_bare(c) for c in names],
                           alias="_grouping")
    query = await access.select(ds.table, ds.model, *[d.expr for d in dims], grouping,
                                *[_figure(ds, m) for m in measures], where=where)
    query = query.group_by(QueryString("ROLLUP(" + ", ".join("{}" for _ in parts) + ")", *parts))
    out = []
    for row in await query:
        if row["_grouping"] == 0:
            continue  # the detail rows come from the main query (sorted and limited there)
        level = next(i for i in range(len(dims) + 1) if row["_grouping"] == (1 << (len(dims) - i)) - 1)
        out.append({**row, "_level": level})
    return await _labelled(dims, out)


#: figures whose subtotals follow from the groups' own (PostgreSQL's exact numerics: SQLite's floats would not add
#: up to its own SUM to the cent)
_ROLLS: dict[str, Callable[[list[Any]], Any]] = {"count": sum, "sum": sum, "min": min, "max": max}


def _rolled_up(dims: Sequence[_Dim], measures: Sequence[_Measure], rows: Sequence[Mapping[str, Any]]) -> list[
        dict[str, Any]]:
    """Subtotal and grand-total rows (``_level`` = dimensions kept) worked out from every detail row, as ROLLUP
    would give them: the detail query's single (parallel) scan serves both."""
    out: list[dict[str, Any]] = []
    for level in range(len(dims) - 1, -1, -1):
        keys = [d.key for d in dims[:level]] + [alias for d in dims[:level] for alias, _ in d.label_exprs]
        groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
        if level == 0:
            groups[()] = []  # the grand total, of nothing when no row matched (as ROLLUP gives it)
        for row in rows:
            groups.setdefault(tuple(row.get(k) for k in keys), []).append(row)
        for key, members in groups.items():
            total: dict[str, Any] = dict(zip(keys, key, strict=True))
            for m in measures:
                found = [r[m.key] for r in members if r.get(m.key) is not None]
                total[m.key] = _ROLLS[m.aggregate](found) if found else (0 if m.aggregate == "count" else None)
            out.append({**total, "_level": level})
    return out


def _bare(expr: Any) -> QueryString:
    """A column or expression as it appears in GROUP BY (no alias)."""
    if isinstance(expr, Column):
        return QueryString(expr._meta.get_full_name(with_alias=False))
    return QueryString(expr.template, *expr.args)


@dataclass(frozen=True)
class _Plan:
    """A query checked against its dataset and the user's rights, ready to run."""

    ds: Dataset
    dims: list[_Dim]
    measures: list[_Measure]
    where: Combinable | None
    sort: str
    columns: list[ResultColumn]

    def shaped(self, row: Mapping[str, Any]) -> dict[str, Any]:
        out = {d.key: row.get(d.key) for d in self.dims}
        out.update({alias: row.get(alias) for d in self.dims for alias, _ in d.label_exprs})
        out.update({m.key: _typed(self.ds, m, row.get(m.key)) for m in self.measures})
        if "_level" in row:
            out["_level"] = row["_level"]
        return out


async def _plan(access: Access, q: Query) -> _Plan:
    ds = await dataset(q.dataset, access)
    if not q.measures:
        raise ValidationError({"measures": "choose at least one"})
    if len(q.dimensions) > 4 or len(q.measures) > 8:
        raise ValidationError({"dimensions": "at most 4 dimensions and 8 measures"})
    dims = [_dimension(access, ds, spec) for spec in q.dimensions]
    measures = [_measure(access, ds, spec) for spec in q.measures]
    schema = filter_schema(ds)
    where = conditions.to_where(conditions.parse(q.condition, schema), schema, access) if q.condition else None
    sort = q.sort or (f"-{measures[0].key}" if dims else "")
    money = {m.key for m in measures if m.column and m.aggregate in ("sum", "avg", "min", "max")
             and isinstance(ds.table._meta.get_column_by_name(m.column), Numeric)}
    columns = [ResultColumn(d.key, d.label, "dimension", d.label_key) for d in dims]
    columns += [ResultColumn(m.key, m.label, "measure", money=m.key in money) for m in measures]
    return _Plan(ds, dims, measures, where, sort, columns)


async def run(access: Access, q: Query, *, timeout: float | None = None) -> Result:
    """The result of ``q`` over the rows of its dataset the user may read, computed by the database (GROUP BY,
    and ROLLUP for totals on PostgreSQL; one GROUP BY per level on SQLite). Unknown names are a 422 naming
    them, fields the user may not read a 403; on PostgreSQL the statement is cancelled past ``timeout``
    seconds (:data:`TIMEOUT_SECONDS` by default) with a :class:`~core.errors.UserError` saying so."""
    p = await _plan(access, q)
    ds, dims, measures, where = p.ds, p.dims, p.measures, p.where
    limit = max(1, min(int(q.limit), 1_100_000))

    async def go() -> Result:
        rows = await _level(access, ds, dims, measures, where, p.sort, limit)
        totals: list[dict[str, Any]] = []
        if q.totals and dims:
            if db.is_postgres() and len(rows) < limit and all(m.aggregate in _ROLLS for m in measures):
                totals = _rolled_up(dims, measures, rows)  # every group is here: no second pass over the table
            elif db.is_postgres():
                totals = await _rollup_pg(access, ds, dims, measures, where)
            else:
                for level in range(len(dims) - 1, -1, -1):
                    for row in await _level(access, ds, dims[:level], measures, where, "", limit):
                        totals.append({**row, "_level": level})
        return Result(p.columns, [p.shaped(r) for r in rows], [p.shaped(r) for r in totals])

    if not db.is_postgres():
        return await go()
    return await limited(ds.table, go, TIMEOUT_SECONDS if timeout is None else timeout)


async def stream(access: Access, q: Query, *, timeout: float | None = None,
                 batch: int = 2000) -> tuple[list[ResultColumn], AsyncIterator[list[dict[str, Any]]]]:
    """The columns of ``q`` and its rows (no totals, no row cap) in batches, for an export of any size: on
    PostgreSQL read through a cursor on a connection of its own, so the process holds one batch at a time
    (``run`` holds every row). Names and rights are checked before this returns (422/403 before a response
    starts); the statement is cancelled past ``timeout`` seconds (:data:`EXPORT_TIMEOUT_SECONDS`). The batches
    must be consumed or the iterator closed (it holds its connection until then)."""
    p = await _plan(access, q)
    seconds = EXPORT_TIMEOUT_SECONDS if timeout is None else timeout
    query = await access.select(p.ds.table, p.ds.model, *[d.expr for d in p.dims],
                                *[_figure(p.ds, m) for m in p.measures], where=p.where)
    if p.dims:
        query = query.group_by(*[d.grouped for d in p.dims])
    if p.sort:
        query = _order(query, p.sort, {d.key for d in p.dims} | {m.key for m in p.measures})

    async def rows() -> AsyncIterator[list[dict[str, Any]]]:
        if not db.is_postgres():  # the embedded shape: one process, small data
            found = [p.shaped(r) for r in await _labelled(p.dims, await query)]
            for start in range(0, len(found), batch):
                yield found[start:start + batch]
            return
        import asyncpg

        sql, args = query.querystrings[0].compile_string(engine_type="postgres")
        engine: Any = db.current()
        conn = await (engine.pool.acquire() if engine.pool else engine.get_new_connection())
        try:
            async with conn.transaction():
                await conn.execute(f"SET LOCAL statement_timeout = {max(1, int(seconds * 1000))}")
                chunk: list[dict[str, Any]] = []
                try:
                    async for record in conn.cursor(sql, *args, prefetch=batch):
                        chunk.append(record)
                        if len(chunk) >= batch:
                            yield [p.shaped(r) for r in await _labelled(p.dims, chunk)]
                            chunk = []
                except asyncpg.exceptions.QueryCanceledError:
                    raise QueryTimeout(f"the export took longer than {seconds:g} s and was cancelled",
                                       seconds=seconds) from None
                if chunk:
                    yield [p.shaped(r) for r in await _labelled(p.dims, chunk)]
        finally:
            await (engine.pool.release(conn) if engine.pool else conn.close())

    return p.columns, rows()


async def limited(table: type[Table], work: Callable[[], Awaitable[T]], seconds: float) -> T:
    """Run ``work``'s queries in one transaction whose statements PostgreSQL cancels past ``seconds``."""
    import asyncpg

    try:
        async with db.atomic():
            await table.raw("SELECT set_config('statement_timeout', {}, true)", str(max(1, int(seconds * 1000))))
            return await work()
    except asyncpg.exceptions.QueryCanceledError:
        raise QueryTimeout(f"the report took longer than {seconds:g} s and was cancelled: narrow its filters or "
                           "group by fewer fields", seconds=seconds) from None


class QueryTimeout(UserError):
    """A report cancelled by the database's statement timeout (``params["seconds"]``)."""

    code = "timeout"
