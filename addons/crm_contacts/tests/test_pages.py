"""HTML pages: list with search/filters/keyset, 360° page with every addon's panels, forms, export, import UI."""

from __future__ import annotations

import re
from typing import Any

from core.testing import csrf_of, login_client, make_user


async def _client(crm_client: Any, found: Any, login: str, *roles: str) -> Any:
    client = await crm_client("crm_contacts", "crm_contacts_probe", found=found)
    await make_user(login, *roles)
    await login_client(client, login)
    return client


async def _create(client: Any, **values: str) -> int:
    page = await client.get("/contacts/people/new")
    form = {"csrf_token": csrf_of(page.text), "stage": "lead", **values}
    r = await client.post("/contacts/people/new", data=form)
    assert r.status_code == 303, r.text[:2000]
    return int(r.headers["location"].rsplit("/", 1)[1])


async def test_form_standardizes_and_warns_about_duplicates(crm_client: Any, found: Any) -> None:
    client = await _client(crm_client, found, "rep", "sales_rep")
    pid = await _create(client, name="zhang wei", phone="138-0013-8000", region="广东深圳")
    page = await client.get(f"/contacts/people/{pid}")
    assert "Zhang Wei" in page.text and "+8613800138000" in page.text and "广东" in page.text
    token = csrf_of(page.text)
    warn = await client.post("/contacts/people/new", data={"csrf_token": token, "name": "Zhang Wei",
                                                           "phone": "13800138000", "stage": "lead"})
    assert warn.status_code == 422 and f"/contacts/people/{pid}" in warn.text
    bad = await client.post("/contacts/people/new", data={"csrf_token": token, "name": "X", "phone": "1",
                                                          "stage": "lead"})
    assert bad.status_code == 422 and "is not a valid phone number" in bad.text
    ok = await client.post("/contacts/people/new", data={"csrf_token": token, "name": "Zhang Wei",
                                                         "phone": "13800138000", "stage": "lead", "confirm": "1"})
    assert ok.status_code == 303


async def test_list_search_filters_and_pages(crm_client: Any, found: Any) -> None:
    client = await _client(crm_client, found, "mgr", "sales_manager")
    for i in range(7):
        await _create(client, name=f"Person {i}", email=f"p{i}@example.com", stage="customer" if i < 3 else "lead")
    await _create(client, name="李娜", phone="13912345678")
    assert "李娜" in (await client.get("/contacts/people?q=1391234")).text
    found_rows = re.findall(r'class="contact-row" data-id="(\d+)"', (await client.get("/contacts/people?q=李")).text)
    assert len(found_rows) == 1
    assert len(re.findall("contact-row", (await client.get("/contacts/people?stage=customer")).text)) == 3
    first = await client.get("/contacts/people?sort=name&limit=5")
    names = re.findall(r'href="/contacts/people/\d+">([^<]+)</a>', first.text)
    nxt = re.search(r'rel="next" href="\?([^"]+)"', first.text)
    assert nxt and len(names) == 5
    second = await client.get("/contacts/people?" + nxt.group(1).replace("&amp;", "&") + "&limit=5")
    names += re.findall(r'href="/contacts/people/\d+">([^<]+)</a>', second.text)
    assert names == sorted(names) and len(set(names)) == 8
    assert (await client.get("/contacts/people?sort=bogus")).status_code == 422


async def test_360_page_collects_panels_and_timeline_from_other_addons(crm_client: Any, found: Any) -> None:
    client = await _client(crm_client, found, "rep", "sales_rep")
    pid = await _create(client, name="Panel Person")
    page = await client.get(f"/contacts/people/{pid}")
    note = await client.post("/timeline/notes", data={
        "csrf_token": csrf_of(page.text), "model": "crm_contacts.person", "record_id": str(pid),
        "body": "Called about renewal", "next": f"/contacts/people/{pid}"})
    assert note.status_code == 303
    assert (await client.post(f"/contacts/people/{pid}/notes", data={"csrf_token": csrf_of(page.text),
                                                                     "body": "x"})).status_code in (404, 405)
    page = await client.get(f"/contacts/people/{pid}")
    assert 'data-panel="probe_tickets"' in page.text and "Probe ticket opened" in page.text
    # one list of notes, the kernel timeline's: no second notes panel of the addon's own
    assert page.text.count("Called about renewal") == 1 and 'data-panel="crm_contacts_notes"' not in page.text
    # a change from the audit log, on the kernel's timeline
    assert re.search(r'data-kind="change">\s*<time[^>]*>[^<]*</time>\s*<strong>Created</strong> '
                     r'<small class="muted">Rep', page.text)


async def test_export_is_masked_neutralized_and_audited(crm_client: Any, found: Any) -> None:
    from core.security.models import AuditLog

    client = await _client(crm_client, found, "boss", "admin")
    await _create(client, name="=HYPERLINK(\"http://evil\")", phone="13812345678")
    await make_user("mkt", "marketing")
    await client.post("/logout", data={"csrf_token": csrf_of((await client.get("/contacts/people")).text)})
    await login_client(client, "mkt")
    r = await client.get("/contacts/people/export?format=csv")
    assert r.status_code == 200
    text = r.content.decode("utf-8-sig")
    assert "'=HYPERLINK" in text and "13812345678" not in text and "****5678" in text
    x = await client.get("/contacts/people/export?format=xlsx")
    assert x.content[:2] == b"PK"
    assert await AuditLog.count().where(AuditLog.action == "export") == 2


