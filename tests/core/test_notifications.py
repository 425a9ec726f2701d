"""The notification center: stored per user, idempotent, a bell with the unread count, read by its owner only;
background work that fails for good tells the user who asked for it and the admins."""

from __future__ import annotations

import asyncio
import time

import pytest

from core import jobs, notifications
from core.discovery import Discovered
from core.hooks import Notification
from core.security import context
from core.testing import csrf_of, login_client, make_user


async def test_notify_stores_once_per_key_and_the_bell_counts(crm_client, found: Discovered) -> None:
    client = await crm_client("crm_testbase", found=found)
    amy = await make_user("amy", "tb_user")
    ben = await make_user("ben", "tb_user")
    note = Notification(user_id=amy, title="Quote Q-7 accepted", url="/notes/")
    assert await notifications.notify(note, dedup_key="q7") == []
    await notifications.notify(note, dedup_key="q7")
    await notifications.notify(Notification(user_id=amy, title="Import finished"))
    assert await notifications.unread_count(amy) == 2 and await notifications.unread_count(ben) == 0
    await login_client(client, "amy")
    home = await client.get("/")
    assert 'data-bell' in home.text and '<span class="badge">2</span>' in home.text
    page = await client.get("/notifications")
    assert "Quote Q-7 accepted" in page.text and "Import finished" in page.text
    first = (await notifications.recent(amy))[-1]
    opened = await client.post("/notifications/read", data={"csrf_token": csrf_of(page.text), "id": str(first["id"]),
                                                            "next": "/notes/"})
    assert opened.status_code == 303 and opened.headers["location"] == "/notes/"
    assert await notifications.unread_count(amy) == 1
    api = (await client.get("/api/notifications", params={"unread": "1"})).json()
    assert api["unread"] == 1 and [i["title"] for i in api["items"]] == ["Import finished"]
    bad = await client.post("/notifications/read", data={"csrf_token": csrf_of(page.text), "id": "9" * 30})
    assert bad.status_code == 422
    # ben cannot mark amy's notifications
    client.cookies.clear()
    await login_client(client, "ben")
    page = await client.get("/notifications")
    await client.post("/notifications/read", data={"csrf_token": csrf_of(page.text)})
    assert await notifications.unread_count(amy) == 1
    client.cookies.clear()
    assert (await client.get("/api/notifications")).status_code == 401


@pytest.fixture
async def inprocess_worker(crm_boot, found: Discovered):
    runtime = await crm_boot("crm_testext", found=found)
    w = jobs.start_worker(2)
    yield runtime
    w.stop()


async def _until(predicate, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def test_failed_background_work_tells_who_asked_and_the_admins(inprocess_worker) -> None:
    from core.security import principal
    from core.security.access import policy

    clerk = await make_user("clerk", "tb_user")
    boss = await make_user("boss", "admin")
    context.set_context(context.RequestContext(principal=await principal.load(clerk, implied=policy().implied)))
    try:
        await jobs.enqueue("crm_testbase.doomed")
    finally:
        context.set_context(context.RequestContext())

    async def told() -> bool:
        return await notifications.unread_count(clerk) == 1 and await notifications.unread_count(boss) == 1

    await _until(told)
    (mine,) = await notifications.recent(clerk)
    assert "crm_testbase.doomed" in mine["title"] and "the ERP says no" in mine["body"] and mine["kind"] == "error"
    (admins,) = await notifications.recent(boss)
    assert admins["url"] == "/admin/jobs"
