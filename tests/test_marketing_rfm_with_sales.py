"""crm_marketing with crm_sales installed: RFM quintiles and value tiers against a hand-computed fixture, and
segments with order filters (bought product X, days since the last order, total spent) against a Python
reference on generated orders. Orders are read through the kernel's datasets (crm_marketing never imports
crm_sales); SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from crm_contacts.api import PERSON_MODEL
from crm_contacts.models import Person
from crm_marketing import hooks, rfm, segments
from crm_marketing.models import RfmBuild, RfmScore, Segment, SegmentMember
from crm_sales.models import Order, OrderLine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import db
from core.security.access import Access, policy
from core.security.principal import load
from core.testing import make_user

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
#: customer i (1…10): last order i×10 days ago (customer 10: 200, dormant), i orders, this much in CNY
TOTALS = {1: 500, 2: 100, 3: 900, 4: 50, 5: 700, 6: 300, 7: 1000, 8: 200, 9: 600, 10: 400}
#: worked out by hand from the fixture: the oldest last order, the fewest orders, the least money score 1
EXPECTED = {  # i: (R, F, M, tier)
    1: (5, 1, 3, "new"),  # one order 10 days ago
    2: (5, 1, 1, "regular"),
    3: (4, 2, 5, "gold"),  # R ≥ 4 and M ≥ 4
    4: (4, 2, 1, "regular"),
    5: (3, 3, 4, "regular"),
    6: (3, 3, 2, "regular"),
    7: (2, 4, 5, "loyal"),  # F ≥ 4
    8: (2, 4, 2, "loyal"),
    9: (1, 5, 4, "loyal"),
    10: (1, 5, 3, "dormant"),  # last order 200 days ago: dormant comes first
}


async def _person(name: str, **extra: Any) -> int:
    row = Person(name=name, email=f"{name}@example.cn", email_key=f"{name}@example.cn", **extra)
    await row.save()
    return int(row.id)


async def _order(person: int, total: Any, at: dt.datetime, currency: str = "CNY", state: str = "confirmed",
                 code: str = "") -> None:
    rows = await Order.insert(Order(person=person, total=Decimal(total), currency=currency, state=state,
                                    confirmed_at=at))
    if code:
        await OrderLine.insert(OrderLine(order=rows[0]["id"], code=code, total=Decimal(total)))


async def test_rfm_quintiles_and_tiers_match_the_hand_computed_fixture(crm_boot: Any) -> None:
    await crm_boot("crm_marketing", "crm_sales")
    people = {}
    for i, total in TOTALS.items():
        people[i] = pid = await _person(f"c{i}")
        last = NOW - dt.timedelta(days=200 if i == 10 else i * 10)
        await _order(pid, total - (i - 1), last)  # the rest are 1 each, earlier
        for k in range(1, i):
            await _order(pid, 1, last - dt.timedelta(days=k))
    await _order(people[1], 5000, NOW - dt.timedelta(days=1), currency="USD")  # another currency: left out
    await _order(people[2], 5000, NOW - dt.timedelta(days=1), state="cancelled")  # not confirmed
    await _person("never")  # no orders: no score
    archived = await _person("gone", is_archived=True)
    await _order(archived, 99999, NOW)  # archived people are not scored (nor ranked)

    keys = await _keys()  # as the migrations made them
    built = await rfm.rebuild()
    assert built["customers"] == 10 and built["orders"] is True
    rows = {int(r["person"]): r for r in await RfmScore.select()}
    got = {i: (rows[p]["r"], rows[p]["f"], rows[p]["m"], rows[p]["tier"]) for i, p in people.items()}
    assert got == EXPECTED
    assert rows[people[3]]["orders"] == 3 and Decimal(str(rows[people[3]]["monetary"])) == Decimal(900)
    assert rows[people[4]]["recency_days"] == 40 and rows[people[10]]["recency_days"] == 200
    assert built["tiers"] == {"new": 1, "regular": 4, "gold": 1, "loyal": 3, "dormant": 1}
    assert await RfmBuild.count() == 1

    # the person's 360° marketing panel carries the tier (by its names) and the scores
    admin = Access(await load(await make_user("boss", "admin"), implied=policy().implied))
    (panel,) = await hooks.crm_record_panels(admin, PERSON_MODEL, people[3])
    shown = panel.context["rfm"]
    assert (shown["tier_name_zh"], shown["tier_name_en"], shown["r"], shown["m"]) == ("高价值客户", "Gold", 4, 5)

    # a tier is a segment filter: the members are the customers the rebuild put in it
    segment_id = int((await Segment.insert(Segment(
        name="loyal or gold", condition={"field": "value_tier", "op": "in", "value": ["loyal", "gold"]})))[0]["id"])
    await segments.build(segment_id)
    members = {int(r["person"]) for r in await SegmentMember.select().where(SegmentMember.segment == segment_id)}
    assert members == {people[i] for i in (3, 7, 8, 9)}

    # a rebuild replaces the scores: customer 4 now orders a lot, recently
    await _order(people[4], 100000, NOW - dt.timedelta(hours=1))
    await rfm.rebuild()
    score = await RfmScore.select().where(RfmScore.person == people[4]).first()
    assert score is not None and (score["r"], score["m"], score["tier"]) == (5, 5, "gold")
    assert await RfmScore.count() == 10
    # on PostgreSQL the scores came in a fresh table swapped for the old: same indexes and keys, the same
    # sequence for ids (a row added after gets a new id, the unique person key still holds)
    assert await _keys() == keys
    if db.is_postgres():
        await RfmScore.delete().where(RfmScore.person == people[1])
        added = await RfmScore.insert(RfmScore(person=people[1], last_order_at=NOW))
        assert int(added[0]["id"]) > max(int(r["id"]) for r in await RfmScore.select(RfmScore.id)
                                         .where(RfmScore.person != people[1]))
        with pytest.raises(Exception, match="crm_marketing_rfm_score_person_key"):
            await RfmScore.insert(RfmScore(person=people[1], last_order_at=NOW))


async def _keys() -> list[tuple[str, str]]:
    """The scores table's indexes as PostgreSQL describes them (nothing to compare on SQLite)."""
    if not db.is_postgres():
        return []
    rows = await RfmScore.raw("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = "
                              "'crm_marketing_rfm_score' ORDER BY indexname")
    return [(r["indexname"], r["indexdef"]) for r in rows]


