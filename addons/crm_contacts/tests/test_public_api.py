"""crm_contacts.api as other addons use it: addresses, and links to a contact only where the viewer may go."""

from __future__ import annotations

from typing import Any

import pytest

from core.errors import ValidationError


async def test_add_address_feeds_get_contact_and_refuses_a_bad_country(booted: Any) -> None:
    from crm_contacts.api import add_address, find_or_create_person, get_contact

    ref, _ = await find_or_create_person(name="王伟", email="wang@example.org")
    await add_address(ref.id, line1="9 Side St", city="Beijing", country="cn")
    await add_address(ref.id, line1="1 Century Ave", city="Shanghai", postcode="200120", country="CN", primary=True)
    assert (await get_contact(ref.id)).address_lines == ("1 Century Ave", "200120 Shanghai", "CN")
    with pytest.raises(ValidationError) as bad:
        await add_address(ref.id, line1="x", city="y", country="China")
    assert "country" in bad.value.fields


async def test_contact_url_only_for_records_the_viewer_may_read(booted: Any) -> None:
    from crm_contacts.api import ORGANIZATION_MODEL, PERSON_MODEL, contact_url, find_or_create_person

    owner = await booted("rep_a", "sales_rep")
    ref, _ = await find_or_create_person(name="Zhao Min", email="zhao@example.org",
                                         owner_id=owner.principal.user_id if owner.principal else None)
    assert await contact_url(owner, PERSON_MODEL, ref.id) == f"/contacts/people/{ref.id}"
    other = await booted("rep_b", "sales_rep")  # reps see their own book only
    assert await contact_url(other, PERSON_MODEL, ref.id) is None
    service = await booted("agent", "service_agent")
    assert await contact_url(service, PERSON_MODEL, ref.id) == f"/contacts/people/{ref.id}"
    assert await contact_url(service, ORGANIZATION_MODEL, 999) is None  # no such record
    assert await contact_url(service, "crm_sales.order", ref.id) is None  # not a contact model
