"""The merge page in words (issue 12): records by name, organizations, owners and stages by name or label, never
"Organization 41"; an organization the user may not read is not named to them."""

from __future__ import annotations

import re
from typing import Any

from core.testing import login_client, make_user


async def test_merge_page_names_records_and_references(crm_client: Any, found: Any) -> None:
    from crm_contacts.models import Organization, Person

    client = await crm_client("crm_contacts", "crm_contacts_probe", found=found)
    mgr = await make_user("mgr", "sales_manager")
    other = await make_user("outsider", "sales_rep")
    await login_client(client, "mgr")
    mine = Organization(name="Acme Trading", owner=mgr, search_text="acme trading")
    theirs = Organization(name="Secret Holdings", owner=other, search_text="secret holdings")
    await mine.save()
    await theirs.save()
    a = Person(name="Wang Fang", owner=mgr, organization=mine.id, stage="customer", search_text="wang fang")
    b = Person(name="Fang Wang", owner=mgr, organization=theirs.id, stage="lead", search_text="fang wang")
    await a.save()
    await b.save()
    page = await client.get(f"/contacts/merge?ids={a.id},{b.id}")
    assert page.status_code == 200, page.text[:500]
    text = page.text
    assert f"Wang Fang <small class=\"muted\">#{a.id}</small>" in text and "Fang Wang" in text  # columns by name
    org_row = re.search(r'<tr data-field="organization">(.*?)</tr>', text, re.S)
    assert org_row is not None
    assert "Acme Trading" in org_row.group(1) and "(not visible to you)" in org_row.group(1)
    assert "Secret Holdings" not in text and f"> {mine.id}</label>" not in org_row.group(1)  # names, not ids
    owner_row = re.search(r'<tr data-field="owner">(.*?)</tr>', text, re.S)
    assert owner_row is not None and "Mgr" in owner_row.group(1)  # the owner's name (make_user: login titled)
    assert "Customer" in text  # the stage's label
