"""RFM and value tiers without crm_sales (the addon's own boot): the default tiers are seeded, a rebuild scores
nobody but is recorded (page, API), the order filters are refused clearly (422 naming the field, on the API
too) while the tier filter works, tier rules are checked on save, and the pages read in Chinese."""

from __future__ import annotations

from typing import Any

import pytest
from crm_marketing import rfm, segments
from crm_marketing.models import RfmBuild, Segment, ValueTier
from marketing_helpers import build_world

from core.errors import ValidationError
from core.security.models import User
from core.security.sessions import create_token
from core.testing import csrf_of, login_client


async def test_without_orders_tiers_are_seeded_and_order_filters_refused(crm_client: Any) -> None:
    from core.runtime import current

    http = await crm_client("crm_marketing")
    world = await build_world(current())
    keys = [r["key"] for r in await ValueTier.select(ValueTier.key).order_by(ValueTier.sequence)]
    assert keys == ["dormant", "gold", "loyal", "new", "regular"]
    built = await rfm.rebuild()
    assert built["customers"] == 0 and built["orders"] is False and await RfmBuild.count() == 1

    on_orders = {"all": [{"field": "city", "op": "eq", "value": "深圳"},
                         {"field": "total_spent", "op": "gte", "value": "100"}]}
    with pytest.raises(ValidationError) as refused:
        await segments.parse(on_orders)
    assert "crm_sales" in refused.value.fields["condition.all[1].field"]
    mk = {"Authorization": f"Bearer {await create_token(world.users['mk'], 'test', roles=['marketing'])}"}
    r = await http.post("/api/marketing/segments", json={"name": "spenders", "condition": on_orders}, headers=mk)
    assert r.status_code == 422 and "condition.all[1].field" in r.json()["error"]["fields"], r.text
    assert not await Segment.exists().where(Segment.name == "spenders")
    # the tier filter is there without orders (nobody has a tier yet); an unknown tier is a 422
    r = await http.post("/api/marketing/segments", headers=mk, json={
        "name": "gold", "condition": {"field": "value_tier", "op": "eq", "value": "gold"}})
    assert r.status_code == 201, r.text
    r = await http.post("/api/marketing/segments", headers=mk, json={
        "name": "x", "condition": {"field": "value_tier", "op": "eq", "value": "platinum"}})
    assert r.status_code == 422 and "condition.value" in r.json()["error"]["fields"], r.text

    # tiers through the API: a rule on an unknown field is a 422 naming it; the key never changes
    r = await http.post("/api/marketing/tiers", headers=mk, json={
        "key": "vip", "name_en": "VIP", "name_zh": "贵宾", "sequence": 5,
        "rule": {"field": "spend", "op": "gte", "value": 1}})
    assert r.status_code == 422 and "rule.field" in r.json()["error"]["fields"], r.text
    r = await http.post("/api/marketing/tiers", headers=mk, json={
        "key": "vip", "name_en": "VIP", "name_zh": "贵宾", "sequence": 5,
        "rule": {"field": "m", "op": "eq", "value": 5}})
    assert r.status_code == 201, r.text
    r = await http.patch(f"/api/marketing/tiers/{r.json()['id']}", headers=mk, json={"key": "vvip", "version": 1})
    assert r.status_code == 422 and "key" in r.json()["error"]["fields"], r.text
    # a rebuild on demand through the API answers with the build
    r = await http.post("/api/marketing/rfm-builds", headers=mk, json={})
    assert r.status_code == 201 and r.json()["customers"] == 0 and await RfmBuild.count() == 2, r.text
    rep = {"Authorization": f"Bearer {await create_token(world.users['rep'], 'test', roles=['sales_rep'])}"}
    assert (await http.post("/api/marketing/rfm-builds", headers=rep, json={})).status_code == 403
    assert await RfmBuild.count() == 2

    # the page, in Chinese: last build, tiers by their names, a rebuild button that works
    await User.update({User.language: "zh_CN"}).where(User.id == world.users["mk"])
    await login_client(http, "mk")
    page = await http.get("/marketing/rfm")
    assert page.status_code == 200 and "高价值客户" in page.text and "价值分层" in page.text and "贵宾" in page.text
    assert "Rebuild now" not in page.text and "上次构建" in page.text
    r = await http.post("/marketing/rfm/rebuild", data={"csrf_token": csrf_of(page.text)})
    assert r.status_code == 303 and await RfmBuild.count() == 3
    await login_client(http, "rep")
    assert (await http.get("/marketing/rfm")).status_code == 403
