"""API tokens (scope, expiry, shown once, hashed, revocable, Bearer) and the admin pages (users, roles, teams)."""

from __future__ import annotations

import datetime as dt
import hashlib
import re

from security_helpers import audit_rows, sign_in


async def _make_token(client, csrf: str, name: str, roles: list[str], days: str = "30"):
    return await client.post("/account/tokens", data={"csrf_token": csrf, "name": name, "roles": roles, "days": days})


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def test_api_tokens(world_client) -> None:
    from core.security.models import ApiToken

    client, world = world_client
    n = world.notes
    csrf = await sign_in(client, "mia")
    made = await _make_token(client, csrf, "sync", ["tb_user"])
    assert made.status_code == 201
    secret = re.search(r'<code id="new-token">([^<]+)</code>', made.text).group(1)
    assert secret not in (await client.get("/account/tokens")).text  # shown once
    row = await ApiToken.select().first()
    assert row["token_hash"] == hashlib.sha256(secret.encode()).hexdigest() and secret not in str(row)
    beyond = await _make_token(client, csrf, "greedy", ["admin"])
    assert beyond.status_code == 403 and await ApiToken.count() == 1
    assert any("admin" in r["detail"] for r in await audit_rows(action="denied", user_login="mia"))

    client.cookies.clear()
    # the token narrows mia (tb_manager, team scope) to tb_user: her own notes only, phone still masked
    listed = await client.get("/api/testbase/notes", headers=_bearer(secret))
    assert listed.status_code == 200 and [i["id"] for i in listed.json()["items"]] == [n["mia1"]]
    assert "internal" not in listed.json()["items"][0]
    # Bearer calls need no CSRF token; a token is not a page session
    patched = await client.patch(f"/api/testbase/notes/{n['mia1']}", json={"title": "by token", "version": 1},
                                 headers=_bearer(secret))
    assert patched.status_code == 200 and patched.json()["title"] == "by token"
    assert (await client.get("/notes/", headers=_bearer(secret))).status_code == 303
    # a token never exceeds its user's roles: remove tb_user's grant holder → nothing left
    from core.security import users

    await users.set_roles(world.users["mia"], ["st_lead"])
    assert (await client.get("/api/testbase/notes", headers=_bearer(secret))).status_code == 403
    await users.set_roles(world.users["mia"], ["tb_manager"])
    # expired, revoked, forged: 401 JSON, audited
    await ApiToken.update({ApiToken.expires_at: dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)}).where(
        ApiToken.id == row["id"])
    for bad in (secret, "crm_" + "x" * 43, "garbage", secret[:-1] + ("A" if secret[-1] != "A" else "B")):
        refused = await client.get("/api/testbase/notes", headers=_bearer(bad))
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "not_authenticated", bad
    assert len(await audit_rows(action="auth_failed")) == 4
    await ApiToken.update({ApiToken.expires_at: None}).where(ApiToken.id == row["id"])
    assert (await client.get("/api/testbase/notes", headers=_bearer(secret))).status_code == 200
    csrf = await sign_in(client, "mia")
    assert (await client.post(f"/account/tokens/{row['id']}/revoke", data={"csrf_token": csrf})).status_code == 303
    client.cookies.clear()
    assert (await client.get("/api/testbase/notes", headers=_bearer(secret))).status_code == 401
    # another user cannot revoke mia's tokens (IDOR): nothing happens
    csrf = await sign_in(client, "amy")
    await _make_token(client, csrf, "amy-token", ["tb_user"])
    amy_token = await ApiToken.select().where(ApiToken.name == "amy-token").first()
    csrf = await sign_in(client, "bob")
    await client.post(f"/account/tokens/{amy_token['id']}/revoke", data={"csrf_token": csrf})
    assert (await ApiToken.select(ApiToken.revoked_at).where(ApiToken.id == amy_token["id"]).first())[
        "revoked_at"] is None


async def test_admin_pages_are_admin_only(world_client) -> None:
    client, _ = world_client
    client.cookies.clear()
    assert (await client.get("/admin/users")).status_code == 303
    for login in ("amy", "aud", "ro"):
        csrf = await sign_in(client, login)
        for path in ("/admin/users", "/admin/roles", "/admin/teams", "/admin/users/1"):
            assert (await client.get(path)).status_code == 403, (login, path)
        made = await client.post("/admin/users", data={"csrf_token": csrf, "login": "evil", "password": "x" * 20})
        assert made.status_code == 403
        assert (await client.get("/admin/audit")).status_code == (200 if login == "aud" else 403)
    assert len([r for r in await audit_rows(action="denied") if r["user_login"] == "amy"]) >= 5


