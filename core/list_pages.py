"""A record list page's sort and pages: ``?sort=`` (a column the page offers, or a custom field ``cf_<key>``,
``-`` for descending) and ``?after=`` (the keyset cursor of :mod:`core.keyset`), read through the user's rights.

One place for what every list page needs, so a list never stops at "the newest 200": any row is reachable page
by page, in the order the user chose, at the same cost on page 1 and page 10,000.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from piccolo.columns.base import Column
from piccolo.custom_types import Combinable
from piccolo.table import Table

from core import customfields
from core.customfields.definitions import FieldDef, is_key
from core.errors import PermissionDenied, ValidationError
from core.i18n import N_
from core.keyset import Keyset
from core.security.access import Access

__all__ = ["Page", "custom_field", "is_custom_param", "sorted_page"]


def is_custom_param(name: str) -> bool:
    """``cf_<key>``: a custom field's filter or sort parameter."""
    return name.startswith("cf_") and is_key(name[3:])


def custom_field(model: str, param: str, acc: Access | None, *, filtering: bool) -> FieldDef:
    """The active custom field a ``cf_<key>`` parameter names, filterable (or sortable) and seen in clear by
    ``acc``; 422 naming the parameter, or 403 for a field the user sees masked or hidden."""
    fd = customfields.definition(model, param.removeprefix("cf_"))
    if fd is None or (filtering and not fd.is_filterable) or (not filtering and fd.kind not in customfields.SORTABLE):
        raise ValidationError({param: "is not a custom field you can " + ("filter on" if filtering else "sort by")})
    if acc is not None and (acc.is_masked(model, fd.name) or not acc.visible_fields(model, [fd.name])):
        message = N_("you may not filter on %(field)s") if filtering else N_("you may not sort by %(field)s")
        raise PermissionDenied(message % {"field": repr(fd.name)}, field=param)
    return fd


def sortable_custom(acc: Access, model: str) -> list[FieldDef]:
    """The listed custom fields ``acc`` may sort ``model``'s list by (seen in clear, of an ordered kind)."""
    return [f for f in customfields.visible(acc, model, listed=True)
            if f.kind in customfields.SORTABLE and not acc.is_masked(model, f.name)]


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    next: str | None  # the ``after`` cursor of the next page, None on the last
    sort: str  # the sort as applied (the default when none was asked)


async def sorted_page(acc: Access, model: str, table: type[Table], columns: Sequence[Any], *,
                      where: Combinable | None, params: Mapping[str, Any], sortable: Mapping[str, Column],
                      default: str = "-id", limit: int = 50) -> Page:
    """One page of ``model``'s rows ``acc`` may read (``columns`` selected), sorted by ``params["sort"]`` (a key
    of ``sortable`` or a sortable custom field), after ``params["after"]``. An unknown sort is a 422 naming
    ``sort``; a foreign or forged cursor a 422 naming ``after``. Rows are as selected (present them)."""
    sort = str(params.get("sort") or default)
    name, descending = sort.lstrip("-"), sort.startswith("-")
    keyset: Any
    if is_custom_param(name):  # its expression, NULLs last, then the id
        keyset = customfields.CustomKeyset(table, custom_field(model, name, acc, filtering=False), descending)
        extra: Any = keyset.select()
    elif name == "id" or name in sortable:
        column = table._meta.primary_key if name == "id" else sortable[name]
        keyset = Keyset(column, table._meta.primary_key, descending=descending)
        extra = column
    else:
        offered = ", ".join(sorted({"id", *sortable}))
        raise ValidationError({"sort": N_("must be one of %(names)s") % {"names": offered}})
    query = await acc.select(table, model, *columns, table._meta.primary_key, extra, where=where)
    after = str(params.get("after") or "")
    if after:
        query = query.where(keyset.after(after))
    rows, nxt = keyset.page(await keyset.order(query).limit(limit + 1), limit)
    return Page(rows, nxt, sort)


def next_url(params: Any, cursor: str | None) -> str:
    """The link to the page after ``cursor``, keeping the list's filters and sort (``""`` on the last page)."""
    from urllib.parse import urlencode

    if not cursor:
        return ""
    kept = [(k, v) for k, v in params.multi_items() if k != "after"]
    return "?" + urlencode([*kept, ("after", cursor)])
