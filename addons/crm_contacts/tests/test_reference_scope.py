"""A reference written into a record is checked like a read of the referenced record (docs/security.md):
a person linked to an organization its writer may not read is refused like one linked to nothing."""

from __future__ import annotations

from typing import Any

from crm_contacts.importing import Importer, auto_mapping
from crm_contacts.tabular import read_table

PEOPLE = "/api/contacts/people"
ORGS = "/api/contacts/organizations"


async def test_person_linked_to_an_organization_out_of_reach_is_a_422_like_a_missing_one(api: Any) -> None:
    client, token_for = api
    mine, theirs = await token_for("rep_a", "sales_rep"), await token_for("rep_b", "sales_rep")
    other_org = (await client.post(ORGS, headers=theirs, json={"name": "Theirs Ltd"})).json()["id"]
    own_org = (await client.post(ORGS, headers=mine, json={"name": "Mine Ltd"})).json()["id"]

    refused = await client.post(PEOPLE, headers=mine, json={"name": "Li Lei", "organization": other_org})
    missing = await client.post(PEOPLE, headers=mine, json={"name": "Li Lei", "organization": 987654})
    assert refused.status_code == missing.status_code == 422, refused.text
    assert list(refused.json()["error"]["fields"]) == ["organization"]
    assert refused.json() == missing.json()  # the same answer: ids leak nothing
    assert "Theirs" not in refused.text

    person = await client.post(PEOPLE, headers=mine, json={"name": "Li Lei", "organization": own_org})
    assert person.status_code == 201, person.text
    patched = await client.patch(f"{PEOPLE}/{person.json()['id']}", headers=mine,
                                 json={"organization": other_org, "version": person.json()["version"]})
    assert patched.status_code == 422 and list(patched.json()["error"]["fields"]) == ["organization"]
    again = (await client.get(f"{PEOPLE}/{person.json()['id']}", headers=mine)).json()
    assert again["organization"] == own_org and again["version"] == person.json()["version"]


async def test_import_links_only_organizations_the_importer_may_read(booted: Any) -> None:
    from crm_contacts.cleaning import clean_organization
    from crm_contacts.models import Organization, Person

    as_user = booted
    other = await as_user("rep_b", "sales_rep")
    theirs = Organization(**await clean_organization({"name": "Theirs Ltd"}), owner=other.principal.user_id)
    await theirs.save()
    mine = await as_user("rep_a", "sales_rep")
    header, rows = read_table(b"name,company\nLi Lei,Theirs Ltd\n", "f.csv")
    [result] = await Importer(mine, header, rows, auto_mapping(header)).run()
    assert result.action == "created", result
    person = await Person.select().where(Person.id == result.record_id).first()
    assert person["organization"] not in (None, theirs.id)  # a new organization of the importer's own
    made = await Organization.select().where(Organization.id == person["organization"]).first()
    assert made["owner"] == mine.principal.user_id and made["name"] == "Theirs Ltd"
