"""JSON text of stored values (audit changes, import results) at orjson's speed, with ``json``'s values.

Bulk writers serialize a dict per row: ``json.dumps(value, default=str)`` costs ~17 µs for a person's values
and a JSON round trip ~20 µs more, as much as standardizing the row. orjson writes the same values 4-5x faster
once told to hand dates, times and dataclasses to ``str`` as ``default=str`` does: ``json.loads`` of either
text gives the same value. The text itself differs (no spaces, non-ASCII kept as UTF-8): nothing compares it,
every reader parses it. Two deliberate differences: NaN and infinities become null (``json`` writes ``NaN``,
which is not JSON: PostgreSQL's json type refuses it), and an enum member is written as its value (``json``
with ``default=str``: ``"Color.RED"``; no stored value is an enum). Integers past 64 bits go through ``json``.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_NON_STR_KEYS
_SCALARS = (str, int, bool, type(None))


def dumps(value: Any) -> str:
    """``json.dumps(value, default=str)``'s value as text."""
    try:
        return orjson.dumps(value, default=str, option=_OPTIONS).decode()
    except orjson.JSONEncodeError:  # e.g. an integer past 64 bits
        return json.dumps(value, default=str)


def plain(value: Any) -> Any:
    """``json.loads(json.dumps(value, default=str))``: values as JSON keeps them (dates as ISO text…)."""
    if isinstance(value, _SCALARS):
        return value
    try:
        return orjson.loads(orjson.dumps(value, default=str, option=_OPTIONS))
    except orjson.JSONEncodeError:
        return json.loads(json.dumps(value, default=str))
