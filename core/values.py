"""Untrusted input as column values: one set of rules for query strings, paging cursors, JSON bodies and forms.

Every value the API hands to the database goes through here first, so bad input is a 422 naming the field,
never a driver error: an integer past the column's range (SQLite stops at 64 bits, PostgreSQL ``integer`` at
32), ``NaN`` or ``Infinity`` for money, an object where a number belongs, a NUL or a lone surrogate the
database cannot store, a string longer than its ``varchar``. The OpenAPI document states the same limits
(:func:`int_range`, :func:`max_length`), so a request valid by the schema passes these checks.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
from typing import Any

from piccolo.columns import (
    JSON,
    BigInt,
    BigSerial,
    Boolean,
    Date,
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

from core.errors import ValidationError

INT16 = (-(2**15), 2**15 - 1)
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
#: a decimal with more significant digits, or further from 1 than this, is refused (no column needs it)
MAX_DECIMAL_DIGITS = 40
_DIGITS = re.compile(r"[+-]?[0-9]{1,20}", re.ASCII)


def int_range(column: Column) -> tuple[int, int] | None:
    """The (min, max) a column of integers holds on every backend; None if it holds no integers. Keys
    (``Serial`` and the foreign keys naming one) start at 1."""
    if isinstance(column, ForeignKey):
        return int_range(column._foreign_key_meta.resolved_references._meta.primary_key)
    if isinstance(column, BigSerial):
        return 1, INT64[1]
    if isinstance(column, Serial):
        return 1, INT32[1]
    if isinstance(column, BigInt):
        return INT64
    if isinstance(column, SmallInt):
        return INT16
    if isinstance(column, Integer):
        return INT32
    return None


def max_length(column: Column) -> int | None:
    return int(column.length) if isinstance(column, Varchar) and column.length else None


def decimal_bound(column: Column) -> int | None:
    """For ``Numeric(digits=(p, s))``: values must stay below ``10 ** (p - s)`` in absolute value."""
    digits = getattr(column, "digits", None) if isinstance(column, Numeric) else None
    return int(digits[0]) - int(digits[1]) if digits else None


def text_problem(value: str) -> str | None:
    """Why a string cannot be stored (NUL, lone surrogate), or None."""
    if "\x00" in value:
        return "must not contain NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode (lone surrogate)"
    return None


def check_json(value: Any, where: str = "body") -> None:
    """Refuse, naming the key, any string in a decoded JSON document that no database can store."""
    if isinstance(value, str):
        problem = text_problem(value)
        if problem:
            raise ValidationError({where: problem})
    elif isinstance(value, dict):
        for key, item in value.items():
            problem = text_problem(key)
            if problem:
                raise ValidationError({where: f"has a key that {problem}"})
            check_json(item, key if where == "body" else f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_json(item, f"{where}[{index}]")
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValidationError({where: "must be a finite number"})


def integer(value: Any, name: str, bounds: tuple[int, int] = INT64) -> int:
    """A JSON (or Python) integer within ``bounds``; 422 naming ``name`` otherwise. Integral floats pass."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError({name: "must be a whole number"})
    low, high = bounds
    if not low <= value <= high:
        raise ValidationError({name: f"must be between {low} and {high}"})
    return value


def finite_decimal(value: Any, name: str, bound: int | None = None) -> decimal.Decimal:
    """A number (JSON number, numeric string or Decimal) as a finite Decimal that a column can hold."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str, decimal.Decimal)):
        raise ValidationError({name: "must be a number"})
    try:
        number = decimal.Decimal(repr(value) if isinstance(value, float) else str(value).strip())
    except (decimal.InvalidOperation, ValueError):
        raise ValidationError({name: f"{str(value)[:50]!r} is not a number"}) from None
    if not number.is_finite():
        raise ValidationError({name: "must be a finite number (not NaN or Infinity)"})
    if number and (len(number.as_tuple().digits) > MAX_DECIMAL_DIGITS
                   or abs(number.adjusted()) > MAX_DECIMAL_DIGITS):
        raise ValidationError({name: "has too many digits"})
    if bound is not None and abs(number) >= decimal.Decimal(10) ** bound:
        raise ValidationError({name: f"must be less than 10^{bound} in absolute value"})
    return number


def _datetime(value: Any, name: str, aware: bool) -> dt.datetime:
    moment: dt.datetime
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValidationError({name: "must be a date and time like 2026-12-01T09:30:00Z"}) from None
    else:
        raise ValidationError({name: "must be a date and time like 2026-12-01T09:30:00Z"})
    if aware and moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment


def _date(value: Any, name: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            raise ValidationError({name: "must be a date like 2026-12-01"}) from None
    if not isinstance(value, dt.date):
        raise ValidationError({name: "must be a date like 2026-12-01"})
    return value


def check(column: Column, value: Any, name: str, *, nullable: bool | None = None) -> Any:
    """``value`` (decoded JSON, a form's typed value, a cursor's) as something ``column`` can store.

    ``nullable`` overrides the column's own null flag (a filter may compare with NULL, a write may not)."""
    if value is None:
        if not (column._meta.null if nullable is None else nullable):
            raise ValidationError({name: "must not be null"})
        return None
    bounds = int_range(column)
    if bounds is not None:
        return integer(value, name, bounds)
    if isinstance(column, Boolean):
        if not isinstance(value, bool):
            raise ValidationError({name: "must be true or false"})
        return value
    if isinstance(column, Numeric):
        return finite_decimal(value, name, decimal_bound(column))
    if isinstance(column, Real):
        number = finite_decimal(value, name)
        return float(number)
    if isinstance(column, (Timestamptz, Timestamp)):
        return _datetime(value, name, aware=isinstance(column, Timestamptz))
    if isinstance(column, Date):
        return _date(value, name)
    if isinstance(column, JSON):
        check_json(value, name)
        return value
    if isinstance(column, (Varchar, Text)):
        if not isinstance(value, str):
            raise ValidationError({name: "must be a string"})
        problem = text_problem(value)
        if problem:
            raise ValidationError({name: problem})
        limit = max_length(column)
        if limit is not None and len(value) > limit:
            raise ValidationError({name: f"must be at most {limit} characters"})
        return value
    return value


def parse(column: Column, raw: Any, name: str) -> Any:
    """A query-string value (text) as the column's Python type, or a decoded cursor value checked like a
    body value; 422 naming the field if it is not one."""
    if not isinstance(raw, str):
        if isinstance(raw, (dict, list)):
            raise ValidationError({name: "must be a single value"})
        return check(column, raw, name, nullable=True)
    if int_range(column) is not None:
        if not _DIGITS.fullmatch(raw.strip()):
            raise ValidationError({name: f"{raw[:50]!r} is not a whole number"})
        return integer(int(raw), name, int_range(column) or INT64)
    if isinstance(column, Boolean):
        if raw.lower() not in ("true", "false", "1", "0"):
            raise ValidationError({name: f"{raw[:50]!r} is not a valid boolean"})
        return raw.lower() in ("true", "1")
    if isinstance(column, JSON):
        raise ValidationError({name: "cannot be filtered on"})
    return check(column, raw, name)


def record_id(raw: Any, name: str = "id") -> int:
    """A record id from a path or a body: a whole number that a primary key (``Serial``) can hold."""
    if isinstance(raw, str):
        if not _DIGITS.fullmatch(raw.strip()):
            raise ValidationError({name: f"{raw[:50]!r} is not a record id"})
        raw = int(raw)
    return integer(raw, name, (1, INT32[1]))
