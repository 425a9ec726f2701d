"""Datasets: the figures reporting may compute, declared by addons (``crm_datasets``), computed here through
the access layer — a figure counts only rows the user may read, and a dimension or measure on a field the
user sees hidden or masked is refused, so a report never leaks what the model's own pages would not show.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

from piccolo.columns import Numeric
from piccolo.columns.base import Column
from piccolo.custom_types import Combinable
from piccolo.query.functions.aggregate import Avg, Count, Max, Min, Sum

from core import hooks
from core.customfields import registry as custom_fields
from core.customfields import storage
from core.errors import NotFound, PermissionDenied, ValidationError
from core.hooks import Dataset, Dimension, Measure
from core.security.access import Access

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
    if measure.column is None:
        raise ValidationError({"measures": f"{measure.name} needs a column"})
    return _AGGREGATES[measure.aggregate](_column(ds, measure.column, "measures"), alias=alias)


def _number(ds: Dataset, measure: Measure, value: Any) -> Any:
    """A figure as the column's type: money stays Decimal at the column's scale on both databases (SQLite's
    SUM gives a float), never a float."""
    if value is None or measure.aggregate == "count":
        return value
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
        if meas[name].column:
            _check_field(access, ds, meas[name].column or "", "measures")
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
