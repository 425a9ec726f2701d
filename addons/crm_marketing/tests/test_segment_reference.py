"""Property: a segment built in SQL holds exactly the people the kernel's Python evaluation of the same condition
(``core.conditions.matches``) selects, for generated conditions over generated people (SQLite and PostgreSQL)."""

from __future__ import annotations

import random
from typing import Any

from crm_contacts.models import Organization, Person, PersonTag, Tag
from crm_marketing import segments
from crm_marketing.models import Segment, SegmentMember
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marketing_helpers import add_person

from core import conditions

PROVINCES = ["广东", "上海", "北京", ""]
STAGES = ["lead", "customer", "loyal", "dormant"]
TAGS = ["vip", "newsletter", "b2b"]

leaf = st.one_of(
    st.builds(
        lambda op, v: {"field": "province", "op": op, "value": v},
        st.sampled_from(["eq", "ne"]),
        st.sampled_from(PROVINCES[:3]),
    ),
    st.builds(
        lambda v: {"field": "province", "op": "in", "value": v},
        st.lists(st.sampled_from(PROVINCES[:3]), min_size=1, max_size=2, unique=True),
    ),
    st.builds(lambda v: {"field": "province", "op": "is_empty", "value": v}, st.booleans()),
    st.builds(
        lambda op, v: {"field": "stage", "op": op, "value": v}, st.sampled_from(["eq", "ne"]), st.sampled_from(STAGES)
    ),
    st.builds(lambda v: {"field": "city", "op": "contains", "value": v}, st.sampled_from(["圳", "州", "海"])),
    st.builds(lambda v: {"field": "tags", "op": "contains", "value": v}, st.sampled_from(TAGS)),
    st.builds(lambda v: {"field": "tags", "op": "is_empty", "value": v}, st.booleans()),
    st.builds(lambda v: {"field": "organization.province", "op": "eq", "value": v}, st.sampled_from(PROVINCES[:3])),
)
trees = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.builds(lambda items: {"all": items}, st.lists(inner, max_size=3)),
        st.builds(lambda items: {"any": items}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda item: {"not": item}, inner),
    ),
    max_leaves=6,
)


async def _people() -> list[dict[str, Any]]:
    """Seeded people (fixed data; the conditions vary), as records ``conditions.matches`` reads."""
    if await Person.count() < 20:
        rng = random.Random(13)
        orgs = [int((await Organization.insert(Organization(name=f"Org {p}", province=p)))[0]["id"]) for p in PROVINCES]
        for i in range(20):
            pid = await add_person(
                f"P{i}",
                f"p{i}@example.cn",
                rng.choice(PROVINCES),
                rng.choice(["深圳", "广州", "上海", ""]),
                rng.choice(STAGES),
                "zh_CN",
                tuple(rng.sample(TAGS, rng.randint(0, 2))),
            )
            if rng.random() < 0.7:
                await Person.update({Person.organization: rng.choice(orgs)}).where(Person.id == pid)
    tags: dict[int, list[str]] = {}
    for row in await PersonTag.select(PersonTag.person, PersonTag.tag.name):
        tags.setdefault(int(row["person"]), []).append(row["tag.name"])
    rows = await Person.select(
        Person.id, Person.province, Person.city, Person.stage, Person.organization.province.as_alias("org_province")
    )
    return [
        {
            "id": r["id"],
            "province": r["province"],
            "city": r["city"],
            "stage": r["stage"],
            "tags": tags.get(int(r["id"]), []),
            "organization.province": r["org_province"],
        }
        for r in rows
    ]


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=trees)
async def test_sql_build_matches_the_python_reference(world: Any, tree: dict[str, Any]) -> None:
    people = await _people()
    assert await Tag.count() >= 3
    node, sch = await segments.parse(tree)
    expected = {int(p["id"]) for p in people if conditions.matches(node, p)}
    # one segment whose condition changes between examples: each build starts from the last one's members, so
    # the PostgreSQL build's difference (leavers deleted, joiners inserted, stayers kept) is what is checked
    same = await Segment.select(Segment.id).where(Segment.name == "p").first()
    if same is None:
        segment_id = int((await Segment.insert(Segment(name="p", condition=tree)))[0]["id"])
    else:
        segment_id = int(same["id"])
        await Segment.update({Segment.condition: tree}).where(Segment.id == segment_id)
    built = await segments.build(segment_id)
    got = {
        int(r["person"])
        for r in await SegmentMember.select(SegmentMember.person).where(SegmentMember.segment == segment_id)
    }
    assert got == expected, tree
    assert built["count"] == len(expected) == await segments.count(tree)
