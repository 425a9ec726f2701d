"""Free-text and JSON fields have size limits (the kernel's core.limits, applied by Access.check_write to every
write): past one, a 422 naming the field — never a 500 from the database, never a megabyte stored."""

from __future__ import annotations

from typing import Any

from core.security.sessions import create_token


async def _api(crm_client: Any) -> tuple[Any, dict[str, str]]:
    from sales_helpers import build_org

    from core.runtime import current

    client = await crm_client("crm_sales")
    org = await build_org(current())
    secret = await create_token(org.ids["rep1"], "test", roles=["sales_rep", "contacts_user"])
    return client, {"Authorization": f"Bearer {secret}"}


def _refused(response: Any, field: str, limit: str) -> bool:
    body = response.json()
    return response.status_code == 422 and body["error"]["fields"].get(field, "").endswith(limit)


async def test_text_and_json_fields_past_their_limit_are_422_naming_the_field(crm_client: Any) -> None:
    from crm_sales.models import Lead, Opportunity

    client, auth = await _api(crm_client)
    lead = {"name": "Website lead", "utm_source": "x" * 5000}  # a Varchar(100)
    assert _refused(await client.post("/api/sales/leads", json=lead, headers=auth), "utm_source",
                    "longer than 100 characters")
    assert await Lead.count() == 0
    created = await client.post("/api/sales/leads", json={**lead, "utm_source": "newsletter"}, headers=auth)
    assert created.status_code == 201, created.text
    opp_id = (await client.post(f"/api/sales/leads/{created.json()['id']}/qualify", headers=auth)).json()[
        "opportunity_id"]
    opp = (await client.get(f"/api/sales/opportunities/{opp_id}", headers=auth)).json()
    for body, field, limit in (({"products_of_interest": "p" * 301}, "products_of_interest", "300 characters"),
                               ({"tags": ["t" * 1000] * 70}, "tags", "larger than 64 KB")):
        patch = await client.patch(f"/api/sales/opportunities/{opp_id}", json={**body, "version": opp["version"]},
                                   headers=auth)
        assert _refused(patch, field, limit), patch.text[:300]
    assert (await Opportunity.select(Opportunity.products_of_interest).first())["products_of_interest"] == ""
    quote = {"opportunity": opp_id, "notes": "n" * 20_001,
             "lines": [{"description": "Licence", "quantity": "1", "unit_price": "10"}]}
    assert _refused(await client.post("/api/sales/quotes", json=quote, headers=auth), "notes",
                    "longer than 20000 characters")
    ok = await client.post("/api/sales/quotes", json={**quote, "notes": "n" * 20_000}, headers=auth)
    assert ok.status_code == 201, ok.text[:300]


async def test_custom_fields_have_a_size_limit(crm_client: Any) -> None:
    from core.customfields import admin
    from core.security.principal import load
    from core.testing import make_user

    client, auth = await _api(crm_client)
    big = {"name": "Ann Lee", "custom": {f"field{i}": "v" * 1000 for i in range(70)}}
    assert _refused(await client.post("/api/contacts/people", json=big, headers=auth), "custom", "larger than 64 KB")
    root = await load(await make_user("root", "admin"))
    await admin.create(root, {"model": "crm_contacts.person", "key": "size", "kind": "text", "label_en": "Size"})
    small = await client.post("/api/contacts/people", json={"name": "Ann Lee", "custom": {"size": "L"}}, headers=auth)
    assert small.status_code == 201, small.text[:300]


async def test_the_rule_reads_the_column(crm_boot: Any) -> None:
    import pytest
    from crm_sales.models import Lead

    from core import limits
    from core.errors import ValidationError

    await crm_boot("crm_sales")
    assert limits.table_for("crm_sales.lead") is Lead and limits.table_for("crm_sales.nothing") is None
    limits.check({"utm_source": "x" * 100, "name": "n" * 200, "expected_revenue": 10**30}, Lead)
    with pytest.raises(ValidationError) as err:
        limits.check({"utm_source": "x" * 101, "unknown_text": "y" * 20_001, "lines": [{"d": "z" * 2**20}]}, Lead)
    assert set(err.value.fields) == {"utm_source", "unknown_text", "lines"}
