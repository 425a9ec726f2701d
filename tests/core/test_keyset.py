"""core.keyset: cursors round-trip, forged ones are a 422 naming the parameter (never a 500), and paging
with a cursor visits every row exactly once, in order, NULLs included, on both backends."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
from typing import Any

import pytest
from piccolo.columns import BigInt, Boolean, Date, Numeric, Real, Timestamptz, Varchar
from piccolo.table import Table

from core.discovery import Discovered
from core.errors import ValidationError
from core.keyset import MAX_CURSOR_LENGTH, Keyset, decode, encode
from core.testing import login_client, make_user


class Item(Table, tablename="test_keyset_item"):
    name = Varchar(length=50)
    due = Date(null=True, default=None)
    amount = Numeric(digits=(16, 2), default=decimal.Decimal(0))
    stamp = Timestamptz(null=True, default=None)
    flag = Boolean(default=False)
    big = BigInt(default=0)
    score = Real(null=True, default=None)


PK = Item._meta.primary_key


def _forge(payload: Any) -> str:
    raw = payload if isinstance(payload, str) else json.dumps(payload)
    return base64.urlsafe_b64encode(raw.encode()).decode()


@pytest.mark.parametrize(("column", "value"), [
    (Item.name, "Zhang Wei 张伟"),
    (Item.name, ""),
    (Item.due, dt.date(2026, 12, 1)),
    (Item.due, None),
    (Item.amount, decimal.Decimal("1234.50")),
    (Item.stamp, dt.datetime(2026, 12, 1, 9, 30, 15, 123456, tzinfo=dt.UTC)),
    (Item.flag, True),
    (Item.big, 2**63 - 1),
    (Item.score, 0.25),
    (PK, 42),
])
def test_a_cursor_round_trips_as_the_column_type(column: Any, value: Any) -> None:
    got, record_id = decode(encode(value, 42), column, PK)
    assert (got, record_id) == (value, 42) and type(got) is type(value)


def test_cursor_of_a_row_and_page() -> None:
    keyset = Keyset(Item.due, PK, descending=True)
    rows = [{"id": i, "due": dt.date(2026, 1, i)} for i in range(1, 5)]
    shown, nxt = keyset.page(rows, 3)
    assert shown == rows[:3] and nxt is not None
    assert keyset.decode(nxt) == (dt.date(2026, 1, 3), 3)
    assert keyset.page(rows, 4) == (rows, None)
    assert keyset.page([], 3) == ([], None)


FORGED = [
    "garbage!!", "!!!", "", "a" * (MAX_CURSOR_LENGTH + 4),
    base64.b64encode(b'["x",1]+/').decode(),  # the standard alphabet, not the URL-safe one
    _forge(["x", 1]).rstrip("="),  # padding cut off: not what was given out
    base64.urlsafe_b64encode(b"\xff\xfe").decode(),  # not UTF-8
    _forge("not json"),
    _forge({"value": "x", "id": 1}),  # a JSON object
    _forge(["x", 1, 2]), _forge(["x"]), _forge([]), _forge("x"), _forge(7), _forge(None),
    _forge(["x", "1"]), _forge(["x", True]), _forge(["x", 1.0]), _forge(["x", None]), _forge(["x", [1]]),
    _forge(["x", 2**63]), _forge(["x", 2**31]), _forge(["x", -(2**31) - 1]), _forge(["x", 10**400]),
    _forge('["x", NaN]'), _forge('["x", Infinity]'),
    _forge("[" * 3000 + "]" * 3000),
]


@pytest.mark.parametrize("raw", FORGED)
def test_forged_cursors_are_a_422_naming_the_parameter(raw: str) -> None:
    with pytest.raises(ValidationError) as caught:
        decode(raw, Item.name, PK)
    assert list(caught.value.fields) == ["after"]


@pytest.mark.parametrize(("column", "value"), [
    (Item.name, 12), (Item.name, {"a": 1}), (Item.name, ["a"]), (Item.name, "a\u0000b"), (Item.name, "\ud800"),
    (Item.name, None),  # NOT NULL column: a cursor for it never holds null
    (Item.due, "2026-13-01"), (Item.due, 20261201), (Item.due, "x" * 500),
    (Item.amount, "NaN"), (Item.amount, "Infinity"), (Item.amount, "1e999999"), (Item.amount, 12), (Item.amount, "x"),
    (Item.stamp, "yesterday"), (Item.stamp, 1700000000),
    (Item.flag, "true"), (Item.flag, 1),
    (Item.big, 2**63), (Item.big, -(2**63) - 1), (Item.big, "5"), (Item.big, False), (Item.big, 1.5),
    (Item.score, "0.5"), (Item.score, 10**400), (Item.score, True),
    (PK, 2**31), (PK, "7"),
])
def test_a_value_the_sort_column_cannot_hold_is_refused(column: Any, value: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        decode(_forge([value, 1]), column, PK, param="page")
    assert caught.value.fields == {"page": "is not a page cursor this list gave out"}


async def test_paging_visits_every_row_once_in_order_on_both_backends(crm_db_url: str) -> None:
    await Item.create_table(if_not_exists=True)
    dues = [dt.date(2026, 1, 3), None, dt.date(2026, 1, 1), dt.date(2026, 1, 3), None, dt.date(2026, 1, 2),
            dt.date(2026, 1, 1), None, dt.date(2026, 1, 3)]
    for i, due in enumerate(dues):
        await Item.insert(Item(name=f"n{i % 4}", due=due, amount=decimal.Decimal(i) / 4))
    rows = await Item.select(Item.id, Item.due, Item.name, Item.amount)

    def expected(key: str, descending: bool) -> list[int]:
        dated = sorted((r for r in rows if r[key] is not None), key=lambda r: (r[key], r["id"]),
                       reverse=descending)
        undated = sorted((r for r in rows if r[key] is None), key=lambda r: r["id"], reverse=descending)
        return [r["id"] for r in dated + undated]  # NULLs last in both directions

    for column in (Item.due, Item.name, Item.amount, PK):
        for descending in (False, True):
            keyset = Keyset(column, PK, descending=descending)
            seen: list[int] = []
            after: str | None = None
            for _ in range(len(rows) + 1):
                query = Item.select(Item.id, column)
                if after:
                    query = query.where(keyset.after(after))
                page, after = keyset.page(await keyset.order(query).limit(3), 2)
                seen += [r["id"] for r in page]
                if after is None:
                    break
            assert seen == expected(column._meta.name, descending), (column._meta.name, descending)


async def test_the_api_refuses_forged_cursors_with_422(crm_client: Any, found: Discovered) -> None:
    client = await crm_client("crm_testbase", found=found)
    await make_user("pager", "tb_manager")
    await login_client(client, "pager")
    for i in range(3):
        page = await client.get("/")
        token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        created = await client.post("/api/testbase/notes", json={"title": f"t{i}"}, headers={"X-CSRF-Token": token})
        assert created.status_code == 201
    first = (await client.get("/api/testbase/notes?limit=2&sort=title")).json()
    rest = (await client.get(f"/api/testbase/notes?limit=2&sort=title&after={first['next']}")).json()
    assert [n["title"] for n in first["items"] + rest["items"]] == ["t0", "t1", "t2"] and rest["next"] is None
    for raw in (_forge({"title": "t0", "id": 1}), _forge(["t0", 2**63]), _forge(["t0", 2**40]), _forge([{}, 1]),
                _forge(["t0\u0000", 1]), "%00", "x" * 10_000):
        response = await client.get("/api/testbase/notes", params={"sort": "title", "after": raw})
        assert response.status_code == 422, (raw, response.text[:200])
        assert list(response.json()["error"]["fields"]) == ["after"]
