"""Reading and writing spreadsheets: CSV (UTF-8, UTF-8 with BOM, GBK/GB18030) and XLSX (openpyxl).

Reading returns the header and the rows as strings; writing neutralizes formula injection: a cell that
starts with ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a leading apostrophe, so Excel and
LibreOffice show it as text instead of evaluating it (OWASP "CSV injection").
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Sequence
from typing import Any

from core.errors import ValidationError

MAX_CELL = 1_000_000  # a parser limit only: fields have their own, smaller limits checked per row
_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")

csv.field_size_limit(MAX_CELL)


def decode(content: bytes) -> str:
    """Bytes of a CSV file as text: UTF-8 (BOM or not), else GB18030 (a superset of GBK and GB2312)."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ValidationError({"file": "is neither UTF-8 nor GBK text"})


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime) and value.time() == dt.time(0):
        return value.date().isoformat()
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # 13800138000.0 from a numeric phone column
    return str(value)


def read_table(content: bytes, filename: str) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of a CSV or XLSX file; blank trailing rows dropped. 422 on ``file`` if unreadable."""
    if not content:
        raise ValidationError({"file": "is empty"})
    if filename.lower().endswith((".xlsx", ".xlsm")) or content[:2] == b"PK":
        rows = _read_xlsx(content)
    else:
        text = decode(content)
        try:
            dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        try:
            rows = [list(r) for r in csv.reader(io.StringIO(text, newline=""), dialect)]
        except csv.Error as exc:
            raise ValidationError({"file": f"is not a readable CSV file ({exc})"}) from None
    while rows and not any(c.strip() for c in rows[-1]):
        rows.pop()
    if not rows or not any(c.strip() for c in rows[0]):
        raise ValidationError({"file": "has no header row"})
    header = [h.strip() for h in rows[0]]
    return header, rows[1:]


def _read_xlsx(content: bytes) -> list[list[str]]:
    from zipfile import BadZipFile

    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (BadZipFile, KeyError, ValueError, OSError) as exc:
        raise ValidationError({"file": f"is not a readable XLSX file ({exc})"}) from None
    try:
        sheet = book.worksheets[0]
        return [[_cell(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    finally:
        book.close()


def neutralize(value: Any) -> str:
    """A cell value safe to open in a spreadsheet: formulas become text."""
    text = _cell(value)
    return "'" + text if text.startswith(_DANGEROUS) else text


def write_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """UTF-8 with a BOM, so Excel opens Chinese text correctly."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([neutralize(h) for h in header])
    for row in rows:
        writer.writerow([neutralize(v) for v in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def write_xlsx(header: Sequence[str], rows: Iterable[Sequence[Any]], title: str = "export") -> bytes:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title[:31])
    sheet.append([neutralize(h) for h in header])
    for row in rows:
        # values are written as strings so no cell is ever stored as a formula
        sheet.append([neutralize(v) for v in row])
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()
