"""Duplicates and merge: candidates on write, the scan, and merges re-pointing every addon's references."""

from __future__ import annotations

from typing import Any

PEOPLE = "/api/contacts/people"


async def _person(client: Any, h: dict[str, str], **values: Any) -> int:
    r = await client.post(PEOPLE, headers=h, json=values)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def test_duplicate_candidates_exact_and_fuzzy(api: Any) -> None:
    client, token_for = api
    h = await token_for("mgr", "sales_manager")
    a = await _person(client, h, name="Zhang Wei", phone="13800138000", region="深圳")
    b = await _person(client, h, name="张伟", phone="+86 138 0013 8000")
    c = await _person(client, h, name="Jonathan Smith", email="jon@acme.com", region="北京", birth_date="1990-04-09")
    d = await _person(client, h, name="Jonathon Smith", email="jsmith@acme.com", region="北京", birth_date="1990-04-09")
    await _person(client, h, name="Unrelated Person", email="x@y.com")
    found = (await client.post(f"{PEOPLE}/{a}/duplicates", headers=h)).json()["candidates"]
    assert [(x["id"], x["score"], x["reasons"]) for x in found] == [(b, 1.0, ["phone"])]
    fuzzy = (await client.post(f"{PEOPLE}/{c}/duplicates", headers=h)).json()["candidates"]
    assert [x["id"] for x in fuzzy] == [d] and 0.5 <= fuzzy[0]["score"] < 1.0


async def test_scan_stores_ranked_groups(booted: Any) -> None:
    from crm_contacts.cleaning import clean_person
    from crm_contacts.duplicates import scan_people
    from crm_contacts.models import DuplicateGroup, Person

    await booted("admin1", "admin")
    for values in ({"name": "Ann Lee", "email": "ann@example.com"}, {"name": "Ann  Lee", "email": "ANN@example.com"},
                   {"name": "Bo Chen", "phone": "13900139000"}, {"name": "Bo Chen", "phone": "139 0013 9000"},
                   {"name": "Bo Chen", "phone": "+8613900139000", "city": "上海"}, {"name": "Solo"}):
        clean = await clean_person(values)
        await Person.insert(Person(_data={Person._meta.get_column_by_name(k): v for k, v in clean.items()}))
    _, count = await scan_people()
    groups = await DuplicateGroup.select().order_by(DuplicateGroup.score, ascending=False).output(load_json=True)
    assert count == 2 == len(groups)
    assert sorted(len(g["record_ids"]) for g in groups) == [2, 3]
    assert all(g["status"] == "open" and g["score"] >= 500 for g in groups)
    _, again = await scan_people()
    assert again == 2 and await DuplicateGroup.count() == 2  # a rescan replaces open groups