CODES = ["TEA", "CUP", "POT"]
customer = st.lists(  # one person's orders: (days ago, amount, confirmed?, product code)
    st.tuples(st.integers(0, 400), st.integers(1, 2000), st.booleans(), st.sampled_from(CODES)), max_size=4)
order_leaf = st.one_of(
    st.builds(lambda c: {"field": "bought_product", "op": "contains", "value": c}, st.sampled_from(CODES)),
    st.builds(lambda v: {"field": "bought_product", "op": "is_empty", "value": v}, st.booleans()),
    st.builds(lambda op, n: {"field": "days_since_last_order", "op": op, "value": n},
              st.sampled_from(["lt", "lte", "gt", "gte"]), st.integers(0, 400)),
    st.builds(lambda v: {"field": "days_since_last_order", "op": "is_empty", "value": v}, st.booleans()),
    st.builds(lambda op, n: {"field": "total_spent", "op": op, "value": str(n)},
              st.sampled_from(["lt", "lte", "gt", "gte"]), st.integers(-10, 3000)),
)
condition = st.one_of(order_leaf, st.builds(
    lambda a, b, how: {how: [a, b]}, order_leaf, order_leaf, st.sampled_from(["all", "any"])),
    st.builds(lambda a: {"not": a}, order_leaf))


def _reference(leaf: dict[str, Any], orders: list[tuple[int, int, bool, str]]) -> bool:
    """The order filters' meaning, in Python: confirmed orders only; no orders = spent 0, no last order."""
    mine = [o for o in orders if o[2]]
    if "all" in leaf or "any" in leaf:
        parts = [_reference(x, orders) for x in leaf["all" if "all" in leaf else "any"]]
        return all(parts) if "all" in leaf else any(parts)
    if "not" in leaf:
        return not _reference(leaf["not"], orders)
    op, value = leaf["op"], leaf["value"]
    if leaf["field"] == "bought_product":
        return bool((not mine) == value if op == "is_empty" else any(o[3] == value for o in mine))
    if leaf["field"] == "days_since_last_order":
        if op == "is_empty":
            return bool((not mine) == value)
        if not mine:
            return False
        actual: Any = (min(o[0] for o in mine) * 86400 + 30) / 86400  # orders were placed 30 s before "now"
    else:
        actual, value = sum(o[1] for o in mine), int(value)
    return bool({"lt": actual < value, "lte": actual <= value, "gt": actual > value, "gte": actual >= value}[op])


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.lists(customer, min_size=6, max_size=6), tree=condition)
async def test_order_filters_match_the_python_reference(crm_boot: Any, data: Any, tree: Any) -> None:
    if not await _booted():
        await crm_boot("crm_marketing", "crm_sales")
    await Order.delete(force=True)
    await SegmentMember.delete(force=True)
    await Segment.delete(force=True)
    people = [int(r["id"]) for r in await Person.select(Person.id).order_by(Person.id)]
    for i in range(len(people), 6):
        people.append(await _person(f"g{i}"))
    at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=30)
    placed = [(pid, o) for pid, orders in zip(people, data, strict=True) for o in orders]
    if placed:  # one INSERT for the orders, one for their lines
        rows = await Order.insert(*(Order(person=pid, total=Decimal(amount), currency="CNY",
                                          state="confirmed" if confirmed else "cancelled",
                                          confirmed_at=at - dt.timedelta(days=days))
                                    for pid, (days, amount, confirmed, _code) in placed))
        await OrderLine.insert(*(OrderLine(order=row["id"], code=code, total=Decimal(amount))
                                 for row, (_pid, (_d, amount, _c, code)) in zip(rows, placed, strict=True)))
    expected = {pid for pid, orders in zip(people, data, strict=True) if _reference(tree, orders)}
    segment_id = int((await Segment.insert(Segment(name="o", condition=tree)))[0]["id"])
    # stale members the build must drop unless they match (on PostgreSQL only the difference is written)
    await SegmentMember.insert(*(SegmentMember(segment=segment_id, person=pid) for pid in people[::2]))
    built = await segments.build(segment_id)
    got = {int(r["person"]) for r in await SegmentMember.select().where(SegmentMember.segment == segment_id)}
    assert got == expected, (tree, data)
    assert built["count"] == len(expected) == await segments.count(tree)
    # a refresh of a few people reads only their orders: it must reach the same answer for them
    few = people[:3]
    await SegmentMember.delete().where((SegmentMember.segment == segment_id) & SegmentMember.person.is_in(few))
    joined = await segments.refresh_people(few)
    assert joined.get(segment_id, []) == sorted(expected & set(few)), (tree, data)
    got = {int(r["person"]) for r in await SegmentMember.select().where(SegmentMember.segment == segment_id)}
    assert got == expected, (tree, data)


async def _booted() -> bool:
    try:
        await Order.count()
    except Exception:  # no database bound yet, or no table: the first example boots
        return False
    return True
