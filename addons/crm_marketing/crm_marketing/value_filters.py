"""Segment filters over what people are worth: their value tier, and (when an addon provides orders, i.e.
crm_sales) what they bought, how long since their last order and how much they spent.

Each compiles to a subquery over people's ids, so it joins the segment's one ``INSERT … SELECT`` like any
other filter: ``value_tier`` reads the scores of the last RFM rebuild; the order filters read the orders
tables by name (``crm_marketing.orders``) as they are now. Only confirmed orders count; ``total_spent`` sums
those in :data:`orders.CURRENCY`, and a person without orders has spent 0 and has no last order.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from crm_contacts.api import PERSON_TABLE
from piccolo.columns.combination import WhereRaw
from piccolo.custom_types import Combinable

from core.conditions import Field, Leaf
from core.errors import ValidationError
from core.i18n import N_
from crm_marketing import orders

TIER = "value_tier"
BOUGHT = "bought_product"
DAYS = "days_since_last_order"
SPENT = "total_spent"
ORDER_FIELDS = (BOUGHT, DAYS, SPENT)
FIELDS = frozenset({TIER, *ORDER_FIELDS})

_ID = f'"{PERSON_TABLE}"."id"'
_TIERED = 'SELECT s."person" FROM "crm_marketing_rfm_score" s WHERE s."tier" IS NOT NULL'
_CONFIRMED = "o.\"state\" = 'confirmed' AND o.\"person\" IS NOT NULL"
_CMP = {"lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
#: "days since the last order ≥ N" is "last order ≤ now − N days": the comparison flips
_FLIP = {"lt": ">", "lte": ">=", "gt": "<", "gte": "<="}
_NOT = {"lt": ">=", "lte": ">", "gt": "<=", "gte": "<"}
_PY = {"lt": operator.lt, "lte": operator.le, "gt": operator.gt, "gte": operator.ge}


def fields(tier_keys: tuple[str, ...], src: orders.Source | None) -> dict[str, Field]:
    """The schema entries: the tier always, the order filters only when orders exist. An order field's
    ``column`` carries the tables it reads (``orders|lines``), known here only through the kernel's datasets."""
    out = {TIER: Field(TIER, "choice", N_("Value tier"), column=TIER, choices=tier_keys)}
    if src is not None:
        where = f"{src.orders}|{src.lines}"
        if src.lines:
            out[BOUGHT] = Field(BOUGHT, "tags", N_("Bought product (code)"), column=where)
        out[DAYS] = Field(DAYS, "number", N_("Days since the last order"), column=where)
        out[SPENT] = Field(SPENT, "money", N_("Total spent"), column=where)
    return out


def refuse_without_orders(raw: Any, path: str = "condition") -> None:
    """422 naming the first leaf of ``raw`` that filters on orders, for a database where there are none."""
    if isinstance(raw, dict):
        if raw.get("field") in ORDER_FIELDS:
            raise ValidationError({f"{path}.field": N_("filters on orders, which need crm_sales installed")})
        for key in ("all", "any"):
            if isinstance(raw.get(key), list):
                for i, item in enumerate(raw[key]):
                    refuse_without_orders(item, f"{path}.{key}[{i}]")
        if "not" in raw:
            refuse_without_orders(raw["not"], f"{path}.not")


def _in(sql: str, *args: Any, negate: bool = False) -> Combinable:
    return WhereRaw(f"{_ID} {'NOT IN' if negate else 'IN'} ({sql})", *args)


def _tier(leaf: Leaf) -> Combinable | None:
    if leaf.op == "is_empty":
        return _in(_TIERED, negate=bool(leaf.value))
    wanted = list(leaf.value) if leaf.op == "in" else [leaf.value]
    marks = ", ".join("{}" for _ in wanted)
    sql = f'SELECT s."person" FROM "crm_marketing_rfm_score" s WHERE s."tier" IN ({marks})'
    return _in(sql, *wanted, negate=leaf.op == "ne")  # a person without a tier is not any named tier


def _among(only: Sequence[int] | None) -> tuple[str, list[int]]:
    """The orders subquery kept to ``only``'s people (a refresh of a few): the planner cannot push the outer
    ``person.id IN (…)`` through a GROUP BY, so without this every customer's orders were aggregated (3 M orders
    at 1 M people) to decide a handful. The answer for those people is the same either way."""
    if only is None:
        return "", []
    ids = sorted({int(i) for i in only}) or [0]
    return ' AND o."person" IN (' + ", ".join("{}" for _ in ids) + ")", ids


def _bought(leaf: Leaf, orders_table: str, lines: str, only: Sequence[int] | None) -> Combinable:
    among, ids = _among(only)
    every = (
        f'SELECT o."person" FROM "{orders_table}" o JOIN "{lines}" l ON l."order" = o."id" WHERE {_CONFIRMED}'
        + among
    )
    if leaf.op == "is_empty":
        return _in(every, *ids, negate=bool(leaf.value))
    if leaf.op != "contains":
        raise ValidationError({f"{leaf.path}.op": N_("bought_product takes contains or is_empty")})
    return _in(every + ' AND l."code" = {}', *ids, leaf.value)


def _days(leaf: Leaf, orders_table: str, only: Sequence[int] | None) -> Combinable:
    among, ids = _among(only)
    grouped = f'SELECT o."person" FROM "{orders_table}" o WHERE {_CONFIRMED}{among} GROUP BY o."person"'
    if leaf.op == "is_empty":  # no confirmed order at all
        return _in(grouped, *ids, negate=bool(leaf.value))
    if leaf.op not in _FLIP:
        raise ValidationError({f"{leaf.path}.op": N_("days since the last order takes lt, lte, gt, gte or is_empty")})
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=int(leaf.value))
    return _in(grouped + f' HAVING MAX(o."confirmed_at") {_FLIP[leaf.op]} {{}}', *ids, cutoff)


def _spent(leaf: Leaf, orders_table: str, only: Sequence[int] | None) -> Combinable:
    if leaf.op not in _CMP:
        raise ValidationError({f"{leaf.path}.op": N_("total spent takes lt, lte, gt or gte")})
    amount = Decimal(leaf.value)
    among, ids = _among(only)
    grouped = (
        f'SELECT o."person" FROM "{orders_table}" o WHERE {_CONFIRMED} AND o."currency" = {{}}{among} '
        'GROUP BY o."person" HAVING SUM(o."total") '
    )
    # a person without orders has spent 0: when 0 passes the test, select everyone but those who fail it
    if _PY[leaf.op](Decimal(0), amount):
        return _in(grouped + _NOT[leaf.op] + " {}", orders.CURRENCY, *ids, amount, negate=True)
    return _in(grouped + _CMP[leaf.op] + " {}", orders.CURRENCY, *ids, amount)


def where(leaf: Leaf, only: Sequence[int] | None = None) -> Combinable | None:
    """The leaf (on one of :data:`FIELDS`) as a where-clause over people; with ``only``, a clause that is right
    for those people alone (the orders read are theirs: a refresh of a few people)."""
    if leaf.name == TIER:
        return _tier(leaf)
    orders_table, _, lines = leaf.field.column.partition("|")
    if leaf.name == BOUGHT:
        return _bought(leaf, orders_table, lines, only)
    if leaf.name == DAYS:
        return _days(leaf, orders_table, only)
    return _spent(leaf, orders_table, only)
