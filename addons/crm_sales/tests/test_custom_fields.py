"""Custom fields on leads, opportunities and quotes (core.customfields): written and read through the sales API,
and offered as dimensions of the deals dataset."""

from __future__ import annotations

from typing import Any

from core.testing import csrf_of, login_client, make_user


async def test_leads_deals_and_quotes_take_custom_fields(crm_client: Any) -> None:
    from core import datasets
    from core.security.access import Access
    from core.security.principal import load

    client = await crm_client("crm_sales")
    root = await make_user("root", "admin")
    await login_client(client, "root")
    client.headers["X-CSRF-Token"] = csrf_of((await client.get("/")).text)
    for model, body in (("crm_sales.lead", {"key": "campaign_code", "kind": "text"}),
                        ("crm_sales.opportunity", {"key": "segment", "kind": "choice", "is_filterable": True,
                                                   "options": [{"key": "smb"}, {"key": "enterprise"}]}),
                        ("crm_sales.quote", {"key": "po_number", "kind": "text", "is_required": True})):
        r = await client.post("/api/admin/custom-fields", json={"model": model, "label_en": body["key"], **body})
        assert r.status_code == 201, r.text
    lead = await client.post("/api/sales/leads", json={"name": "Expo lead", "custom": {"campaign_code": "EXPO26"}})
    assert lead.status_code == 201 and lead.json()["custom"] == {"campaign_code": "EXPO26"}, lead.text
    deal = await client.post("/api/sales/opportunities", json={"name": "Big deal", "custom": {"segment": "smb"}})
    assert deal.status_code == 201 and deal.json()["custom"] == {"segment": "smb"}, deal.text
    wrong = await client.post("/api/sales/opportunities", json={"name": "X", "custom": {"segment": "gov"}})
    assert wrong.status_code == 422 and "custom.segment" in wrong.json()["error"]["fields"]
    found = (await client.get("/api/sales/opportunities?cf_segment=smb")).json()["items"]
    assert [d["name"] for d in found] == ["Big deal"]
    no_po = await client.post("/api/sales/quotes", json={"opportunity": deal.json()["id"]})
    assert no_po.status_code == 422 and no_po.json()["error"]["fields"] == {"custom.po_number": "is required"}
    quote = await client.post("/api/sales/quotes", json={"opportunity": deal.json()["id"],
                                                         "custom": {"po_number": "PO-1"}})
    assert quote.status_code == 201 and quote.json()["custom"] == {"po_number": "PO-1"}, quote.text
    access = Access(await load(root))
    rows = await datasets.aggregate(access, "crm_sales.opportunities", ["cf_segment"], ["count"])
    assert rows == [{"cf_segment": "smb", "count": 1}]
