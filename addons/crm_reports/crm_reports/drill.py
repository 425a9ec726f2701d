"""From a figure to its rows: the dataset names the page listing them (``Dataset.drill``), crm_reports adds the
figure's group (``?stage=3``) and what the report's filter says that the page understands — a value a dimension
must equal, a period on a date dimension (``created_at_from`` / ``created_at_to``) — so a funnel stage opens the
deals of that stage over the report's period. The page itself checks what the user may read."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlencode

from core.hooks import Dataset


def _leaves(condition: Any) -> Iterator[Mapping[str, Any]]:
    """The comparisons that must all hold (nested ``all``), never those under ``any`` or ``not``."""
    if isinstance(condition, Mapping):
        if "all" in condition and isinstance(condition["all"], list):
            for part in condition["all"]:
                yield from _leaves(part)
        elif "field" in condition:
            yield condition


def _day(value: Any) -> str:
    try:
        return dt.date.fromisoformat(str(value)[:10]).isoformat()
    except ValueError:
        return ""


def filters(ds: Dataset, condition: Any) -> dict[str, str]:
    """Query parameters the report's ``condition`` turns into for the drill page."""
    by_column = {d.column: d.name for d in ds.dimensions}
    out: dict[str, str] = {}
    for leaf in _leaves(condition):
        name = by_column.get(str(leaf.get("field")))
        op, value = leaf.get("op"), leaf.get("value")
        if name is None or isinstance(value, (list, dict)):
            continue
        if op == "eq" and value is not None:
            out[name] = str(value)
        elif op in ("gte", "gt") and _day(value):
            out[f"{name}_from"] = _day(value)
        elif op in ("lte", "lt") and _day(value):
            out[f"{name}_to"] = _day(value)
    return out


def link(ds: Dataset, condition: Any, dimension: str, value: Any) -> str:
    """The URL of the rows behind one group (``dimension`` = ``value``), "" when the dataset has no such page."""
    if not ds.drill or value is None or ":" in dimension:  # a period group (a month) has no single value to pass
        return ""
    params = {**filters(ds, condition), dimension: str(value)}
    return f"{ds.drill}?{urlencode(params)}"
