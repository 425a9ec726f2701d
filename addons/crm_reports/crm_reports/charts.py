"""One chart description for every exit: a Vega-Lite spec built from a report's result, drawn to SVG on the
server by ``vl-convert`` (the page shows it inline, the PDF embeds it, the e-mail attaches that PDF) and served
as JSON by the API. Not drawn by vega-embed in the browser: Vega compiles its expressions with ``new Function``,
which the kernel's Content-Security-Policy (``script-src 'self'``, no ``unsafe-eval``) rightly refuses, so the
server's SVG is what every page shows. Numbers are formatted with Babel for the reader's locale (labels and
tooltips) and the axes use the same locale's d3 format."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from decimal import Decimal
from functools import lru_cache
from typing import Any

from core import datasets
from core.formatting import format_date, format_datetime, format_number, format_percent
from core.i18n import gettext, language, translate
from core.labels import humanize

log = logging.getLogger(__name__)
VEGA_LITE = "https://vega.github.io/schema/vega-lite/v5.json"  # an identifier only: nothing is fetched
_FORMAT_LOCALES = {"zh_CN": "zh-CN", "en": "en-US"}
_SVG_SIZE = re.compile(r'^(<svg[^>]*?) width="[\d.]+" height="[\d.]+"')


def display(value: Any, *, money: bool = False) -> str:
    """A cell as the reader reads it (Babel, their language): numbers grouped, money with two decimals."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return gettext("Yes") if value else gettext("No")
    if isinstance(value, (int, Decimal, float)):
        return format_number(value, 2 if money or isinstance(value, float) else None)
    if isinstance(value, dt.datetime):
        return format_datetime(value)
    if isinstance(value, dt.date):
        return format_date(value)
    return str(value)


_KEY = re.compile(r"^[a-z][a-z0-9_]*$")


def category(row: dict[str, Any], col: datasets.ResultColumn) -> str:
    """A dimension's value as people read it: a reference's name; a stored key (``in_flight``, ``won``) in words,
    translated when a catalog knows them; else the value."""
    if col.label_key and language().startswith("zh") and row.get(f"{col.label_key}_zh"):
        return str(row[f"{col.label_key}_zh"])
    if col.label_key and row.get(col.label_key) not in (None, ""):
        return str(row[col.label_key])
    value = row.get(col.key)
    if isinstance(value, str) and _KEY.match(value):
        return translate(humanize(value))
    return display(value)


def table(result: datasets.Result) -> dict[str, Any]:
    """Header and formatted cells of the result, detail rows then totals (a level-0 row is the grand total)."""
    cols = result.columns
    body = [[category(r, c) if c.kind == "dimension" else display(r.get(c.key), money=c.money) for c in cols]
            for r in result.rows]
    totals = []
    for r in sorted(result.totals, key=lambda t: -t["_level"]):
        level = r["_level"]
        cells = [category(r, c) if c.kind == "dimension" and i < level else "" for i, c in enumerate(
            [c for c in cols if c.kind == "dimension"])]
        label = gettext("Grand total") if level == 0 else gettext("Subtotal")
        cells = cells + [""] * (len([c for c in cols if c.kind == "dimension"]) - len(cells))
        if cells:
            cells[level if level < len(cells) else -1] = label
        totals.append(cells + [display(r.get(c.key), money=c.money) for c in cols if c.kind == "measure"])
    return {"header": [c.label for c in cols], "rows": body, "totals": totals}


