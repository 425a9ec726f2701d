"""Keyset pagination: the opaque ``after`` cursor and the where-clause "rows after (value, id)".

A page ends with a cursor holding the sort value and the id of its last row; the next page is the rows that
sort after that pair. Unlike ``OFFSET`` this costs the same on page 1 and page 10,000 and neither skips
nor repeats rows when others insert meanwhile. The JSON API (``core.api``) and addons' list pages share it,
so a cursor means one thing everywhere.

The cursor comes back from the client, so ``decode`` trusts nothing: anything that is not a cursor we could
have given out for *this* sort column (wrong shape, wrong JSON type, an int the column can't hold, a NUL
in a string, NaN…) is a ``ValidationError`` naming the parameter, never a database error and a 500.

Sort columns that may be NULL sort their NULLs last in both directions, explicitly, because PostgreSQL
and SQLite disagree on where NULLs go by default and a keyset must match the order exactly.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import decimal
import json
import math
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from piccolo.columns import (
    UUID,
    BigInt,
    BigSerial,
    Boolean,
    Date,
    ForeignKey,
    Numeric,
    Real,
    SmallInt,
    Time,
    Timestamp,
    Timestamptz,
)
from piccolo.columns.base import Column
from piccolo.custom_types import Combinable
from piccolo.querystring import QueryString

from core.errors import ValidationError

__all__ = ["MAX_CURSOR_LENGTH", "Keyset", "decode", "encode"]

#: longer than any cursor ``encode`` makes for a sort value of a few hundred characters
MAX_CURSOR_LENGTH = 4096
_ALPHABET = re.compile(r"[A-Za-z0-9_-]*={0,2}")
_NOT_A_CURSOR = "is not a page cursor this list gave out"
_MAX_EXPONENT = 100  # of a Numeric sort value: far beyond any column, far below what a database rejects


def encode(value: Any, record_id: int) -> str:
    """The cursor of a row whose sort column holds ``value`` and whose primary key is ``record_id``.

    Dates, times and decimals travel as their ``str()``; ``decode`` turns them back with the column's type.
    """
    payload = json.dumps([value, record_id], default=str, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode()


def decode(raw: str, column: Column, pk: Column, *, param: str = "after") -> tuple[Any, int]:
    """``(value, id)`` from a cursor, ``value`` as ``column``'s Python type and ``id`` in ``pk``'s range.

    Raises ``ValidationError({param: …})`` for anything ``encode`` could not have produced for this column.
    """
    try:
        if not isinstance(raw, str) or len(raw) > MAX_CURSOR_LENGTH or not _ALPHABET.fullmatch(raw):
            raise ValueError(raw)
        data = json.loads(base64.b64decode(raw, altchars=b"-_", validate=True).decode("utf-8"),
                          parse_constant=_no_constant)
        if not isinstance(data, list) or len(data) != 2:
            raise ValueError(raw)
        value, record_id = data
        record_id = _integer(record_id, pk)
        if value is None:
            if not column._meta.null:
                raise ValueError(raw)
            return None, record_id
        return _value(value, column), record_id
    except (ValueError, TypeError, RecursionError, binascii.Error, decimal.InvalidOperation, OverflowError):
        raise ValidationError({param: _NOT_A_CURSOR}) from None


def _no_constant(name: str) -> Any:
    raise ValueError(name)  # NaN, Infinity, -Infinity: valid for Python's json, never given out


def _int_limit(column: Column) -> int:
    """The exclusive bound of ``column``'s integers: a bigger one makes PostgreSQL fail the query."""
    if isinstance(column, ForeignKey):
        try:
            return _int_limit(column._foreign_key_meta.resolved_references._meta.primary_key)
        except Exception:  # an unresolved lazy reference: the common integer key
            return 2**31
    if isinstance(column, (BigInt, BigSerial)):
        return 2**63
    if isinstance(column, SmallInt):
        return 2**15
    return 2**31  # Integer, Serial


def _integer(value: Any, column: Column) -> int:
    if type(value) is not int:  # bool is an int too, and never a cursor's
        raise TypeError(value)
    limit = _int_limit(column)
    if not -limit <= value < limit:
        raise ValueError(value)
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str) or "\x00" in value:
        raise ValueError(value)  # PostgreSQL text holds no NUL
    value.encode("utf-8")  # a lone surrogate ("\ud800") cannot be sent to the database
    return value