async def test_import_pages_upload_dry_run_start(crm_client: Any, found: Any) -> None:
    from crm_contacts.importing import run_batch
    from crm_contacts.models import ImportBatch

    client = await _client(crm_client, found, "rep", "sales_rep")
    token = csrf_of((await client.get("/contacts/imports")).text)
    content = "姓名,手机\n张三,13800138000\n李四,123\n".encode("gbk")
    up = await client.post("/contacts/imports", data={"csrf_token": token}, files={"file": ("a.csv", content)})
    assert up.status_code == 303
    page = await client.get(up.headers["location"])
    assert "+8613800138000" in page.text  # preview after standardization
    form = {"csrf_token": token, "map_0": "name", "map_1": "phone", "mode": "create"}
    dry = await client.post(up.headers["location"], data=form)
    assert "is not a valid phone number" in dry.text and 'class="dry-error"' in dry.text
    start = await client.post(up.headers["location"] + "/start", data=form)
    assert start.status_code == 303
    batch = await ImportBatch.select(ImportBatch.id, ImportBatch.status).first()
    assert batch["status"] == "queued"
    from core.security.access import Access
    from core.security.principal import load

    await run_batch(Access(await load(1)), batch["id"])  # what the job worker does
    done = await client.get(up.headers["location"])
    assert "report.csv" in done.text and "Revert" in done.text
    report = await client.get(up.headers["location"] + "/report.csv")
    assert "3,failed" in report.content.decode("utf-8-sig")


async def test_duplicate_review_and_merge_through_pages(crm_client: Any, found: Any) -> None:
    from crm_contacts.duplicates import scan_people
    from crm_contacts.models import Person

    client = await _client(crm_client, found, "mgr", "sales_manager")
    a = await _create(client, name="Wang Fang", phone="13900139000", email="wf@example.com")
    page = await client.get("/contacts/people/new")
    r = await client.post("/contacts/people/new", data={"csrf_token": csrf_of(page.text), "name": "WANG FANG",
                                                        "phone": "139-0013-9000", "stage": "lead", "confirm": "1"})
    b = int(r.headers["location"].rsplit("/", 1)[1])
    await scan_people()
    review = await client.get("/contacts/duplicates")
    assert f"/contacts/merge?ids={a},{b}" in review.text
    merge_page = await client.get(f"/contacts/merge?ids={a},{b}")
    assert merge_page.status_code == 200 and 'name="field_phone"' in merge_page.text
    done = await client.post("/contacts/merge?model=person", data={
        "csrf_token": csrf_of(merge_page.text), "ids": [str(a), str(b)], "survivor": str(a), "field_name": str(a)})
    assert done.status_code == 303 and done.headers["location"] == f"/contacts/people/{a}"
    loser = await Person.select().where(Person.id == b).first()
    assert loser["is_archived"] and loser["merged_into"] == a
    redirected = await client.get(f"/contacts/people/{b}")
    assert redirected.status_code == 303 and redirected.headers["location"].startswith(f"/contacts/people/{a}")
    assert "/contacts/merge?ids=" not in (await client.get("/contacts/duplicates")).text


async def test_pages_are_translated_to_chinese(crm_client: Any, found: Any) -> None:
    client = await crm_client("crm_contacts", "crm_contacts_probe", found=found)
    await make_user("fang", "sales_rep", language="zh_CN")
    await login_client(client, "fang")
    page = await client.get("/contacts/people")
    assert "联系人" in page.text and "姓名、电话、邮箱、公司" in page.text


async def test_organization_pages_list_detail_and_members(crm_client: Any, found: Any) -> None:
    client = await _client(crm_client, found, "orgrep", "sales_rep")
    page = await client.get("/contacts/organizations/new")
    assert page.status_code == 200
    r = await client.post("/contacts/organizations/new", data={
        "csrf_token": csrf_of(page.text), "name": "上海 Acme Trading", "tax_id": "91310000MA1FL0001X",
        "phone": "021-6888 0000", "stage": "lead"})
    assert r.status_code == 303, r.text[:2000]
    oid = int(r.headers["location"].rsplit("/", 1)[1])
    new_person = await client.get("/contacts/people/new")
    assert '<option value="上海 Acme Trading">' in new_person.text  # suggestions: organizations this user sees
    unknown = await client.post("/contacts/people/new", data={
        "csrf_token": csrf_of(new_person.text), "name": "Wang Fang", "organization": "No Such Co", "stage": "lead"})
    assert unknown.status_code == 422 and "no organization named &#39;No Such Co&#39;" in unknown.text
    assert 'value="No Such Co"' in unknown.text  # what was typed comes back
    pid = await _create(client, name="Wang Fang", organization="上海 Acme Trading", job_title="Buyer")
    edit = await client.get(f"/contacts/people/{pid}/edit")
    assert 'name="organization" list="org-names" autocomplete="off" value="上海 Acme Trading"' in edit.text
    listing = await client.get("/contacts/organizations")
    assert listing.status_code == 200 and f'href="/contacts/organizations/{oid}"' in listing.text
    detail = await client.get(f"/contacts/organizations/{oid}")
    assert detail.status_code == 200 and "Wang Fang" in detail.text and "+862168880000" in detail.text
