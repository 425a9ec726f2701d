"""Record timelines (core.timeline) on the test addons' notes, on SQLite and PostgreSQL: the page shows notes,
changes in words through the reader's field rules and the addons' entries; notes mention only people who may
read the record; followers hear of notes and changes in their language, masked fields masked."""

from __future__ import annotations

import re
from typing import Any

from core import db, i18n, jobs, outbox
from core.discovery import Discovered
from core.models import Notification, Outbox
from core.security import audit, principal
from core.security.access import policy
from core.security.models import AuditLog
from core.testing import csrf_of, login_client, make_user
from core.timeline.models import RecordFollower, RecordNote

NOTE = "crm_testbase.note"


async def _note(title: str, owner: int, phone: str = "") -> int:
    from crm_testbase.models import Note

    return int((await Note.insert(Note(title=title, owner=owner, phone=phone)).returning(Note.id))[0]["id"])


async def _post(client: Any, url: str, page: str, **data: Any) -> Any:
    return await client.post(url, data={"csrf_token": csrf_of(page), **data})


async def test_notes_mentions_and_changes_in_words_for_who_may_see_them(crm_client: Any, found: Discovered) -> None:
    client = await crm_client("crm_testext", found=found)
    root = await make_user("root", "admin")
    cat = await make_user("cat", "tb_user")
    dan = await make_user("dan", "tb_user")
    note = await _note("Roadmap", cat, phone="13812345678")
    root_who = await principal.load(root, implied=policy().implied)
    await audit.record(
        "update",
        model=NOTE,
        record_id=note,
        principal=root_who,
        changes={
            "title": ["Roadmap", "Roadmap 2027"],
            "phone": ["13812345678", "13987654321"],
            "internal": ["old secret", "new secret"],
            "owner": [root, cat],
            "is_archived": [True, False],
        },
    )
    await login_client(client, "cat")
    page = (await client.get(f"/notes/{note}")).text
    changes = re.findall(r'<li data-field="([^"]+)">([^<]*)</li>', page)
    assert ("title", "Title: Roadmap → Roadmap 2027") in changes
    assert ("owner", "Owner: Root → Cat") in changes  # a user by name, not an id
    assert ("is_archived", "Is archived: Yes → No") in changes
    phone = next(text for field, text in changes if field == "phone")
    assert "13987654321" not in page and "13812345678" not in page and "4321" in phone  # masked for tb_user
    assert "internal" not in dict(changes) and "secret" not in page  # hidden for tb_user
    assert "Seen: Roadmap" in page  # an addon's entry (crm_timeline_entries)

    # a mention of someone who may not read the note is refused whole, naming them
    refused = await _post(
        client, "/timeline/notes", page, model=NOTE, record_id=note, next=f"/notes/{note}", body="@dan please look"
    )
    assert refused.status_code == 422 and "@dan may not read this record" in refused.text
    refused = await _post(client, "/timeline/notes", page, model=NOTE, record_id=note, body="hi @nobody")
    assert refused.status_code == 422 and "nobody signs in as @nobody" in refused.text
    assert await RecordNote.count() == 0
    done = await _post(
        client,
        "/timeline/notes",
        page,
        model=NOTE,
        record_id=note,
        next=f"/notes/{note}",
        body="Call them on Monday, @root. Mail x@root.cn",
    )
    assert done.status_code == 303 and done.headers["location"] == f"/notes/{note}#timeline"
    told = await Notification.select().where(Notification.user_id == root)
    assert [(n["title"], n["url"]) for n in told] == [("Cat mentioned you on Notes Roadmap", f"/notes/{note}")]
    page = (await client.get(f"/notes/{note}")).text
    assert "Call them on Monday, @root." in page and 'data-follow="on"' in page  # the author follows it now

    # another reader: dan may not even open it, nor write or follow on it
    client.cookies.clear()
    await login_client(client, "dan")
    own = await _note("Dan's", await make_user("eve", "tb_user"))
    home = (await client.get("/")).text
    assert (await _post(client, "/timeline/notes", home, model=NOTE, record_id=note, body="x")).status_code == 404
    assert (await _post(client, "/timeline/follow", home, model=NOTE, record_id=note)).status_code == 404
    assert (await _post(client, "/timeline/follow", home, model="core.nothing", record_id=own)).status_code == 404
    assert await RecordFollower.count().where(RecordFollower.user_id != cat) == 0

    # the JSON API, with tokens: the same words, the same rules
    from core.security.sessions import create_token

    client.cookies.clear()
    api = f"/api/timeline/{NOTE}/{note}"
    as_cat = {"Authorization": f"Bearer {await create_token(cat, 'api', roles=['tb_user'])}"}
    read = (await client.get(api, headers=as_cat)).json()
    assert read["following"] is True and read["items"][0]["kind"] == "note"
    lines = {c["field"]: c for item in read["items"] for c in item["changes"]}
    assert lines["title"]["new"] == "Roadmap 2027" and "internal" not in lines
    assert "4321" in lines["phone"]["new"] and "13987654321" not in str(read)
    refused = await client.post(f"{api}/notes", headers=as_cat, json={"body": "@dan see this"})
    assert refused.status_code == 422 and "@dan may not read this record" in refused.text
    assert (await client.post(f"{api}/notes", headers=as_cat, json={"body": "by API"})).status_code == 201
    assert (await client.delete(f"{api}/follow", headers=as_cat)).json() == {"following": False}
    assert (await client.put(f"{api}/follow", headers=as_cat)).json() == {"following": True}
    as_dan = {"Authorization": f"Bearer {await create_token(dan, 'api', roles=['tb_user'])}"}
    assert (await client.get(api, headers=as_dan)).status_code == 404
    assert (await client.put(f"{api}/follow", headers=as_dan)).status_code == 404


