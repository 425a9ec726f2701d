"""The condition language (core.conditions): strict validation naming the path, and the SQL where-clause and the
Python predicate agreeing on every record — own fields, custom fields, one hop to a related record, and/or/not,
missing values — on SQLite and PostgreSQL; through the access layer a masked field cannot be filtered on."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from core import conditions
from core.errors import PermissionDenied, ValidationError


async def _setup(crm_boot: Any) -> dict[str, Any]:
    from crm_contacts.models import Person
    from crm_sales.models import Opportunity, PipelineStage

    from core.customfields import registry as custom_fields
    from core.models import CustomField

    await crm_boot("crm_sales")
    await CustomField.insert(
        CustomField(model="crm_sales.opportunity", key="rating", kind="number", label_en="Rating"),
        CustomField(model="crm_sales.opportunity", key="tier", kind="choice", label_en="Tier",
                    options=[{"key": "gold", "en": "Gold"}, {"key": "silver", "en": "Silver"}]),
        CustomField(model="crm_sales.opportunity", key="renewal", kind="date", label_en="Renewal"),
        CustomField(model="crm_sales.opportunity", key="vip", kind="boolean", label_en="VIP"),
        CustomField(model="crm_contacts.person", key="segment", kind="text", label_en="Segment"))
    custom_fields.invalidate()
    await custom_fields.fresh(force=True)
    stage = (await PipelineStage.select(PipelineStage.id).where(PipelineStage.key == "new").first())["id"]
    people = {}
    for name, province, segment in (("Wang", "广东", "smb"), ("Li", "上海", "enterprise"), ("Zhao", "", None)):
        custom = {"segment": segment} if segment else {}
        row = await Person.insert(Person(name=name, province=province, custom=custom)).returning(Person.id)
        people[name] = row[0]["id"]
    deals = [
        dict(name="Alpha servers", state="open", expected_revenue=Decimal("1000.50"), person=people["Wang"],
             tags=["hot", "vip"], expected_close=dt.date(2026, 3, 1),
             custom={"rating": 5, "tier": "gold", "renewal": "2026-06-01", "vip": True}),
        dict(name="Beta ALPHA", state="won", expected_revenue=Decimal("20"), person=people["Li"], tags=["cold"],
             custom={"rating": 2.5, "tier": "silver"}),
        dict(name="Gamma", state="lost", expected_revenue=Decimal("0"), person=people["Zhao"], tags=[],
             expected_close=dt.date(2025, 12, 31), custom={"vip": False}),
        dict(name="Delta", state="open", expected_revenue=Decimal("300"), person=None, source="", custom={}),
    ]
    ids = []
    for values in deals:
        data = {**values, "stage": stage}
        row = Opportunity(_data={Opportunity._meta.get_column_by_name(k): v for k, v in data.items()})
        await row.save()
        ids.append(int(row.id))
    return {"ids": ids, "people": people}


CASES: list[tuple[Any, list[int]]] = [
    ({}, [0, 1, 2, 3]),
    ({"field": "state", "op": "eq", "value": "open"}, [0, 3]),
    ({"field": "state", "op": "ne", "value": "open"}, [1, 2]),
    ({"field": "state", "op": "in", "value": ["won", "lost"]}, [1, 2]),
    ({"field": "name", "op": "contains", "value": "alpha"}, [0, 1]),
    ({"field": "expected_revenue", "op": "gte", "value": "300"}, [0, 3]),
    ({"field": "expected_revenue", "op": "lt", "value": 20.5}, [1, 2]),
    ({"field": "expected_close", "op": "lt", "value": "2026-01-01"}, [2]),
    ({"field": "expected_close", "op": "is_empty"}, [1, 3]),
    ({"field": "expected_close", "op": "is_empty", "value": False}, [0, 2]),
    ({"field": "tags", "op": "contains", "value": "vip"}, [0]),
    ({"field": "tags", "op": "is_empty"}, [2, 3]),
    ({"field": "source", "op": "is_empty"}, [0, 1, 2, 3]),
    ({"field": "person", "op": "is_empty"}, [3]),
    ({"field": "person.province", "op": "eq", "value": "广东"}, [0]),
    ({"field": "person.province", "op": "ne", "value": "广东"}, [1, 2, 3]),
    ({"field": "person.province", "op": "is_empty"}, [2, 3]),
    ({"field": "person.custom.segment", "op": "eq", "value": "enterprise"}, [1]),
    ({"field": "custom.rating", "op": "gte", "value": 3}, [0]),
    ({"field": "custom.rating", "op": "lt", "value": 3}, [1]),
    ({"field": "custom.rating", "op": "ne", "value": 5}, [1, 2, 3]),
    ({"field": "custom.rating", "op": "is_empty"}, [2, 3]),
    ({"field": "custom.tier", "op": "in", "value": ["gold", "silver"]}, [0, 1]),
    ({"field": "custom.renewal", "op": "gt", "value": "2026-01-01"}, [0]),
    ({"field": "custom.vip", "op": "eq", "value": False}, [2]),
    ({"all": [{"field": "state", "op": "eq", "value": "open"},
              {"any": [{"field": "person.province", "op": "in", "value": ["广东", "北京"]},
                       {"field": "expected_revenue", "op": "gt", "value": 100}]}]}, [0, 3]),
    ({"not": {"field": "custom.tier", "op": "eq", "value": "gold"}}, [1, 2, 3]),
    ({"not": {"any": [{"field": "state", "op": "eq", "value": "won"}, {"field": "custom.vip", "op": "eq",
                                                                       "value": True}]}}, [2, 3]),
    ({"all": []}, [0, 1, 2, 3]),
    ({"field": "name", "op": "eq", "value": "x' OR 1=1 --"}, []),
]


async def test_sql_and_python_agree_on_every_record(crm_boot: Any) -> None:
    from crm_sales.models import Opportunity

    from core.automation import events, registry

    made = await _setup(crm_boot)
    ids = made["ids"]
    schema = await registry.schema("crm_sales.opportunity")
    am = await registry.model("crm_sales.opportunity")
    assert schema is not None and am is not None
    for raw, expected in CASES:
        node = conditions.parse(raw, schema)
        where = conditions.to_where(node, schema)
        query = Opportunity.select(Opportunity.id)
        if where is not None:
            query = query.where(where)
        in_sql = sorted(ids.index(r["id"]) for r in await query if r["id"] in ids)
        in_python = []
        for i, record_id in enumerate(ids):
            record = await events.read(am, record_id)
            assert record is not None
            view = {**record, **await events.related_values([node], am, record)}
            if conditions.matches(node, view):
                in_python.append(i)
        assert in_sql == expected, (raw, in_sql)
        assert in_python == expected, (raw, in_python)
        assert conditions.parse(conditions.as_json(node), schema) == node  # what is stored reads back the same


async def test_changes_only_in_python_and_compared_with_before(crm_boot: Any) -> None:
    from core.automation import registry

    await _setup(crm_boot)
    schema = await registry.schema("crm_sales.opportunity")
    assert schema is not None
    won = conditions.parse({"field": "state", "op": "changed_to", "value": "won"}, schema, changes=True)
    assert conditions.matches(won, {"state": "won"}, {"state": "open"})
    assert not conditions.matches(won, {"state": "won"}, {"state": "won"})
    assert not conditions.matches(won, {"state": "lost"}, {"state": "open"})
    assert conditions.matches(won, {"state": "won"}, None)  # created as won: changed from nothing
    moved = conditions.parse({"field": "custom.rating", "op": "changed"}, schema, changes=True)
    assert conditions.matches(moved, {"custom": {"rating": 4}}, {"custom": {"rating": 3}})
    assert not conditions.matches(moved, {"custom": '{"rating": 4}'}, {"custom": {"rating": 4}})
    with pytest.raises(ValidationError) as exc:
        conditions.to_where(won, schema)
    assert "condition.op" in exc.value.fields
    with pytest.raises(ValidationError) as exc:
        conditions.parse({"field": "state", "op": "changed"}, schema)  # a time-based rule: no change to compare
    assert "condition.op" in exc.value.fields


@pytest.mark.parametrize(("raw", "path"), [
    ({"field": "stag", "op": "eq", "value": 1}, "condition.field"),
    ({"all": [{"field": "state", "op": "eq", "value": "open"}, {"any": [{"field": "nope", "op": "eq"}]}]},
     "condition.all[1].any[0].field"),
    ({"field": "state", "op": "like", "value": "x"}, "condition.op"),
    ({"field": "state", "op": "lt", "value": "x"}, "condition.op"),
    ({"field": "state", "op": "eq", "value": "paused"}, "condition.value"),
    ({"field": "expected_revenue", "op": "gt", "value": "lots"}, "condition.value"),
    ({"field": "expected_close", "op": "lt", "value": "yesterday"}, "condition.value"),
    ({"field": "state", "op": "in", "value": []}, "condition.value"),
    ({"field": "state", "op": "in", "value": ["open", 3]}, "condition.value[1]"),
    ({"field": "state", "op": "eq"}, "condition.value"),
    ({"field": "tags", "op": "eq", "value": "hot"}, "condition.op"),
    ({"field": "person.nope", "op": "eq", "value": 1}, "condition.field"),
    ({"field": "state", "op": "eq", "value": "open", "extra": 1}, "condition.extra"),
    ({"any": []}, "condition.any"),
    ({"all": {"field": "state"}}, "condition.all"),
    ({"not": {"field": "state", "op": "eq", "value": "open"}, "all": []}, "condition.not"),
    ("state = open", "condition"),
    ({"field": "name", "op": "contains", "value": "a\x00b"}, "condition.value"),
])
async def test_validation_names_the_path(crm_boot: Any, raw: Any, path: str) -> None:
    from core.automation import registry

    await crm_boot("crm_sales")
    schema = await registry.schema("crm_sales.opportunity")
    assert schema is not None
    with pytest.raises(ValidationError) as exc:
        conditions.parse(raw, schema)
    assert path in exc.value.fields, exc.value.fields


async def test_deep_and_wide_trees_are_refused(crm_boot: Any) -> None:
    from core.automation import registry

    await crm_boot("crm_sales")
    schema = await registry.schema("crm_sales.opportunity")
    assert schema is not None
    deep: dict[str, Any] = {"field": "state", "op": "eq", "value": "open"}
    for _ in range(12):
        deep = {"not": deep}
    with pytest.raises(ValidationError):
        conditions.parse(deep, schema)
    wide = {"any": [{"field": "state", "op": "eq", "value": "open"}] * 101}
    with pytest.raises(ValidationError):
        conditions.parse(wide, schema)


async def test_through_access_masked_fields_and_unreadable_related_records(crm_boot: Any) -> None:
    from crm_contacts.models import Person
    from crm_sales.models import Opportunity

    from core.automation import registry
    from core.security import principal
    from core.security.access import Access, policy
    from core.testing import make_user

    made = await _setup(crm_boot)
    schema = await registry.schema("crm_sales.opportunity")
    assert schema is not None
    rep = await make_user("rep", "sales_rep")
    acc = Access(await principal.load(rep, implied=policy().implied))
    # the rep owns deal 0 and person Wang; Li's person belongs to nobody the rep can see
    await Opportunity.update({Opportunity.owner: rep}).where(Opportunity.id.is_in(made["ids"][:2]))
    await Person.update({Person.owner: rep}).where(Person.id == made["people"]["Wang"])
    node = conditions.parse({"field": "person.province", "op": "in", "value": ["广东", "上海"]}, schema)
    query = await acc.select(Opportunity, "crm_sales.opportunity", Opportunity.id,
                             where=conditions.to_where(node, schema, acc))
    assert [r["id"] for r in await query] == [made["ids"][0]]  # Li (上海) is out of the rep's reach
    finance = await make_user("fin", "finance")
    facc = Access(await principal.load(finance, implied=policy().implied))
    phone = conditions.parse({"field": "person.phone", "op": "contains", "value": "138"}, schema)
    with pytest.raises(PermissionDenied) as exc:
        conditions.to_where(phone, schema, facc)  # finance sees phones masked: no searching by their digits
    assert exc.value.field == "condition.field"
