"""core.jsontext writes, at orjson's speed, what json.dumps(value, default=str) writes, as values."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import json
import uuid
from typing import Any

import pytest

from core import jsontext


class Tier(enum.StrEnum):
    gold = "gold"


class Rank(enum.IntEnum):
    first = 1


@dataclasses.dataclass
class Point:
    x: int


VALUES: list[Any] = [
    {"at": dt.datetime(2026, 12, 2, 11, 0, tzinfo=dt.UTC), "naive": dt.datetime(2026, 1, 2, 3, 4, 5, 6),
     "day": dt.date(1990, 4, 9), "time": dt.time(1, 2), "price": decimal.Decimal("1.50"), "id": uuid.UUID(int=7)},
    {"tier": Tier.gold, "rank": Rank.first, "point": Point(1), "pair": (1, 2), "tags": {"a"}, 3: "int key"},
    {"nested": {"a": [1, 2.5, None, True, {}]}, "text": "王芳 \u2028 \"q\" \\", "float": 0.1, "neg": -0.0},
    {"big": 2**70, "edge": 2**63 - 1, "low": -(2**63)},
    [dt.date(2020, 1, 2)], "plain", 3, None,
]


@pytest.mark.parametrize("value", VALUES)
def test_same_values_as_json_with_default_str(value: Any) -> None:
    expected = json.loads(json.dumps(value, default=str))
    assert json.loads(jsontext.dumps(value)) == expected
    assert jsontext.plain(value) == expected
    assert repr(jsontext.plain(value)) == repr(expected)  # 2**70 stays an int, not a float
