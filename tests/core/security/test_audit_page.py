"""The audit log page (issue 12): keyset pages both ways, filters (who, model, action, date range) with bad values
named, each change in words (field label, old → new, a reference by its record's name), cards at phone width."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from core.testing import login_client, make_user


def _ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'class="entry" data-action="\w+" data-id="(\d+)"', html)]


def _link(html: str, rel: str) -> str | None:
    found = re.search(rf'<a rel="{rel}" href="([^"]+)"', html)
    return found.group(1).replace("&amp;", "&") if found else None


async def test_audit_page_pages_filters_and_words(crm_client: Any) -> None:
    from core.security import audit
    from core.security.principal import load

    client = await crm_client()
    root = await make_user("root", "admin")
    lee = await make_user("lee", "admin")
    await make_user("aud", "auditor")
    who = await load(root)
    await audit.record_many("update", model="core.team", principal=who, changes={
        i: {"name": [f"Red {i}", f"Blue {i}"], "leader": [None, lee]} for i in range(60)})
    await audit.record("delete", model="core.user", record_id=5, principal=who)
    await audit.record("update", model="core.user", record_id=lee, principal=who,
                       changes={"login": ["lee", "lee_2"], "roles": [["auditor"], ["admin", "auditor"]],
                                "language": ["en", "zh_CN"]})
    await login_client(client, "root")

    first = await client.get("/admin/audit", params={"model": "core.team"})
    assert first.status_code == 200
    ids = _ids(first.text)
    assert len(ids) == 50 and ids == sorted(ids, reverse=True) and _link(first.text, "prev") is None
    # in words: the field's label, the old and the new value, the leader by name (not the user id)
    assert 'Name</span>: <span class="old">Red 59</span> → <span class="new">Blue 59</span>' in first.text
    assert 'Leader</span>: <span class="old">—</span> → <span class="new">Lee</span>' in first.text
    older_url = _link(first.text, "next")
    assert older_url is not None and "model=core.team" in older_url
    older = await client.get("/admin/audit" + older_url)
    assert len(_ids(older.text)) == 10 and max(_ids(older.text)) < min(ids) and _link(older.text, "next") is None
    newer_url = _link(older.text, "prev")
    assert newer_url is not None
    assert _ids((await client.get("/admin/audit" + newer_url)).text) == ids  # back to the same page

    user = (await client.get("/admin/audit", params={"model": "core.user", "record": str(lee)})).text
    assert 'Roles</span>: <span class="old">Auditor</span> → <span class="new">Administrator, Auditor</span>' in user
    assert '<span class="new" translate="no">lee_2</span>' in user  # a login: an identifier, not words
    assert '<span class="old" translate="no">English</span> → <span class="new" translate="no">简体中文</span>' in user
    deleted = await client.get("/admin/audit", params={"action": "delete"})
    assert len(_ids(deleted.text)) == 1 and "Deleted" in deleted.text
    assert _ids((await client.get("/admin/audit", params={"user": "aud", "model": "core.team"})).text) == []
    tomorrow = (dt.date.today() + dt.timedelta(days=2)).isoformat()
    assert _ids((await client.get("/admin/audit", params={"since": tomorrow})).text) == []
    assert len(_ids((await client.get("/admin/audit", params={"until": tomorrow, "action": "delete"})).text)) == 1
    backwards = await client.get("/admin/audit", params={"since": tomorrow, "until": "2020-01-01"})
    assert backwards.status_code == 422 and "must not be before the start date" in backwards.text

    # the auditor reads it too; every cell carries its label, so a phone shows labelled cards (crm.css)
    await login_client(client, "aud")
    page = await client.get("/admin/audit", params={"model": "core.team", "record": "59"})
    assert page.status_code == 200 and len(_ids(page.text)) == 1
    row = page.text.split('class="entry"')[1].split("</tr>")[0]
    assert row.count("<td") == row.count("data-label=") == 7
    assert '/static/core/audit.css' in page.text
