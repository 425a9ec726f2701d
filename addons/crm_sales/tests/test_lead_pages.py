"""Leads on their pages (issue 12): a form page with the standardized phone, e-mail and region, editing, search
and filters, disqualifying with a reason; a deal created from the pipeline page. One app per test module."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from crm_sales.models import Lead, Opportunity

from core.testing import csrf_of, login_client


async def test_lead_pages_and_a_deal_from_the_pipeline(crm_client: Any) -> None:
    from sales_helpers import build_org

    from core.runtime import current

    client = await crm_client("crm_sales")
    await build_org(current())
    await login_client(client, "rep1")
    form = await client.get("/sales/leads/new")
    assert form.status_code == 200 and "UTM source" in form.text and "utm_source</" not in form.text
    csrf = csrf_of(form.text)
    bad = await client.post("/sales/leads/new", data={"csrf_token": csrf, "name": "Fair", "email": "nobody"})
    assert bad.status_code == 422 and 'data-field="email"' in bad.text and 'value="Fair"' in bad.text
    assert await Lead.count() == 0  # nothing half-written
    made = await client.post("/sales/leads/new", data={
        "csrf_token": csrf, "name": "Trade fair 展会", "contact_name": "张伟", "company_name": "华强电子",
        "phone": "138 1234 5678", "email": " Zhang.Wei@HuaQiang.CN ", "region": "广东省深圳市",
        "expected_revenue": "50000", "currency": "CNY"})
    assert made.status_code == 303
    lead_url = made.headers["location"]
    lead_id = int(lead_url.rsplit("/", 1)[1])
    row = await Lead.select().where(Lead.id == lead_id).first()
    assert (row["phone"], row["email"], row["region"]) == ("+8613812345678", "Zhang.Wei@huaqiang.cn", "广东")
    other = await client.post("/sales/leads/new", data={  # a browser posts every field, the empty ones too
        "csrf_token": csrf, "name": "Walk-in", "source": "walk-in", "expected_revenue": "", "phone": "", "email": ""})
    assert other.status_code == 303

    # edit: the version guards against a lost update; the region is standardized again
    edit = await client.get(lead_url + "/edit")
    version = re.search(r'name="version" value="(\d+)"', edit.text).group(1)
    saved = await client.post(lead_url + "/edit", data={"csrf_token": csrf, "version": version,
                                                         "name": "Trade fair 展会", "region": "Hangzhou"})
    assert saved.status_code == 303
    assert (await Lead.select(Lead.region).where(Lead.id == lead_id).first())["region"] == "浙江"
    stale = await client.post(lead_url + "/edit", data={"csrf_token": csrf, "version": version, "name": "X"})
    assert stale.status_code == 409

    # search and filters
    found = (await client.get("/sales/leads", params={"q": "华强"})).text
    assert "Trade fair 展会" in found and "Walk-in" not in found
    assert "Trade fair 展会" in (await client.get("/sales/leads", params={"q": "1381234"})).text
    by_source = (await client.get("/sales/leads", params={"source": "walk-in"})).text
    assert "Walk-in" in by_source and "Trade fair 展会" not in by_source

    # disqualify: a reason is required, shown on the lead, the lead leaves the incoming list; reopen
    refused = await client.post(lead_url + "/disqualify", data={"csrf_token": csrf, "reason": " "})
    assert refused.status_code == 422
    done = await client.post(lead_url + "/disqualify", data={"csrf_token": csrf, "reason": "没有预算 no budget"})
    assert done.status_code == 303
    page = (await client.get(lead_url)).text
    assert "没有预算 no budget" in page and "Disqualified" in page
    assert "Trade fair 展会" not in (await client.get("/sales/leads")).text
    assert "Trade fair 展会" in (await client.get("/sales/leads", params={"state": "disqualified"})).text
    assert (await client.post(lead_url + "/disqualify", data={"csrf_token": csrf, "reopen": "1"})).status_code == 303
    assert (await Lead.select(Lead.state).where(Lead.id == lead_id).first())["state"] == "new"

    # the JSON API standardizes an update the same way
    token = re.search(r'"version": ?(\d+)', (await client.get(f"/api/sales/leads/{lead_id}")).text)
    api = await client.patch(f"/api/sales/leads/{lead_id}", headers={"X-CSRF-Token": csrf},
                             json={"version": int(token.group(1)), "phone": "+86 139-0000-0000"})
    assert api.status_code == 200 and api.json()["phone"] == "+8613900000000"

    # a deal straight from the pipeline page
    board = (await client.get("/sales/")).text
    assert 'action="/sales/opportunities/new"' in board
    deal = await client.post("/sales/opportunities/new", data={
        "csrf_token": csrf_of(board), "name": "Direct deal 直接", "expected_revenue": "8800", "currency": "CNY"})
    assert deal.status_code == 303
    opp = await Opportunity.select().where(Opportunity.name == "Direct deal 直接").first()
    assert opp["state"] == "open" and opp["expected_revenue"] == Decimal("8800")
    board = (await client.get("/sales/")).text
    assert "Direct deal 直接" in board
    first = board[board.index('class="column-total"'):]
    first = first[:first.index("</p>")]  # the first column: its count and its amount as money
    assert 'data-count="1"' in first and "CN¥8,800.00" in first
    blank = await client.post("/sales/opportunities/new", data={
        "csrf_token": csrf_of(board), "name": "Blank amounts", "expected_revenue": "", "expected_close": "",
        "source": ""})
    assert blank.status_code == 303
    empty = await client.post("/sales/opportunities/new", data={"csrf_token": csrf_of(board), "name": ""})
    assert empty.status_code == 422 and 'data-field="name"' in empty.text
