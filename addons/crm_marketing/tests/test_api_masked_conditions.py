"""The JSON API refuses what the pages refuse: a segment or journey condition on a contact field the caller sees
masked (marketing sees e-mails and phones masked) is a 403 and nothing is stored — else matching people one
condition at a time would read the masked values back."""

from __future__ import annotations

from typing import Any

from crm_marketing.models import Journey, Segment


async def test_api_conditions_on_masked_fields_are_refused(crm_client: Any) -> None:
    from marketing_helpers import build_world

    from core.runtime import current
    from core.security.sessions import create_token

    http = await crm_client("crm_marketing")
    world = await build_world(current())
    headers = {"Authorization": f"Bearer {await create_token(world.users['mk'], 'test', roles=['marketing'])}"}
    on_email = {"field": "email", "op": "contains", "value": "@example.cn"}
    on_phone = {"field": "phone", "op": "contains", "value": "138"}

    r = await http.post("/api/marketing/segments", json={"name": "probe", "condition": on_email}, headers=headers)
    assert r.status_code == 403, r.text
    ok = await http.post("/api/marketing/segments", json={"name": "shenzhen",
                                                           "condition": {"field": "city", "op": "eq", "value": "深圳"}},
                         headers=headers)
    assert ok.status_code == 201, ok.text
    patched = await http.patch(f"/api/marketing/segments/{ok.json()['id']}",
                               json={"condition": on_phone, "version": ok.json()["version"]}, headers=headers)
    assert patched.status_code == 403, patched.text

    steps = [{"kind": "condition", "condition": on_phone}, {"kind": "add_tag", "tag": "has-138"}]
    r = await http.post("/api/marketing/journeys", json={"name": "probe", "trigger": {"type": "event", "event": "a"},
                                                         "steps": steps}, headers=headers)
    assert r.status_code == 403, r.text
    assert await Segment.count().where(Segment.name == "probe") == 0
    assert await Journey.count().where(Journey.name == "probe") == 0
    # the same journey on a field marketing may read is taken
    steps[0]["condition"] = {"field": "city", "op": "eq", "value": "深圳"}
    r = await http.post("/api/marketing/journeys", json={"name": "fine", "trigger": {"type": "event", "event": "a"},
                                                         "steps": steps}, headers=headers)
    assert r.status_code == 201, r.text
