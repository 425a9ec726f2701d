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


async def _page_client(api: Any) -> tuple[Any, dict[str, str], dict[str, str]]:
    from core.testing import login_client

    client, token_for = api
    admin = await token_for("boss", "admin")
    await _fields(client, admin)
    layout = await client.put("/api/admin/form-layouts/crm_contacts.person", headers=admin, json={
        "sections": [{"key": "main", "en": "Main", "zh": "基本", "fields": ["name", "custom.vip_level", "email"]},
                     {"key": "deal", "en": "Business", "zh": "业务", "fields": ["custom.employees", "custom.budget"]}],
        "required": ["email"], "later": ["custom.employees"]})
    assert layout.status_code == 200, layout.text
    mgr = await token_for("mgr", "sales_manager")
    await login_client(client, "mgr")
    return client, admin, mgr


async def test_person_form_follows_the_layout_and_shows_custom_fields(api: Any) -> None:
    from core.testing import csrf_of

    client, _, _ = await _page_client(api)
    page = await client.get("/contacts/people/new")
    assert page.status_code == 200
    html = page.text
    assert 'name="custom.vip_level"' in html and 'name="custom.budget"' in html
    assert 'name="custom.employees"' not in html, "a field that comes later is not on the create form"
    assert html.index('name="name"') < html.index('name="custom.vip_level"') < html.index('name="email"')
    assert '<legend>Main</legend>' in html and '<legend>Business</legend>' in html
    token = csrf_of(html)
    missing = await client.post("/contacts/people/new", data={"csrf_token": token, "name": "Sun Li",
                                                              "custom.vip_level": "gold", "stage": "lead"})
    assert missing.status_code == 422 and "is required" in missing.text
    bad = await client.post("/contacts/people/new", data={"csrf_token": token, "name": "Sun Li", "email": "s@x.cn",
                                                          "custom.budget": "lots", "stage": "lead"})
    assert bad.status_code == 422 and 'data-field="custom.budget"' in bad.text
    ok = await client.post("/contacts/people/new", data={
        "csrf_token": token, "name": "Sun Li", "email": "sun@example.com", "custom.vip_level": "gold",
        "custom.budget": "2000", "custom.topics": ["bi", "erp"], "custom.is_partner": "1", "stage": "lead"})
    assert ok.status_code == 303, ok.text[:3000]
    url = ok.headers["location"]
    detail = (await client.get(url)).text
    assert "Gold" in detail and "2000.00 CNY" in detail and "ERP, BI" in detail
    edit = await client.get(url + "/edit")
    assert 'name="custom.employees"' in edit.text and 'value="2000.00"' in edit.text
    form = {"csrf_token": csrf_of(edit.text), "version": "1", "name": "Sun Li", "email": "sun@example.com",
            "stage": "lead", "custom.vip_level": "silver", "custom.employees": "42", "custom.budget": "2000",
            "custom.topics": ["bi", "erp"], "custom.is_partner": "1"}
    assert (await client.post(url + "/edit", data=form)).status_code == 303
    assert "Silver" in (await client.get(url)).text


async def test_list_column_filter_sort_and_export_of_custom_fields(api: Any) -> None:
    client, admin, mgr = await _page_client(api)
    for name, level, employees in (("Ann", "gold", 30), ("Bob", "silver", 10), ("Cai", "gold", 20)):
        r = await client.post(PEOPLE, headers=mgr, json={"name": name, "custom": {
            "vip_level": level, "employees": employees, "budget": "5", "code": "AB123"}})
        assert r.status_code == 201, r.text
    page = await client.get("/contacts/people?cf_vip_level=gold&sort=-cf_vip_level")
    assert page.status_code == 200, page.text[:2000]
    assert page.text.count('class="contact-row"') == 2 and "Bob" not in page.text
    assert ">Gold</td>" in page.text and 'name="cf_vip_level"' in page.text
    assert (await client.get("/contacts/people?sort=cf_topics")).status_code == 422  # several choices: no order
    await client.patch(f"{FIELDS}/{(await _id(client, admin, 'employees'))}", headers=admin,
                       json={"version": 1, "is_listed": True})
    first = await client.get("/contacts/people?sort=cf_employees&limit=2")
    assert 'value="cf_employees"' in first.text  # a list column: offered as a sort
    assert [n for n in ("Bob", "Cai", "Ann") if f">{n}</a>" in first.text] == ["Bob", "Cai"]
    nxt = first.text.split('rel="next" href="?')[1].split('"')[0].replace("&amp;", "&")
    second = await client.get("/contacts/people?" + nxt)
    assert ">Ann</a>" in second.text and ">Bob</a>" not in second.text
    csv = await client.get("/contacts/people/export?format=csv&cf_vip_level=gold")
    assert csv.status_code == 200
    lines = csv.text.splitlines()
    assert "custom.vip_level" in lines[0] and "custom.budget" in lines[0] and len(lines) == 3
    assert all("Gold" in line and "5.00 CNY" in line for line in lines[1:])
    xlsx = await client.get("/contacts/people/export?format=xlsx")
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"


