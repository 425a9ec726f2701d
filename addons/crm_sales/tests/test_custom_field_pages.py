"""Custom fields on crm_sales' HTML pages (issue 18 §1): the lead, deal and quote forms carry them, the record
pages show them, the lists take them as columns and filters — with the kernel's helpers, like crm_contacts'
pages — and a field hidden from a role is nowhere on that role's pages."""

from __future__ import annotations

from typing import Any

from crm_sales.models import Lead, Opportunity, Quote

from core.testing import csrf_of, login_client, make_user

TIER = {"model": "crm_sales.lead", "key": "tier", "kind": "choice", "label_en": "Tier", "label_zh": "等级",
        "is_filterable": True, "is_listed": True,
        "options": [{"key": "gold", "en": "Gold", "zh": "金牌"}, {"key": "silver", "en": "Silver", "zh": "银牌"}]}
SECRET = {"model": "crm_sales.lead", "key": "secret_note", "kind": "text", "label_en": "Secret note",
          "is_listed": True, "rules": {"sales_rep": "hidden"}}
SEGMENT = {"model": "crm_sales.opportunity", "key": "segment", "kind": "text", "label_en": "Segment",
           "is_filterable": True, "is_listed": True}
PO = {"model": "crm_sales.quote", "key": "po_number", "kind": "text", "label_en": "PO number",
      "is_required": True, "is_filterable": True, "is_listed": True}


async def test_sales_pages_carry_custom_fields(crm_client: Any) -> None:
    from sales_helpers import build_org

    from core.runtime import current

    client = await crm_client("crm_sales")
    await build_org(current())
    await make_user("root", "admin")
    await login_client(client, "root")
    admin_csrf = csrf_of((await client.get("/")).text)
    for body in (TIER, SECRET, SEGMENT, PO):
        made = await client.post("/api/admin/custom-fields", json=body, headers={"X-CSRF-Token": admin_csrf})
        assert made.status_code == 201, made.text
    await client.post("/logout", data={"csrf_token": admin_csrf})
    await login_client(client, "rep1")

    # lead: form, detail, list column, filter; the hidden field nowhere
    form = (await client.get("/sales/leads/new")).text
    assert 'data-custom-field="custom.tier"' in form and "Secret note" not in form
    csrf = csrf_of(form)
    wrong = await client.post("/sales/leads/new", data={"csrf_token": csrf, "name": "X", "custom.tier": "bronze"})
    assert wrong.status_code == 422 and 'data-field="custom.tier"' in wrong.text
    for name, tier in (("Gold lead", "gold"), ("Silver lead", "silver")):
        made = await client.post("/sales/leads/new", data={"csrf_token": csrf, "name": name, "custom.tier": tier})
        assert made.status_code == 303
    gold = await Lead.select(Lead.id, Lead.custom).where(Lead.name == "Gold lead").first()
    assert "gold" in str(gold["custom"])
    detail = (await client.get(f"/sales/leads/{gold['id']}")).text
    assert 'data-custom-field="custom.tier">Gold<' in detail
    listed = (await client.get("/sales/leads")).text
    assert "<th>Tier</th>" in listed and "Secret note" not in listed and 'data-custom-filter="custom.tier"' in listed
    only_gold = (await client.get("/sales/leads", params={"cf_tier": "gold"})).text
    assert "Gold lead" in only_gold and "Silver lead" not in only_gold
    edit = (await client.get(f"/sales/leads/{gold['id']}/edit")).text
    assert 'value="gold" selected' in edit

    # deal: created from the pipeline page's form with its custom field, shown, listed, filtered
    board = (await client.get("/sales/")).text
    assert 'data-custom-field="custom.segment"' in board
    made = await client.post("/sales/opportunities/new", data={"csrf_token": csrf, "name": "Bank deal",
                                                               "custom.segment": "Banking"})
    assert made.status_code == 303
    await client.post("/sales/opportunities/new", data={"csrf_token": csrf, "name": "Shop deal",
                                                        "custom.segment": "Retail"})
    deal = await Opportunity.select(Opportunity.id).where(Opportunity.name == "Bank deal").first()
    page = (await client.get(f"/sales/opportunities/{deal['id']}")).text
    assert 'data-custom-field="custom.segment">Banking<' in page
    assert 'data-custom-field="custom.po_number"' in page  # the new quote asks for its required field
    deals = (await client.get("/sales/opportunities", params={"cf_segment": "Banking"})).text
    assert "<th>Segment</th>" in deals and "Bank deal" in deals and "Shop deal" not in deals

    # quote: the required field asked on create, edited in the editor, listed and filtered
    refused = await client.post("/sales/quotes", data={"csrf_token": csrf, "opportunity": str(deal["id"])})
    assert refused.status_code == 422 and await Quote.count() == 0
    created = await client.post("/sales/quotes", data={"csrf_token": csrf, "opportunity": str(deal["id"]),
                                                       "custom.po_number": "PO-7"})
    assert created.status_code == 303
    quote_url = created.headers["location"]
    editor = (await client.get(quote_url)).text
    assert 'name="custom.po_number"' in editor and 'value="PO-7"' in editor
    saved = await client.post(quote_url, data={"csrf_token": csrf, "language": "en", "custom.po_number": "PO-8",
                                               "description_0": "Consulting", "unit_price_0": "100"})
    assert saved.status_code == 303
    quotes = (await client.get("/sales/quotes", params={"cf_po_number": "PO-8"})).text
    assert "<th>PO number</th>" in quotes and 'data-custom-field="custom.po_number">PO-8<' in quotes
    assert "Consulting" not in quotes and "PO-8" in (await client.get(quote_url)).text
    assert (await client.get("/sales/quotes", params={"cf_po_number": "PO-7"})).text.count("/sales/quotes/") == 0
