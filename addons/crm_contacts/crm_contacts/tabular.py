"""Reading and writing spreadsheets: CSV in any text encoding and XLSX (openpyxl).

A CSV file's encoding is UTF-8 when it decodes as UTF-8 (with or without a BOM); otherwise charset-normalizer
picks the most plausible one (GBK/GB18030, Big5, cp1252…), and the user can override it. Bytes the encoding
cannot decode are refused with their row number, never replaced or guessed around.
Reading returns the header and the rows as strings; writing neutralizes formula injection: a cell that
starts with ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a leading apostrophe, so Excel and
LibreOffice show it as text instead of evaluating it (OWASP "CSV injection").
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
from collections.abc import Iterable, Sequence
from typing import Any

from core.errors import ValidationError
from core.i18n import N_

MAX_CELL = 1_000_000  # a parser limit only: fields have their own, smaller limits checked per row
_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")

csv.field_size_limit(MAX_CELL)


#: what a user may choose for a CSV file (the import page's override); any codec name works in code
ENCODINGS = ("utf-8", "gb18030", "big5", "cp1252", "latin-1", "cp1250", "cp1251", "shift_jis", "euc-kr",
             "utf-16")
#: a tie between equally plausible decodings goes to the encoding files most often come in here
_PREFERRED = ("utf_8", "gb18030", "cp1252", "big5", "shift_jis", "euc_kr", "latin_1")


def _name(encoding: str) -> str:
    return codecs.lookup(encoding).name


def detect(content: bytes) -> str:
    """The encoding of CSV bytes: UTF-8 (``utf-8-sig`` with a BOM) when they are valid UTF-8, else the best
    decoding charset-normalizer finds. 422 on ``file`` naming the first undecodable row if there is none."""
    from charset_normalizer import from_bytes

    if content.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        content.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        first_bad = exc
    results = list(from_bytes(content))
    if not results:
        raise ValidationError({"file": f"row {_row_of(content, first_bad.start)}: the text encoding could not be "
                                       "recognized; choose it"})
    # Among the least messy decodings, the first (most coherent) one that is a common encoding, named by
    # that encoding: charset-normalizer lists with each result the encodings that decode the bytes to the
    # same text, and on a few short lines an exotic one (cp775 for "Müller") can look as coherent.
    calm = [r for r in results if r.chaos == results[0].chaos]
    for result in calm:
        for preferred in _PREFERRED:
            if preferred in result.could_be_from_charset:
                return _name(preferred)
    return _name(results[0].encoding)


def _row_of(content: bytes, offset: int) -> int:
    return content.count(b"\n", 0, offset) + 1


def decode(content: bytes, encoding: str | None = None) -> tuple[str, str]:
    """(text, encoding) of CSV bytes, in ``encoding`` or the detected one. 422 on ``file`` naming the row of
    the first bytes that encoding cannot decode (nothing is replaced silently)."""
    encoding = encoding or detect(content)
    try:
        if _name(encoding) == "utf-8" and content.startswith(codecs.BOM_UTF8):
            encoding = "utf-8-sig"  # the BOM is not part of the first header
    except LookupError:
        raise ValidationError({"encoding": N_("%(encoding)s is not a known text encoding") % {
            "encoding": repr(encoding)}}) from None
    try:
        return content.decode(encoding), encoding
    except UnicodeDecodeError as exc:
        raise ValidationError({"file": f"row {_row_of(content, exc.start)}: bytes {content[exc.start:exc.end]!r} "
                                       f"are not valid {encoding} text; choose the file's encoding"}) from None


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


def is_xlsx(content: bytes, filename: str) -> bool:
    return filename.lower().endswith((".xlsx", ".xlsm")) or content[:2] == b"PK"


def read_table(content: bytes, filename: str, encoding: str | None = None) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of a CSV or XLSX file; blank trailing rows dropped. 422 on ``file`` if unreadable.
    A CSV file is read in ``encoding``, detected when not given."""
    if not content:
        raise ValidationError({"file": N_("is empty")})
    if is_xlsx(content, filename):
        rows = _read_xlsx(content)
    else:
        text, _ = decode(content, encoding)
        try:
            dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        try:
            rows = [list(r) for r in csv.reader(io.StringIO(text, newline=""), dialect)]
        except csv.Error as exc:
            raise ValidationError({"file": N_("is not a readable CSV file (%(error)s)") % {"error": exc}}) from None
    while rows and not any(c.strip() for c in rows[-1]):
        rows.pop()
    if not rows or not any(c.strip() for c in rows[0]):
        raise ValidationError({"file": N_("has no header row")})
    header = [h.strip() for h in rows[0]]
    return header, rows[1:]


def _read_xlsx(content: bytes) -> list[list[str]]:
    from zipfile import BadZipFile

    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (BadZipFile, KeyError, ValueError, OSError) as exc:
        raise ValidationError({"file": N_("is not a readable XLSX file (%(error)s)") % {"error": exc}}) from None
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