async def test_merge_repoints_every_addon_and_archives_losers(api: Any) -> None:
    from crm_contacts.models import Channel, Merge, Person, PersonTag
    from crm_contacts_probe.models import Ticket

    from core.security.models import AuditLog
    from core.timeline.models import RecordFollower

    client, token_for = api
    h = await token_for("mgr", "sales_manager")
    survivor = await _person(client, h, name="Li Na", email="lina@example.com")
    loser1 = await _person(client, h, name="LI NA", phone="13800138000", job_title="CEO")
    loser2 = await _person(client, h, name="Li Na", email="li.na@corp.cn")
    for pid in (survivor, loser1, loser2):
        await client.post(f"{PEOPLE}/{pid}/tags", headers=h, json={"add": ["VIP"]})
    await Ticket.insert(Ticket(title="t1", person=loser1), Ticket(title="t2", person=loser2),
                        Ticket(title="t3", person=survivor))
    timeline = "/api/timeline/crm_contacts.person"
    for pid, body in ((loser2, "met at fair"), (survivor, "called back")):
        assert (await client.post(f"{timeline}/{pid}/notes", headers=h, json={"body": body})).status_code < 300
    h2 = await token_for("boss", "admin")  # a second follower, of a loser only
    assert (await client.put(f"{timeline}/{loser1}/follow", headers=h2)).status_code < 300
    r = await client.post(f"{PEOPLE}/{survivor}/merge", headers=h,
                          json={"loser_ids": [loser1, loser2], "choices": {"email": loser2}})
    assert r.status_code == 200, r.text
    assert r.json()["loser_ids"] == [loser1, loser2]
    assert {t["person"] for t in await Ticket.select(Ticket.person)} == {survivor}
    # the losers' timeline notes and followers are the survivor's now, each follower once
    feed = (await client.get(f"{timeline}/{survivor}", headers=h)).json()
    assert {"met at fair", "called back"} <= {e["body"] for e in feed["items"] if e["kind"] == "note"}
    followers = await RecordFollower.select(RecordFollower.user_id).where(
        (RecordFollower.model == "crm_contacts.person") & RecordFollower.record_id.is_in([survivor, loser1, loser2]))
    assert sorted(r["user_id"] for r in followers) == sorted({r["user_id"] for r in followers}) and len(followers) == 2
    assert await PersonTag.count().where(PersonTag.person == survivor) == 1  # one VIP, not three
    row = await Person.select().where(Person.id == survivor).first()
    assert (row["email"], row["phone"], row["job_title"]) == ("li.na@corp.cn", "+8613800138000", "CEO")
    channels = {c["value"] for c in await Channel.select().where(Channel.person == survivor)}
    assert channels == {"lina@example.com"}  # the email that lost is kept as a channel
    losers = await Person.select().where(Person.id.is_in([loser1, loser2]))
    assert all(p["is_archived"] and p["merged_into"] == survivor for p in losers)
    listed = [p["id"] for p in (await client.get(PEOPLE, headers=h)).json()["items"]]
    assert listed == [survivor]
    assert await Merge.count() == 1
    assert await AuditLog.count().where((AuditLog.action == "merge") & (AuditLog.record_id == str(survivor))) == 1
    from crm_contacts.api import get_contact

    assert (await get_contact(loser1)).id == survivor  # stale references resolve to the survivor
    again = await client.post(f"{PEOPLE}/{survivor}/merge", headers=h, json={"loser_ids": [loser1]})
    assert again.status_code == 422 and "loser_ids" in again.json()["error"]["fields"]


async def test_merge_needs_the_right_and_reach(api: Any) -> None:
    client, token_for = api
    rep = await token_for("rep", "sales_rep")
    other = await token_for("rep2", "sales_rep")
    a = await _person(client, rep, name="A One")
    b = await _person(client, rep, name="A One")
    c = await _person(client, other, name="A One")
    denied = await client.post(f"{PEOPLE}/{a}/merge", headers=rep, json={"loser_ids": [b]})
    assert denied.status_code == 403
    mgr = await token_for("mgr", "sales_manager")
    hidden = await client.post(f"{PEOPLE}/{a}/merge", headers=mgr, json={"loser_ids": [c]})
    assert hidden.status_code == 404  # a manager without a team reaches nobody else's records
    bad = await client.post(f"{PEOPLE}/{a}/merge", headers=mgr, json={"loser_ids": [a]})
    assert bad.status_code in (404, 422)


async def test_organization_merge_moves_members(api: Any) -> None:
    from crm_contacts.models import Person
    from crm_contacts_probe.models import Ticket

    client, token_for = api
    h = await token_for("boss", "admin")
    o1 = (await client.post("/api/contacts/organizations", headers=h, json={"name": "ACME", "tax_id": "X1"})).json()
    o2 = (await client.post("/api/contacts/organizations", headers=h, json={"name": "Acme Inc"})).json()
    p = await _person(client, h, name="Worker", organization=o2["id"])
    await Ticket.insert(Ticket(title="t", organization=o2["id"]))
    r = await client.post(f"/api/contacts/organizations/{o1['id']}/merge", headers=h, json={"loser_ids": [o2["id"]]})
    assert r.status_code == 200, r.text
    assert (await Person.select(Person.organization).where(Person.id == p).first())["organization"] == o1["id"]
    assert (await Ticket.select(Ticket.organization).first())["organization"] == o1["id"]