async def _run(actor: str) -> None:
    for job in await Outbox.select(Outbox.id).where((Outbox.actor == actor) & (Outbox.state == "pending")):
        await outbox.run_job(jobs.spec(actor), job["id"])


async def test_followers_hear_of_changes_in_their_language_through_their_field_rules(
    crm_client: Any, found: Discovered
) -> None:
    client = await crm_client("crm_testext", found=found)
    root = await make_user("root", "admin")
    cat = await make_user("cat", "tb_user", language="zh_CN")
    note = await _note("Roadmap", cat, phone="13812345678")
    await login_client(client, "cat")
    page = (await client.get(f"/notes/{note}")).text
    followed = await _post(client, "/timeline/follow", page, model=NOTE, record_id=note, next=f"/notes/{note}")
    assert followed.status_code == 303 and await RecordFollower.count() == 1
    assert await AuditLog.count().where((AuditLog.action == "follow") & (AuditLog.user_id == cat)) == 1
    root_who = await principal.load(root, implied=policy().implied)
    async with db.atomic():
        await audit.record(
            "update",
            model=NOTE,
            record_id=note,
            principal=root_who,
            changes={"title": ["Roadmap", "Plan"], "phone": ["13812345678", "13987654321"], "internal": ["a", "b"]},
        )
        await audit.record(
            "update", model=NOTE, record_id=note, principal=root_who, changes={"internal": ["b", "c"]}
        )  # nothing cat may see: nothing to tell
    import datetime as dt
    from decimal import Decimal

    # a bulk writer's rows (non-JSON values too) reach followers with one lookup; nothing cat may see here
    await audit.record_many(
        "import", model=NOTE, changes={note: {"internal": [Decimal("1.5"), dt.date(2026, 1, 2)]}}, principal=root_who
    )
    assert await Outbox.count().where(Outbox.actor == "core.timeline_changed") == 3
    await _run("core.timeline_changed")
    await _run("core.timeline_changed")  # a retry tells nobody twice
    told = list(await Notification.select().where(Notification.user_id == cat))
    assert len(told) == 1
    assert (
        told[0]["title"] == f"Root {i18n.in_language('zh_CN', 'Changed')}：{i18n.in_language('zh_CN', 'Notes')} Roadmap"
    )
    body = told[0]["body"]
    assert "Plan" in body and "13987654321" not in body and "4321" in body and "Internal" not in body
    assert told[0]["url"] == f"/notes/{note}"
    assert await Notification.count().where(Notification.user_id == root) == 0  # the author of the change

    # a note by someone else reaches the follower, in her language
    from core.security.access import Access
    from core.timeline import notes

    await notes.add_note(Access(root_who), NOTE, note, "Budget approved", url=f"/notes/{note}")
    latest = (
        await Notification.select()
        .where(Notification.user_id == cat)
        .order_by(Notification.id, ascending=False)
        .first()
    )
    assert latest["body"] == "Budget approved" and latest["title"] == i18n.in_language(
        "zh_CN", "%(author)s wrote a note on %(record)s"
    ) % {"author": "Root", "record": f"{i18n.in_language('zh_CN', 'Notes')} Roadmap"}

    # stop following: the next change tells her nothing (root, who wrote the note, follows now: not of his own)
    page = (await client.get(f"/notes/{note}")).text
    assert 'data-follow="on"' in page
    await _post(client, "/timeline/follow", page, model=NOTE, record_id=note, follow="0")
    before = await Notification.count()
    await audit.record("update", model=NOTE, record_id=note, principal=root_who, changes={"title": ["Plan", "X"]})
    await _run("core.timeline_changed")
    assert await Notification.count() == before