def pivot(result: datasets.Result) -> dict[str, Any]:
    """Rows by the first dimension, columns by the second, the first measure in the cells, with row and column
    totals and the grand total (from the database's subtotal rows, never re-added here)."""
    dims = [c for c in result.columns if c.kind == "dimension"]
    measure = next(c for c in result.columns if c.kind == "measure")
    if len(dims) < 2:
        return {"columns": [], "rows": [], "total": ""}
    row_dim, col_dim = dims[0], dims[1]
    col_keys: dict[Any, str] = {}
    cells: dict[Any, dict[Any, Any]] = {}
    labels: dict[Any, str] = {}
    for r in result.rows:
        col_keys.setdefault(r.get(col_dim.key), category(r, col_dim))
        labels.setdefault(r.get(row_dim.key), category(r, row_dim))
        cells.setdefault(r.get(row_dim.key), {})[r.get(col_dim.key)] = r.get(measure.key)
    row_totals = {t.get(row_dim.key): t.get(measure.key) for t in result.totals if t["_level"] == 1}
    grand = next((t.get(measure.key) for t in result.totals if t["_level"] == 0), None)
    # column totals come from a second grouping (by the column dimension alone) when the caller ran one
    col_totals = {t.get(col_dim.key): t.get(measure.key) for t in result.totals if t["_level"] == -1}
    rows = [{"label": labels[k], "cells": [display(cells[k].get(c), money=measure.money) for c in col_keys],
             "total": display(row_totals.get(k), money=measure.money)} for k in cells]
    return {"columns": list(col_keys.values()), "rows": rows, "measure": measure.label,
            "column_totals": [display(col_totals.get(c), money=measure.money) if col_totals else "" for c in col_keys],
            "total": display(grand, money=measure.money)}


def funnel(result: datasets.Result) -> list[dict[str, Any]]:
    """Funnel analysis of a result grouped by ordered records (pipeline stages carry a ``sequence``): per stage
    its figure, how much reached it (it or any later stage: a deal in a later stage went through this one) and
    the conversion to the next stage; the lowest conversion is marked as the bottleneck. Empty when the first
    dimension has no order."""
    dims = [c for c in result.columns if c.kind == "dimension"]
    measures = [c for c in result.columns if c.kind == "measure"]
    if not dims or not measures or not dims[0].label_key:
        return []
    order_key = dims[0].label_key.replace("__label", "__order")
    rows = sorted((r for r in result.rows if r.get(order_key) is not None), key=lambda r: r[order_key])
    if len(rows) < 2:
        return []
    m = measures[0]
    figures = [Decimal(str(r.get(m.key) or 0)) for r in rows]
    reached = [sum(figures[i:], Decimal(0)) for i in range(len(rows))]
    out: list[dict[str, Any]] = []
    for i, r in enumerate(rows):
        rate = reached[i + 1] / reached[i] if i + 1 < len(rows) and reached[i] else None
        out.append({"key": r.get(dims[0].key), "label": category(r, dims[0]), "figure": display(figures[i],
                    money=m.money), "reached": display(reached[i], money=m.money), "rate": rate,
                    "rate_text": format_percent(rate, 1) if rate is not None else "", "bottleneck": False,
                    "measure": m.label})
    rated = [o for o in out if o["rate"] is not None]
    if rated:
        min(rated, key=lambda o: o["rate"])["bottleneck"] = True
    return out


def spec(result: datasets.Result, chart: str, title: str = "") -> dict[str, Any] | None:
    """The Vega-Lite spec of ``chart`` over ``result`` (None for a table or a pivot). Data values carry each
    figure and its Babel-formatted text (``<key>__text``), used by labels and tooltips."""
    if chart in ("table", "pivot"):
        return None
    dims = [c for c in result.columns if c.kind == "dimension"]
    measures = [c for c in result.columns if c.kind == "measure"]
    if not dims or not measures:
        return None
    m = measures[0]
    values = []
    for r in result.rows:
        item: dict[str, Any] = {f"d{i}": category(r, d) for i, d in enumerate(dims)}
        item["v"] = float(r[m.key]) if r.get(m.key) is not None else 0.0
        item["v__text"] = display(r.get(m.key), money=m.money)
        values.append(item)
    x = {"field": "d0", "type": "nominal", "title": dims[0].label, "sort": None}
    y = {"field": "v", "type": "quantitative", "title": m.label}
    tooltip = [{"field": "d0", "title": dims[0].label}, {"field": "v__text", "title": m.label}]
    base: dict[str, Any] = {"$schema": VEGA_LITE, "data": {"values": values}, "width": "container",
                            "autosize": {"type": "fit", "contains": "padding"},
                            "config": {"font": "WenQuanYi Micro Hei, Noto Sans CJK SC, sans-serif",
                                       "axis": {"labelLimit": 120}}}
    if title:
        base["title"] = title
    if chart == "pie":
        return {**base, "mark": {"type": "arc", "innerRadius": 30},
                "encoding": {"theta": {"field": "v", "type": "quantitative"},
                             "color": {"field": "d0", "type": "nominal", "title": dims[0].label},
                             "tooltip": tooltip}}
    if chart == "funnel":
        order = {"field": "v", "order": "descending"}
        centred = {**y, "stack": "center", "axis": None}
        return {**base, "encoding": {"y": {**x, "sort": order}, "x": centred}, "layer": [
            {"mark": "bar", "encoding": {"tooltip": tooltip}},
            {"mark": {"type": "text", "color": "black"}, "encoding": {"text": {"field": "v__text"}}}]}
    if chart == "line":
        enc: dict[str, Any] = {"x": {**x, "type": "ordinal", "sort": "ascending"}, "y": y, "tooltip": tooltip}
        if len(dims) > 1:
            enc["color"] = {"field": "d1", "type": "nominal", "title": dims[1].label}
        return {**base, "mark": {"type": "line", "point": True}, "encoding": enc}
    enc = {"x": x, "y": y, "tooltip": tooltip}
    if chart == "stacked_bar" and len(dims) > 1:
        enc["color"] = {"field": "d1", "type": "nominal", "title": dims[1].label}
        tooltip.insert(1, {"field": "d1", "title": dims[1].label})
    return {**base, "mark": "bar", "encoding": enc}


