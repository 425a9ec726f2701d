"""References and documents obey the record and field rules (docs/security.md):

- a reference written into a record (a deal's person, an activity's deal, a quote's deal) is checked like a
  read of the referenced record: out of reach is the same 422 naming the field as an id that does not exist;
- qualifying a lead matches an existing person only among those the user may read;
- the quote PDF shows the customer's details under the viewer's field rules (a masked phone stays masked).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from crm_sales import activities, documents, quotes
from sales_helpers import build_org, new_deal

from core.errors import ValidationError
from core.runtime import current
from core.security.sessions import create_token
from core.testing import login_client

LINES = [{"description": "Licence", "quantity": "1", "unit_price": "100"}]


def _text(pdf: bytes, tmp_path: Path, name: str = "q.pdf") -> str:
    path = tmp_path / name
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return "".join(out.split())


async def _customer_of_team_b(org: Any) -> int:
    """rep3's (team B) customer: a person at an organization, both owned by rep3."""
    from crm_contacts.api import find_or_create_person
    from crm_contacts.models import Organization

    company = Organization(name="Bravo Corp", owner=org.ids["rep3"], team=org.team_b)
    await company.save()
    ref, created = await find_or_create_person(name="Zhao Customer", email="zhao@example.com", phone="13900139000",
                                               organization_id=int(company.id), owner_id=org.ids["rep3"])
    assert created
    return ref.id


async def _api(crm_client: Any) -> tuple[Any, Any, dict[str, dict[str, str]]]:
    client = await crm_client("crm_sales")
    org = await build_org(current())
    headers = {}
    for login, role in (("rep1", "sales_rep"), ("rep3", "sales_rep")):
        headers[login] = {"Authorization": f"Bearer {await create_token(org.ids[login], 'test', roles=[role])}"}
    return client, org, headers


async def test_a_reference_out_of_reach_is_refused_like_a_missing_one(crm_client: Any) -> None:
    client, org, h = await _api(crm_client)
    theirs = await _customer_of_team_b(org)
    their_deal = await new_deal(await org.acc("rep3"), "Bravo deal")

    refused = await client.post("/api/sales/opportunities", headers=h["rep1"], json={"name": "Grab", "person": theirs})
    missing = await client.post("/api/sales/opportunities", headers=h["rep1"], json={"name": "Grab", "person": 987654})
    assert refused.status_code == missing.status_code == 422, refused.text
    assert list(refused.json()["error"]["fields"]) == ["person"]
    assert refused.json() == missing.json()  # the same body: ids leak nothing
    assert "Zhao" not in refused.text

    own = await client.post("/api/sales/opportunities", headers=h["rep1"], json={"name": "Mine"})
    assert own.status_code == 201, own.text
    patched = await client.patch(f"/api/sales/opportunities/{own.json()['id']}", headers=h["rep1"],
                                 json={"person": theirs, "version": own.json()["version"]})
    assert patched.status_code == 422 and list(patched.json()["error"]["fields"]) == ["person"]
    assert (await client.get(f"/api/sales/opportunities/{own.json()['id']}", headers=h["rep1"])).json()[
        "person"] is None

    due = "2030-01-01T09:00:00+00:00"
    for field, value in (("person", theirs), ("opportunity", their_deal)):
        act = await client.post("/api/sales/activities", headers=h["rep1"],
                                json={"subject": "Call", "due_at": due, field: value})
        gone = await client.post("/api/sales/activities", headers=h["rep1"],
                                 json={"subject": "Call", "due_at": due, field: 987654})
        assert act.status_code == 422 and list(act.json()["error"]["fields"]) == [field], act.text
        assert act.json() == gone.json()
    quote = await client.post("/api/sales/quotes", headers=h["rep1"], json={"opportunity": their_deal})
    assert quote.status_code == 422 and list(quote.json()["error"]["fields"]) == ["opportunity"], quote.text

    rep1 = await org.acc("rep1")  # the page forms go through the same services
    with pytest.raises(ValidationError) as form_activity:
        await activities.create_activity(rep1, {"subject": "Visit", "due_at": due, "person": str(theirs)})
    assert list(form_activity.value.fields) == ["person"]
    with pytest.raises(ValidationError) as form_quote:
        await quotes.create_quote(rep1, their_deal)
    assert list(form_quote.value.fields) == ["opportunity"]
    # the owner of the customer still links it
    ok = await client.post("/api/sales/opportunities", headers=h["rep3"], json={"name": "Theirs", "person": theirs})
    assert ok.status_code == 201, ok.text


async def test_qualifying_matches_only_people_the_user_may_read(org: Any, tmp_path: Path) -> None:
    from crm_contacts.models import Person
    from crm_sales.models import Opportunity

    theirs = await _customer_of_team_b(org)
    before = dict(await Person.select().where(Person.id == theirs).first() or {})
    rep1 = await org.acc("rep1")
    opp_id = await new_deal(rep1, "Servers", email="zhao@example.com", contact="Li Buyer")
    opp = await Opportunity.select().where(Opportunity.id == opp_id).first()
    assert opp is not None and opp["person"] not in (None, theirs)
    person = await Person.select().where(Person.id == opp["person"]).first()
    assert person is not None
    assert person["owner"] == org.ids["rep1"] and person["name"] == "Li Buyer" and not person["organization"]
    assert dict(await Person.select().where(Person.id == theirs).first() or {}) == before  # untouched

    quote_id = await quotes.create_quote(rep1, opp_id, LINES)
    for viewer in (rep1, None):
        text = _text(await documents.render_pdf(quote_id, viewer=viewer), tmp_path)
        assert "LiBuyer" in text
        assert "Zhao" not in text and "Bravo" not in text and "13900139000" not in text


async def test_quote_pdf_masks_the_phone_for_a_role_that_sees_it_masked(crm_client: Any, tmp_path: Path) -> None:
    client = await crm_client("crm_sales")
    org = await build_org(current())
    rep1 = await org.acc("rep1")
    opp_id = await new_deal(rep1, "Servers", contact="Wang Buyer", phone="13800138000")
    quote_id = await quotes.create_quote(rep1, opp_id, LINES)

    await login_client(client, "fin")  # finance reads quotes and customers, phones masked
    page = await client.get(f"/sales/quotes/{quote_id}/pdf")
    assert page.status_code == 200 and page.headers["content-type"] == "application/pdf"
    text = _text(page.content, tmp_path, "fin.pdf")
    assert "WangBuyer" in text and "138****8000" in text and "13800138000" not in text

    assert "+8613800138000" in _text(await documents.render_pdf(quote_id, viewer=rep1), tmp_path, "rep.pdf")
    # the customer's own copy (link, e-mail) shows their own number
    assert "+8613800138000" in _text(await documents.render_pdf(quote_id), tmp_path, "customer.pdf")
