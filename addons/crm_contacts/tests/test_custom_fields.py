"""Custom fields on people and organizations (core.customfields): defined by an admin over the JSON API, then
read and written through the API, checked (422 naming ``custom.<key>``), filtered, described by OpenAPI,
audited, and under field rules by role — on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

PEOPLE = "/api/contacts/people"
FIELDS = "/api/admin/custom-fields"


async def _field(client: Any, h: dict[str, str], **kw: Any) -> dict[str, Any]:
    body = {"model": "crm_contacts.person", "label_en": kw.get("key", "").title(), **kw}
    r = await client.post(FIELDS, headers=h, json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _fields(client: Any, admin: dict[str, str]) -> None:
    await _field(client, admin, key="vip_level", kind="choice", label_zh="会员等级", is_filterable=True,
                 is_listed=True, options=[{"key": "gold", "en": "Gold", "zh": "金卡"},
                                          {"key": "silver", "en": "Silver", "zh": "银卡"}])
    await _field(client, admin, key="budget", kind="money", currency="CNY", min_value="0",
                 rules={"marketing": "masked", "service_agent": "hidden"})
    await _field(client, admin, key="employees", kind="number", min_value="1", max_value="100000",
                 is_filterable=True)
    await _field(client, admin, key="code", kind="text", pattern="[A-Z]{2}[0-9]{3}", max_length=5,
                 rules={"sales_rep": "readonly"})
    await _field(client, admin, key="signed_on", kind="date")
    await _field(client, admin, key="is_partner", kind="boolean", default=False, is_filterable=True)
    await _field(client, admin, key="topics", kind="choices", is_filterable=True,
                 options=[{"key": "erp", "en": "ERP"}, {"key": "crm", "en": "CRM"}, {"key": "bi", "en": "BI"}])
    await _field(client, admin, key="employer", kind="link", target="crm_contacts.organization")


async def test_custom_values_round_trip_validate_filter_and_audit(api: Any) -> None:
    client, token_for = api
    admin = await token_for("boss", "admin")
    await _fields(client, admin)
    mgr = await token_for("mgr", "sales_manager")
    r = await client.post(PEOPLE, headers=mgr, json={"name": "Wang Fang", "custom": {
        "vip_level": "gold", "budget": "1234.5", "employees": 120, "code": "AB123", "signed_on": "2026-03-01",
        "topics": ["crm", "erp"]}})
    assert r.status_code == 201, r.text
    person = r.json()
    assert person["custom"] == {"vip_level": "gold", "budget": {"amount": "1234.50", "currency": "CNY"},
                                "employees": 120, "code": "AB123", "signed_on": "2026-03-01", "is_partner": False,
                                "topics": ["erp", "crm"]}
    pid = person["id"]
    # 422 naming custom.<key>, for each kind of mistake
    for custom, name in (({"vip_level": "platinum"}, "custom.vip_level"), ({"employees": 0}, "custom.employees"),
                         ({"code": "ab123"}, "custom.code"), ({"signed_on": "2026-02-30"}, "custom.signed_on"),
                         ({"budget": {"amount": "x"}}, "custom.budget"), ({"nickname": "y"}, "custom.nickname"),
                         ({"is_partner": "yes"}, "custom.is_partner"), ({"employer": 999}, "custom.employer"),
                         ({"topics": ["erp", "sap"]}, "custom.topics")):
        bad = await client.patch(f"{PEOPLE}/{pid}", headers=mgr, json={"version": 1, "custom": custom})
        assert bad.status_code == 422, (custom, bad.text)
        assert name in bad.json()["error"]["fields"], bad.json()
    # an update sends only what changes; the rest stays; null clears
    ok = await client.patch(f"{PEOPLE}/{pid}", headers=mgr, json={"version": 1, "custom": {
        "vip_level": "silver", "signed_on": None}})
    assert ok.status_code == 200, ok.text
    assert ok.json()["custom"]["vip_level"] == "silver" and "signed_on" not in ok.json()["custom"]
    assert ok.json()["custom"]["employees"] == 120
    other = (await client.post(PEOPLE, headers=mgr, json={"name": "Li Na", "custom": {
        "employees": 5, "is_partner": True, "topics": ["bi"]}})).json()["id"]
    names = lambda r: sorted(p["name"] for p in r.json()["items"])  # noqa: E731
    assert names(await client.get(f"{PEOPLE}?cf_vip_level=silver", headers=mgr)) == ["Wang Fang"]
    assert names(await client.get(f"{PEOPLE}?cf_employees=5", headers=mgr)) == ["Li Na"]
    assert names(await client.get(f"{PEOPLE}?cf_is_partner=true", headers=mgr)) == ["Li Na"]
    assert names(await client.get(f"{PEOPLE}?cf_topics=erp", headers=mgr)) == ["Wang Fang"]
    assert (await client.get(f"{PEOPLE}?cf_employees=many", headers=mgr)).status_code == 422
    assert other
    # the audit log names the custom fields that changed
    from core.security.models import AuditLog

    rows = await AuditLog.select(AuditLog.changes).where((AuditLog.model == "crm_contacts.person") & (
        AuditLog.record_id == str(pid)) & (AuditLog.action == "update"))
    changes = rows[-1]["changes"]
    assert "custom.vip_level" in str(changes) and "custom.employees" not in str(changes)


async def test_field_rules_apply_to_custom_fields(api: Any) -> None:
    client, token_for = api
    admin = await token_for("boss", "admin")
    await _fields(client, admin)
    mgr = await token_for("mgr", "sales_manager")
    pid = (await client.post(PEOPLE, headers=mgr, json={"name": "Zhao Lei", "custom": {
        "budget": {"amount": "99", "currency": "USD"}, "code": "CN001"}})).json()["id"]
    marketing = await token_for("mkt", "marketing")
    seen = (await client.get(f"{PEOPLE}/{pid}", headers=marketing)).json()
    assert seen["custom"]["budget"] == "****" and seen["custom"]["code"] == "CN001"
    service = await token_for("svc", "service_agent")
    assert "budget" not in (await client.get(f"{PEOPLE}/{pid}", headers=service)).json()["custom"]
    assert (await client.get(f"{PEOPLE}?cf_employees=1", headers=service)).status_code == 200
    rep = await token_for("rep", "sales_rep")
    mine = (await client.post(PEOPLE, headers=rep, json={"name": "Rep Person"})).json()
    refused = await client.patch(f"{PEOPLE}/{mine['id']}", headers=rep, json={"version": 1,
                                                                              "custom": {"code": "AA111"}})
    assert refused.status_code == 403 and "custom.code" in refused.json()["error"]["fields"]
    created = await client.post(PEOPLE, headers=rep, json={"name": "Rep Two", "custom": {"code": "AA111"}})
    assert created.status_code == 403


async def test_openapi_describes_custom_fields(api: Any) -> None:
    client, token_for = api
    admin = await token_for("boss", "admin")
    await _fields(client, admin)
    await _field(client, admin, key="region_code", kind="text", is_required=True)
    doc = (await client.get("/api/openapi.json", headers=admin)).json()
    schemas = doc["components"]["schemas"]
    person = next(v for k, v in schemas.items() if k.endswith("person") and "custom" in v.get("properties", {}))
    custom = person["properties"]["custom"]
    assert custom["properties"]["vip_level"]["anyOf" if "anyOf" in custom["properties"]["vip_level"] else "type"]
    create = next(v for k, v in schemas.items() if k.endswith("person_create"))
    assert "custom" in create["required"] and create["properties"]["custom"]["required"] == ["region_code"]
    assert create["properties"]["custom"]["properties"]["vip_level"]["enum"] == ["gold", "silver"]
    params = [p["name"] for p in doc["paths"][PEOPLE]["get"]["parameters"]]
    assert "cf_vip_level" in params and "cf_code" not in params
    missing = await client.post(PEOPLE, headers=admin, json={"name": "No Region"})
    assert missing.status_code == 422 and missing.json()["error"]["fields"] == {"custom.region_code": "is required"}
