"""Exports of a report's result: CSV (streamed row by row), XLSX (xlsxwriter in constant-memory mode; past
Excel's row limit refused, never cut short) and PDF (WeasyPrint, the chart as SVG). Every export is audited
with its format and row count. A text cell starting with = + - @ (or a tab / carriage return) is
prefixed with ``'`` so a spreadsheet never runs it as a formula."""

from __future__ import annotations

import csv
import datetime as dt
import io
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from core import datasets
from core.errors import UserError
from core.i18n import gettext
from core.security import audit
from crm_reports import charts
from crm_reports.manifest import REPORT

EXCEL_MAX_ROWS = 1_048_576  # rows in one worksheet, the header included
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutral(value: Any) -> Any:
    """``value`` safe in a spreadsheet cell: text that a spreadsheet would read as a formula gets a ``'``."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _exact(value: Any, tz: Any) -> str | None:
    """A date or a moment as a spreadsheet reads it and to the second, in the reader's time zone (the page shows
    it in their language to the minute: rows a second apart would look alike in a file); None for anything else."""
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)  # stored timestamps are UTC
        return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    return None


def _cells(result: datasets.Result | list[datasets.ResultColumn], row: dict[str, Any]) -> list[Any]:
    from core.formatting import zone

    out: list[Any] = []
    for c in result.columns if isinstance(result, datasets.Result) else result:
        exact = _exact(row.get(c.key), zone()) if c.kind == "dimension" and not c.label_key else None
        value = exact if exact is not None else charts.category(row, c) if c.kind == "dimension" else row.get(c.key)
        out.append(neutral(value if c.kind == "dimension" else (value if value is not None else "")))
    return out


def csv_lines(result: datasets.Result) -> Iterator[str]:
    """The CSV one line at a time (header first), for a streamed response."""
    buf = io.StringIO()
    writer = csv.writer(buf)

    def take() -> str:
        text = buf.getvalue()
        buf.seek(0)
        buf.truncate()
        return text

    writer.writerow([neutral(c.label) for c in result.columns])
    yield "\ufeff" + take()  # a BOM: Excel opens UTF-8 (Chinese) correctly
    for row in result.rows:
        writer.writerow(_cells(result, row))
        yield take()


async def csv_stream(columns: list[datasets.ResultColumn], batches: AsyncIterator[list[dict[str, Any]]],
                     counted: list[int]) -> AsyncIterator[bytes]:
    """The CSV of ``batches`` (``datasets.stream``) as UTF-8 pieces of about 64 KB: a few thousand rows each, so
    an export of millions of rows holds one batch at a time and costs a few thousand sends, not one per row.
    ``counted[0]`` holds the rows written so far (for the audit)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([neutral(c.label) for c in columns])
    yield ("\ufeff" + buf.getvalue()).encode()  # a BOM: Excel opens UTF-8 (Chinese) correctly
    buf.seek(0)
    buf.truncate()
    async for batch in batches:
        for row in batch:
            writer.writerow(_cells(columns, row))
        counted[0] += len(batch)
        if buf.tell() >= 1 << 16:
            yield buf.getvalue().encode()
            buf.seek(0)
            buf.truncate()
    if buf.tell():
        yield buf.getvalue().encode()


def check_excel_rows(count: int) -> None:
    if count + 1 > EXCEL_MAX_ROWS:
        raise UserError(gettext("This report has %(rows)s rows: Excel holds at most %(limit)s. Export it as CSV "
                                "or add filters.") % {"rows": f"{count:,}", "limit": f"{EXCEL_MAX_ROWS - 1:,}"})


def xlsx(result: datasets.Result, title: str) -> bytes:
    import xlsxwriter

    check_excel_rows(len(result.rows))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "report.xlsx"
        book = xlsxwriter.Workbook(str(path), {"constant_memory": True, "tmpdir": tmp,
                                               "strings_to_formulas": False, "strings_to_urls": False})
        sheet = book.add_worksheet((title or "Report")[:31].translate({ord(c): " " for c in "[]:*?/\\"}))
        bold = book.add_format({"bold": True})
        money = book.add_format({"num_format": "#,##0.00"})
        for col, c in enumerate(result.columns):
            sheet.write_string(0, col, str(neutral(c.label)), bold)
        for r, row in enumerate(result.rows, start=1):
            for col, (c, value) in enumerate(zip(result.columns, _cells(result, row), strict=True)):
                if c.kind == "measure" and value != "":
                    sheet.write_number(r, col, float(value), money if c.money else None)
                else:
                    sheet.write_string(r, col, str(value))
        book.close()
        return path.read_bytes()


async def audited(report: dict[str, Any], fmt: str, rows: int, *, principal: Any = None) -> None:
    await audit.record("export", model=REPORT, record_id=report["id"], detail=f"{fmt}: {rows} rows",
                       principal=principal)


def pdf_context(report: dict[str, Any], result: datasets.Result, svg: str) -> dict[str, Any]:
    return {"report": report, "svg": svg, "table": charts.table(result),
            "pivot": charts.pivot(result) if report["chart"] == "pivot" else None}


_ENV: dict[int, Any] = {}


def _environment() -> Any:
    from core import templating
    from core.runtime import current

    runtime = current()
    if id(runtime) not in _ENV:
        _ENV.clear()
        _ENV[id(runtime)] = templating.environment(runtime.addons)
    return _ENV[id(runtime)]


async def pdf(report: dict[str, Any], result: datasets.Result, *, user: Any = None) -> bytes:
    """The report as a PDF in the current language: title, chart (SVG), the table; fonts from the kernel's CJK
    stack so Chinese prints."""
    from core import i18n, templating
    from core.reports import CJK_FONT_STACK, render_pdf_async
    from core.runtime import current

    svg = await charts.svg(charts.spec(result, report["chart"]), width=700)
    html = _environment().get_template("crm_reports/report_pdf.html").render(
        CJK_FONT_STACK=CJK_FONT_STACK, user=user, _=i18n.gettext, **pdf_context(report, result, svg))
    return await render_pdf_async(html, assets=templating.static_dirs(current().addons))
