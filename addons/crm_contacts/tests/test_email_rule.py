"""One e-mail rule for people and organizations (docs/contacts.md "E-mail addresses"): the domain lower-cased, the
local part as entered; the duplicate key all lower-case, so duplicates are found whatever the case."""

from __future__ import annotations

from typing import Any

from crm_contacts.standardize import email_key, normalize_email

TYPED = " Ann.Lee@EXAMPLE.Com "
STORED = "Ann.Lee@example.com"
KEY = "ann.lee@example.com"


def test_the_rule() -> None:
    assert normalize_email(TYPED) == STORED
    assert email_key(TYPED) == email_key("ＡＮＮ．ＬＥＥ＠example.com") == KEY  # full width folded too


async def test_people_and_organizations_follow_it_and_match_on_it(api: Any) -> None:
    from crm_contacts.duplicates import organization_candidates, person_candidates
    from crm_contacts.models import Organization, Person

    client, token_for = api
    h = await token_for("admin1", "admin")
    for path in ("/api/contacts/people", "/api/contacts/organizations"):
        r = await client.post(path, headers=h, json={"name": "Ann Lee", "email": TYPED})
        assert r.status_code == 201, r.text
        assert r.json()["email"] == STORED, path
    for table in (Person, Organization):
        row = await table.select(table.email, table.email_key).first()
        assert (row["email"], row["email_key"]) == (STORED, KEY)
    # another record typed in another case is the same address to duplicate detection, for both models
    person = await person_candidates({"name": "Someone Else", "email_key": email_key("ANN.LEE@example.COM")})
    org = await organization_candidates({"name": "Other Ltd", "email_key": email_key("ann.lee@Example.com")})
    assert [c.reasons for c in person] == [("email",)] and [c.reasons for c in org] == [("email",)]
    # and through the API's duplicate check of a new person (the form and the import clean the same way)
    dup = await client.post("/api/contacts/people", headers=h, json={"name": "Bo Chen",
                                                                     "email": "ANN.LEE@example.com"})
    assert dup.status_code == 201 and dup.json()["email"] == "ANN.LEE@example.com"
    found = await client.post(f"/api/contacts/people/{dup.json()['id']}/duplicates", headers=h)
    assert found.status_code == 200, found.text
    assert any("email" in c["reasons"] for c in found.json()["candidates"]), found.json()
