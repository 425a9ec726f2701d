"""No input makes a 500 on the contacts API (issue 11 §2): merge ``choices`` and ``loser_ids`` of the wrong type
or size, ids past 64 bits, bodies that are not JSON objects — each a 422 naming the field, nothing merged."""

from __future__ import annotations

from typing import Any

PEOPLE = "/api/contacts/people"
HUGE = 2**63


def _refused(response: Any, field: str, status: int = 422) -> None:
    assert response.status_code == status, response.text
    assert field in response.json()["error"]["fields"], response.json()


async def test_merge_with_choices_and_losers_of_the_wrong_type(api: Any) -> None:
    from crm_contacts.models import Person

    client, token_for = api
    h = await token_for("admin", "admin")
    a = (await client.post(PEOPLE, headers=h, json={"name": "Wang Fang"})).json()["id"]
    b = (await client.post(PEOPLE, headers=h, json={"name": "Wang Fang"})).json()["id"]
    merge = f"{PEOPLE}/{a}/merge"
    for choice in ("x", [b], {"id": b}, HUGE, -1, True, 1.5, None):
        _refused(await client.post(merge, headers=h, json={"loser_ids": [b], "choices": {"name": choice}}),
                 "choices.name")
    for losers in ([HUGE], ["2"], [[b]], [None], [True], "2", {"b": b}):
        _refused(await client.post(merge, headers=h, json={"loser_ids": losers}), "loser_ids")
    _refused(await client.post(merge, headers=h, json={"loser_ids": [b], "choices": [b]}), "choices")
    _refused(await client.post(merge, headers=h, json={"loser_ids": [b], "choices": {"name": 999}}), "choices.name")
    _refused(await client.post(merge, headers=h, content=b"[1]", ), "body")
    _refused(await client.post(f"{PEOPLE}/{HUGE}/merge", headers=h, json={"loser_ids": [b]}), "id")
    assert await Person.count().where(Person.is_archived == True) == 0  # noqa: E712 - nothing merged
    done = await client.post(merge, headers=h, json={"loser_ids": [b], "choices": {"name": b}})
    assert done.status_code == 200, done.text


async def test_people_writes_and_filters_past_the_column(api: Any) -> None:
    client, token_for = api
    h = await token_for("admin", "admin")
    _refused(await client.post(PEOPLE, headers=h, json={"name": "A", "organization": HUGE}), "organization")
    _refused(await client.post(PEOPLE, headers=h, json={"name": "A", "owner": HUGE}), "owner")
    _refused(await client.get(f"{PEOPLE}?owner={HUGE}", headers=h), "owner")
    _refused(await client.get(f"{PEOPLE}?organization=-{HUGE}", headers=h), "organization")
    _refused(await client.post(PEOPLE, headers=h, json={"name": "A", "custom": {"k": "\x00"}}), "custom.k")