def _value(value: Any, column: Column) -> Any:
    """``value`` as the sort column's Python type, or ValueError/TypeError."""
    if isinstance(column, Boolean):
        if not isinstance(value, bool):
            raise TypeError(value)
        return value
    if isinstance(column, Numeric):
        number = decimal.Decimal(_text(value))
        if not number.is_finite() or abs(number.adjusted()) > _MAX_EXPONENT:
            raise ValueError(value)
        return number
    if isinstance(column, Real):
        if type(value) not in (int, float) or not math.isfinite(value):
            raise ValueError(value)
        return float(value)
    if isinstance(column, Timestamptz):
        stamp = dt.datetime.fromisoformat(_text(value))
        return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)
    if isinstance(column, Timestamp):
        stamp = dt.datetime.fromisoformat(_text(value))
        return stamp.astimezone(dt.UTC).replace(tzinfo=None) if stamp.tzinfo else stamp
    if isinstance(column, Date):
        return dt.date.fromisoformat(_text(value))
    if isinstance(column, Time):
        return dt.time.fromisoformat(_text(value))
    if isinstance(column, UUID):
        return uuid.UUID(_text(value))
    if column._meta.primary_key or isinstance(column, ForeignKey) or column.value_type is int:
        return _integer(value, column)
    return _text(value)


@dataclass(frozen=True)
class Keyset:
    """Keyset pagination of one query sorted by ``column`` then ``pk`` (``pk`` alone when they are one).

    Typical use::

        keyset = Keyset(col, table._meta.primary_key, descending=sort.startswith("-"))
        if after:
            query = query.where(keyset.after(after))
        rows, next_cursor = keyset.page(await keyset.order(query).limit(limit + 1), limit)
    """

    column: Column
    pk: Column
    descending: bool = False
    param: str = "after"

    @property
    def _by_pk(self) -> bool:
        return self.column._meta.name == self.pk._meta.name

    @property
    def _nulls(self) -> bool:
        return bool(self.column._meta.null) and not self._by_pk

    def decode(self, raw: str) -> tuple[Any, int]:
        """``(value, id)`` of a cursor for this sort; ``ValidationError`` naming ``param`` otherwise."""
        return decode(raw, self.column, self.pk, param=self.param)

    def where(self, value: Any, record_id: int) -> Combinable:
        """The rows that sort after ``(value, record_id)`` in ``order``'s order (NULLs last)."""
        pk, col = self.pk, self.column
        beyond_id = pk < record_id if self.descending else pk > record_id
        if self._by_pk:
            return beyond_id
        if value is None:  # already among the NULLs, which come last: only their id order remains
            return col.is_null() & beyond_id
        clause: Combinable = ((col < value) if self.descending else (col > value)) | ((col == value) & beyond_id)
        if self._nulls:
            clause = clause | col.is_null()
        return clause

    def after(self, raw: str) -> Combinable:
        """``where`` for a cursor as the client sent it."""
        return self.where(*self.decode(raw))

    def order(self, query: Any) -> Any:
        """A Piccolo select ordered as the cursors assume: NULLs last, then the sort column, then the id."""
        ascending = not self.descending
        if self._nulls:
            nulls_last = QueryString(f"{self.column._meta.get_full_name(with_alias=False)} IS NULL")
            query = query.order_by(nulls_last, ascending=True)
        if not self._by_pk:
            query = query.order_by(self.column, ascending=ascending)
        return query.order_by(self.pk, ascending=ascending)

    def cursor(self, row: Mapping[str, Any]) -> str:
        """The cursor pointing just past ``row`` (a selected row holding the sort column and the id)."""
        return encode(row[self.column._meta.name], int(row[self.pk._meta.name]))

    def page(self, rows: Sequence[dict[str, Any]], limit: int) -> tuple[list[dict[str, Any]], str | None]:
        """The first ``limit`` of ``rows`` (fetched with ``limit + 1``) and the next page's cursor, if any."""
        shown = list(rows[:limit])
        more = len(rows) > limit and bool(shown)
        return shown, (self.cursor(shown[-1]) if more else None)