async def _id(client: Any, admin: dict[str, str], key: str) -> int:
    items = (await client.get(FIELDS + "?model=crm_contacts.person", headers=admin)).json()["items"]
    return int(next(f["id"] for f in items if f["key"] == key))


async def test_masked_custom_field_is_masked_in_list_and_export_hidden_is_absent(api: Any) -> None:
    from core.testing import login_client

    client, token_for = api
    admin = await token_for("boss", "admin")
    await _fields(client, admin)
    await client.patch(f"{FIELDS}/{await _id(client, admin, 'budget')}", headers=admin,
                       json={"version": 1, "is_listed": True})
    await client.post(PEOPLE, headers=admin, json={"name": "Masked Person", "custom": {"budget": "777"}})
    await token_for("mkt", "marketing")
    await login_client(client, "mkt")
    page = await client.get("/contacts/people")
    assert "****" in page.text and "777" not in page.text
    csv = (await client.get("/contacts/people/export?format=csv")).text
    assert "custom.budget" in csv and "****" in csv and "777" not in csv
    refused = await client.get("/contacts/people?cf_budget=777")
    assert refused.status_code in (403, 422)
    await token_for("svc", "service_agent")
    await login_client(client, "svc")
    assert "custom.budget" not in (await client.get("/contacts/people/export?format=csv")).text


async def test_import_maps_a_column_to_a_custom_field(api: Any, booted: Any) -> None:
    from crm_contacts.importing import Importer, auto_mapping
    from crm_contacts.tabular import read_table

    client, token_for = api
    admin = await token_for("boss", "admin")
    await _fields(client, admin)
    acc = await booted("importer", "sales_manager")
    content = (b"Name,custom.vip_level,Employees,custom.signed_on\n"
               b"Zhou Jie,Gold,12,2026-01-02\nWu Yan,platinum,3,\n")
    header, rows = read_table(content, "people.csv")
    mapping = auto_mapping(header)
    assert mapping["custom.vip_level"] == "custom.vip_level" and mapping["Employees"] == "custom.employees"
    results = await Importer(acc, header, rows, mapping).run()
    assert [r.action for r in results] == ["created", "failed"]
    assert results[1].message.startswith("custom.vip_level")
    person = (await client.get(f"{PEOPLE}/{results[0].record_id}", headers=admin)).json()
    assert person["custom"]["vip_level"] == "gold" and person["custom"]["employees"] == 12
    assert person["custom"]["signed_on"] == "2026-01-02"


async def test_searchable_fields_are_searched_and_audit_diffs_follow_the_rules(api: Any, booted: Any) -> None:
    from core.testing import login_client

    client, token_for = api
    admin = await token_for("boss", "admin")
    await _fields(client, admin)
    await _field(client, admin, key="nickname", kind="text", is_searchable=True)
    await _field(client, admin, key="secret_word", kind="text", is_searchable=True, rules={"marketing": "masked"})
    pid = (await client.post(PEOPLE, headers=admin, json={"name": "Gao Yuan", "custom": {
        "nickname": "Dragonfly", "secret_word": "Zephyrus", "budget": "10"}})).json()["id"]
    await login_client(client, "boss")
    assert f'data-id="{pid}"' in (await client.get("/contacts/people?q=dragonfly")).text
    assert f'data-id="{pid}"' not in (await client.get("/contacts/people?q=zephyrus")).text, \
        "a field some role sees masked never makes a record findable"
    marketing = await booted("mkt", "marketing")
    diff = marketing.present_diff("crm_contacts.person", {"custom.budget": ["10", "20"], "custom.nickname": ["a", "b"]})
    assert diff == {"custom.budget": ["****", "****"], "custom.nickname": ["a", "b"]}