#: the width a phone's chart is drawn at (a 390 px screen less the page's margins): drawn, not scaled down
NARROW = 340
_NARROW_CONFIG: dict[str, dict[str, Any]] = {"axis": {"labelFontSize": 13, "titleFontSize": 13, "labelLimit": 110},
                  "legend": {"labelFontSize": 12, "titleFontSize": 12, "orient": "bottom", "columns": 2},
                  "title": {"fontSize": 14}, "text": {"fontSize": 13}}


def narrow(vl_spec: dict[str, Any] | None) -> dict[str, Any] | None:
    """``vl_spec`` for a phone: larger labels, the legend below, and bars laid sideways so each category's
    label is written horizontally instead of squeezed under a narrow bar."""
    if vl_spec is None:
        return None
    config = {**vl_spec.get("config", {})}
    for key, extra in _NARROW_CONFIG.items():
        config[key] = {**config.get(key, {}), **extra}
    out = {**vl_spec, "config": config}
    enc = vl_spec.get("encoding")
    if vl_spec.get("mark") == "bar" and enc and "x" in enc and "y" in enc:
        out["encoding"] = {**enc, "x": enc["y"], "y": enc["x"]}
        out["height"] = {"step": 26}  # a row per category, tall enough for its label
    elif enc and enc.get("x", {}).get("type") == "ordinal":  # a line over periods: slanted period labels
        out["encoding"] = {**enc, "x": {**enc["x"], "axis": {"labelAngle": -45}}}
    return out


@lru_cache(maxsize=1)
def _converter() -> Any:
    import vl_convert

    return vl_convert


def svg_sync(vl_spec: dict[str, Any], *, width: int = 640, lang: str | None = None) -> str:
    """The chart as SVG (no network: no external data is allowed), scaling to its container's width."""
    fixed = {**vl_spec, "width": width}
    svg = str(_converter().vegalite_to_svg(fixed, format_locale=_FORMAT_LOCALES.get(lang or language(), "en-US"),
                                           allowed_base_urls=[]))
    # drop the fixed size (the viewBox keeps the proportions) so a phone's narrow screen scales it down
    return _SVG_SIZE.sub(r"\1", svg, count=1)


async def svg(vl_spec: dict[str, Any] | None, *, width: int = 640) -> str:
    """The SVG of ``vl_spec`` ("" when there is no chart, or it cannot be drawn: the table still shows)."""
    if vl_spec is None:
        return ""
    from crm_reports import cache

    lang = language()

    async def draw() -> str:
        try:
            return await asyncio.to_thread(svg_sync, vl_spec, width=width, lang=lang)
        except ValueError:
            log.exception("chart could not be drawn")
            return ""

    return await cache.drawn([vl_spec, width, lang], draw)