async def test_admin_manages_users(world_client) -> None:
    from core.security.models import Session, User, UserRole

    client, world = world_client
    csrf = await sign_in(client, "root")
    weak = await client.post("/admin/users", data={"csrf_token": csrf, "login": "zed", "password": "short"})
    assert weak.status_code == 422 and "at least 12" in weak.text
    unknown_role = await client.post("/admin/users", data={"csrf_token": csrf, "login": "zed",
                                                           "password": "violet-Kettle-93", "roles": ["wizard"]})
    assert unknown_role.status_code == 422 and "wizard" in unknown_role.text
    made = await client.post("/admin/users", data={"csrf_token": csrf, "login": "zed", "name": "Zed",
                                                   "password": "violet-Kettle-93", "roles": ["tb_user"]})
    assert made.status_code == 303
    zed = (await User.select(User.id).where(User.login == "zed").first())["id"]
    dup = await client.post("/admin/users", data={"csrf_token": csrf, "login": "zed", "password": "violet-Kettle-93"})
    assert dup.status_code == 409
    page = await client.get(f"/admin/users/{zed}")
    assert page.status_code == 200 and 'value="tb_user" checked' in page.text
    edit = await client.post(f"/admin/users/{zed}", data={"csrf_token": csrf, "name": "Zed Z", "email": "z@x.cn",
                                                          "language": "zh_CN", "roles": ["tb_manager"]})
    assert edit.status_code == 303
    assert [r["role"] for r in await UserRole.select(UserRole.role).where(UserRole.user == zed)] == ["tb_manager"]
    changes = [r["changes"] for r in await audit_rows(action="update", model="core.user", record_id=str(zed))]
    assert {"roles": [["tb_user"], ["tb_manager"]]} in changes and any("language" in c for c in changes)
    # password reset: weak refused; a good one ends the user's sessions
    await sign_in(client, "zed", "violet-Kettle-93")
    zed_cookie = client.cookies["crm_session"]
    csrf = await sign_in(client, "root")
    weak = await client.post(f"/admin/users/{zed}/password", data={"csrf_token": csrf, "password": "password"})
    assert weak.status_code == 422
    reset = await client.post(f"/admin/users/{zed}/password", data={"csrf_token": csrf, "password": "new-Kettle-4711"})
    assert reset.status_code == 303
    assert await Session.count().where((Session.user == zed) & Session.revoked_at.is_null()) == 0
    assert (await client.get("/", headers={"Cookie": f"crm_session={zed_cookie}"})).status_code == 303
    assert len(await audit_rows(action="password_change", record_id=str(zed))) == 1
    # an admin cannot lock themselves out
    csrf = await sign_in(client, "root")  # (the replayed stale cookie above was cleared by the server)
    me = world.users["root"]
    assert (await client.post(f"/admin/users/{me}/active", data={"csrf_token": csrf, "active": "0"})).status_code == 422
    assert (await client.post(f"/admin/users/{me}", data={"csrf_token": csrf, "roles": ["tb_user"]})).status_code == 422
    # CSRF-less admin posts are refused and audited
    assert (await client.post(f"/admin/users/{zed}/active", data={"active": "0"})).status_code == 403
    assert (await User.select(User.is_active).where(User.id == zed).first())["is_active"] is True
    assert len(await audit_rows(action="csrf_failed", user_login="root")) == 1


async def test_custom_roles_and_teams(world_client) -> None:
    from core.security.models import CustomRole

    client, world = world_client
    n, u = world.notes, world.users
    csrf = await sign_in(client, "root")
    roles_page = await client.get("/admin/roles")
    # the role's key, its label, and the roles it implies by their labels
    assert re.search(r'data-role="tb_manager"><td[^>]*><code>tb_manager</code></td><td[^>]*>Note manager</td>'
                     r'<td class="implies"[^>]*>Note user</td>', roles_page.text)
    clash = await client.post("/admin/roles", data={"csrf_token": csrf, "name": "tb_user", "implies": ["tb_user"]})
    assert clash.status_code == 422
    made = await client.post("/admin/roles", data={"csrf_token": csrf, "name": "note_boss", "label": "Boss",
                                                   "implies": ["tb_manager"]})
    assert made.status_code == 303
    role = await CustomRole.select().where(CustomRole.name == "note_boss").first()
    assert role is not None and "tb_manager" in str(role["implies"])
    # carl holds only the custom role: its implications give him tb_manager (team scope on T3) at once
    await client.post(f"/admin/users/{u['carl']}", data={"csrf_token": csrf, "roles": ["note_boss"]})
    await sign_in(client, "carl")
    items = (await client.get("/api/testbase/notes")).json()["items"]
    assert {i["id"] for i in items} == {n["carl1"], n["ola1"]} and "internal" in items[0]
    csrf = await sign_in(client, "root")
    await client.post(f"/admin/roles/{role['id']}", data={"csrf_token": csrf, "implies": ["tb_user"]})
    await sign_in(client, "carl")
    items = (await client.get("/api/testbase/notes")).json()["items"]
    assert {i["id"] for i in items} == {n["carl1"]} and "internal" not in items[0]
    csrf = await sign_in(client, "root")
    await client.post(f"/admin/roles/{role['id']}/delete", data={"csrf_token": csrf})
    await sign_in(client, "carl")
    assert (await client.get("/api/testbase/notes")).status_code == 403
    assert [r["action"] for r in await audit_rows(model="core.role")] == ["create", "update", "delete"]
    # teams: a new team led by mia with dan as member widens mia's team scope to dan's notes
    csrf = await sign_in(client, "root")
    made = await client.post("/admin/teams", data={"csrf_token": csrf, "name": "T9", "leader": str(u["mia"]),
                                                   "members": [str(u["dan"])]})
    assert made.status_code == 303
    assert (await client.post("/admin/teams", data={"csrf_token": csrf, "name": "T9"})).status_code == 409
    teams = await client.get("/admin/teams")
    assert 'data-team="T9"' in teams.text
    await sign_in(client, "mia")
    seen = {i["id"] for i in (await client.get("/api/testbase/notes")).json()["items"]}
    assert n["dan1"] in seen and n["carl1"] not in seen
    csrf = await sign_in(client, "root")
    from core.security.models import Team

    t9 = (await Team.select(Team.id).where(Team.name == "T9").first())["id"]
    await client.post(f"/admin/teams/{t9}", data={"csrf_token": csrf, "leader": str(u["mia"]),
                                                  "members": [str(u["carl"])]})
    await sign_in(client, "mia")
    seen = {i["id"] for i in (await client.get("/api/testbase/notes")).json()["items"]}
    assert n["carl1"] in seen and n["dan1"] not in seen
    assert [r["action"] for r in await audit_rows(model="core.team", record_id=str(t9))] == ["create", "update"]
