"""The per-process principal cache (core.security.principal.Cache) and the writes a read no longer makes.

Two apps on one database, each with its own security middleware and so its own cache, stand for two worker
processes: a change made through one (or straight in the database) is seen by the other at its next request —
well within the second the issue allows — because the security generation is read with every token/session.
"""

from __future__ import annotations

import datetime as dt
import time

import httpx
from security_helpers import sign_in


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def _second_app(client: httpx.AsyncClient) -> httpx.AsyncClient:
    from core.app import create_app

    runtime = client._transport.app.state.runtime  # type: ignore[attr-defined]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(runtime=runtime, run_jobs=False)),
                             base_url="http://testserver")


def _counting(monkeypatch) -> list[int]:
    from core.security import principal

    calls: list[int] = []
    original = principal._load

    async def spy(user_id: int, **kw):
        calls.append(user_id)
        return await original(user_id, **kw)

    monkeypatch.setattr(principal, "_load", spy)
    return calls


async def test_revoked_token_and_removed_role_stop_at_once_on_the_other_app(world_client, monkeypatch) -> None:
    from core.security import sessions, users
    from core.security.models import ApiToken, UserRole

    client, world = world_client
    mia = world.users["mia"]
    secret = await sessions.create_token(mia, "sync", roles=["tb_user", "tb_manager"])
    loads = _counting(monkeypatch)
    async with _second_app(client) as other:
        for app in (client, other):  # both caches warm
            assert (await app.get("/api/testbase/notes", headers=_bearer(secret))).status_code == 200
        assert (await other.get("/api/testbase/notes", headers=_bearer(secret))).status_code == 200
        assert len(loads) == 2  # once per app: the third request was served from the cache
        # a role removed through the kernel on one app: 403 on the other within a second
        await users.set_roles(mia, ["st_lead"])
        started = time.monotonic()
        assert (await other.get("/api/testbase/notes", headers=_bearer(secret))).status_code == 403
        assert time.monotonic() - started < 1
        await users.set_roles(mia, ["tb_manager"])
        assert (await other.get("/api/testbase/notes", headers=_bearer(secret))).status_code == 200
        # ... and straight in the database (a trigger bumps the generation in the same transaction)
        await UserRole.delete().where(UserRole.user == mia)
        assert (await other.get("/api/testbase/notes", headers=_bearer(secret))).status_code == 403
        await UserRole.insert(UserRole(user=mia, role="tb_manager"))
        assert (await client.get("/api/testbase/notes", headers=_bearer(secret))).status_code == 200
        assert (await other.get("/api/testbase/notes", headers=_bearer(secret))).status_code == 200
        # a revoked token: 401 on both at once
        row = await ApiToken.select(ApiToken.id).where(ApiToken.user == mia).first()
        assert await sessions.revoke_token(row["id"], mia)
        for app in (other, client):
            refused = await app.get("/api/testbase/notes", headers=_bearer(secret))
            assert refused.status_code == 401, refused.text


async def test_team_change_and_deactivation_reach_the_other_apps_cached_session(world_client) -> None:
    from core.security import users
    from core.security.models import User

    client, world = world_client
    n = world.notes
    await sign_in(client, "mia")
    async with _second_app(client) as other:
        other.cookies.update(client.cookies)
        before = {i["id"] for i in (await other.get("/api/testbase/notes")).json()["items"]}
        assert n["dan1"] not in before
        # a team led by mia with dan in it, made on one app, widens her team scope on the other at once
        await users.create_team("T9", leader=world.users["mia"], members=[world.users["dan"]])
        after = {i["id"] for i in (await other.get("/api/testbase/notes")).json()["items"]}
        assert n["dan1"] in after
        await User.update({User.is_active: False}).where(User.id == world.users["mia"])
        assert (await other.get("/api/testbase/notes")).status_code == 401


async def test_last_used_at_and_idle_timer_are_written_at_most_once_a_minute(world_client) -> None:
    from core.security import sessions
    from core.security.models import ApiToken, Session

    client, world = world_client
    secret = await sessions.create_token(world.users["amy"], "sync", roles=["tb_user"])
    assert (await client.get("/api/testbase/notes", headers=_bearer(secret))).status_code == 200
    first = (await ApiToken.select(ApiToken.last_used_at).first())["last_used_at"]
    assert first is not None
    for _ in range(3):
        assert (await client.get("/api/testbase/notes", headers=_bearer(secret))).status_code == 200
    assert (await ApiToken.select(ApiToken.last_used_at).first())["last_used_at"] == first
    # a minute later (moved back in the database, and past this process's memory of the write) it is written
    sessions._touched.clear()
    old = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=sessions.TOUCH_SECONDS + 5)
    await ApiToken.update({ApiToken.last_used_at: old}).where(ApiToken.user == world.users["amy"])
    assert (await client.get("/api/testbase/notes", headers=_bearer(secret))).status_code == 200
    assert (await ApiToken.select(ApiToken.last_used_at).first())["last_used_at"] > old + dt.timedelta(seconds=30)

    # sessions: the idle timer is not touched by every request either
    await sign_in(client, "amy")
    seen = (await Session.select(Session.last_seen_at).order_by(Session.id, ascending=False).first())["last_seen_at"]
    for _ in range(3):
        assert (await client.get("/api/testbase/notes")).status_code == 200
    again = (await Session.select(Session.last_seen_at).order_by(Session.id, ascending=False).first())
    assert again["last_seen_at"] == seen
