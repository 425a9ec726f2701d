"""The API list's SQL is built once per shape and reused (core.api._list_shape): every user still gets exactly
their rows, page after page, and a change to the data shows at once."""

from __future__ import annotations

from typing import Any

PEOPLE = "/api/contacts/people"


async def test_reused_list_sql_keeps_each_users_rows(api: Any) -> None:
    client, token_for = api
    rep1 = await token_for("shape1", "sales_rep")
    rep2 = await token_for("shape2", "sales_rep")
    admin = await token_for("shape_admin", "admin")
    mine = [(await client.post(PEOPLE, headers=rep1, json={"name": f"Mine {i}"})).json()["id"] for i in range(3)]
    theirs = (await client.post(PEOPLE, headers=rep2, json={"name": "Theirs"})).json()["id"]

    async def ids(headers: dict[str, str], query: str = "") -> list[int]:
        answer = await client.get(PEOPLE + query, headers=headers)
        assert answer.status_code == 200, answer.text
        return [p["id"] for p in answer.json()["items"]]

    for _ in range(2):  # the second call of each shape runs the SQL the first one built
        assert await ids(rep1) == mine
        assert await ids(rep2) == [theirs]
        assert await ids(admin) == [*mine, theirs]
    first = (await client.get(PEOPLE + "?limit=2", headers=rep1)).json()
    assert [p["id"] for p in first["items"]] == mine[:2] and first["next"]
    rest = (await client.get(PEOPLE + f"?limit=2&after={first['next']}", headers=rep1)).json()
    assert [p["id"] for p in rest["items"]] == mine[2:] and rest["next"] is None
    assert await ids(rep1, "?sort=-id") == mine[::-1]
    assert (await client.delete(f"{PEOPLE}/{mine[0]}", headers=admin)).status_code in (200, 204)
    assert await ids(rep1) == mine[1:]  # same SQL, rows read again
