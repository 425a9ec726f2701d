"""The audit log is append-only and searchable; hostile input is refused with 4xx, audited, never a 500."""

from __future__ import annotations

import pytest
from security_helpers import audit_rows, sign_in

from core.addon import FieldRule, Grant, Role
from core.security.policy import compile_policy


async def test_audit_log_is_append_only_in_the_database(crm_db_url) -> None:
    from core.security import audit
    from core.security.models import AuditLog

    await audit.record("update", model="x.y", record_id=1, changes={"a": [1, 2]}, login="someone")
    for query in (AuditLog.update({AuditLog.action: "forged"}).where(AuditLog.id > 0),
                  AuditLog.delete().where(AuditLog.id > 0)):
        with pytest.raises(Exception, match="append-only"):
            await query
    rows = await AuditLog.select()
    assert len(rows) == 1 and rows[0]["action"] == "update"


async def test_audit_search_page(world_client) -> None:
    client, _ = world_client
    client.cookies.clear()
    page = await client.get("/login")
    from core.testing import csrf_of

    await client.post("/login", data={"login": "amy", "password": "nope-nope-nope", "csrf_token": csrf_of(page.text)})
    await sign_in(client, "amy")
    await client.get("/sectest/count")
    await sign_in(client, "aud")
    assert (await client.post("/admin/audit", data={})).status_code in (403, 405)  # no way to write through the app
    found = await client.get("/admin/audit", params={"action": "login_failed", "user": "amy"})
    assert found.status_code == 200 and found.text.count('class="entry"') == 1
    logins = await client.get("/admin/audit", params={"action": "login"})
    assert logins.text.count('data-action="login"') == 2  # amy, then aud
    assert (await client.get("/admin/audit", params={"since": "2000-01-01", "until": "2000-01-02"})).text.count(
        'class="entry"') == 0
    bad = await client.get("/admin/audit", params={"since": "garbage", "before": "x"})
    assert bad.status_code == 422 and "must be a date like 2026-12-01" in bad.text  # named, not ignored
    await sign_in(client, "amy")
    assert (await client.get("/admin/audit")).status_code == 403


async def test_hostile_input_is_refused_never_a_500(world_client) -> None:
    client, world = world_client
    n = world.notes
    # forged, oversized and malformed session cookies: anonymous, cookie cleared, audited
    for cookie in ("crm_session=forged", "crm_session=" + "A" * 5000, 'crm_session="\\x00;;=;', "garbage"):
        client.cookies.clear()
        page = await client.get("/notes/", headers={"Cookie": cookie})
        api = await client.get("/api/testbase/notes", headers={"Cookie": cookie})
        assert page.status_code == 303 and api.status_code == 401, cookie
    assert len(await audit_rows(action="auth_failed")) >= 4
    csrf = await sign_in(client, "amy")
    # CSRF-less unsafe requests with a session: form, JSON API, logout, token creation
    for method, path, kw in (("POST", "/logout", {"data": {}}), ("POST", "/account/tokens", {"data": {"name": "x"}}),
                             ("PATCH", f"/api/testbase/notes/{n['amy1']}", {"json": {"title": "x", "version": 1}}),
                             ("POST", "/api/testbase/notes", {"json": {"title": "x"}}),
                             ("POST", f"/sectest/notes/{n['amy1']}", {"data": {"title": "x", "csrf_token": "forged"}})):
        response = await client.request(method, path, **kw)
        assert response.status_code == 403, (method, path)
    assert len(await audit_rows(action="csrf_failed", user_login="amy")) == 5
    # malformed API input: 4xx with a JSON error, never 500
    headers = {"X-CSRF-Token": csrf}
    bad = [("GET", "/api/testbase/notes?limit=abc", None), ("GET", "/api/testbase/notes?sort=password_hash", None),
           ("GET", "/api/testbase/notes?after=!!!", None), ("GET", "/api/testbase/notes/99999999", None),
           ("PATCH", f"/api/testbase/notes/{n['amy1']}", b"{not json"), ("PATCH", f"/api/testbase/notes/{n['amy1']}",
                                                                         b"[1, 2]"),
           ("PATCH", f"/api/testbase/notes/{n['amy1']}", b'{"title": "x"}'),  # no version
           ("POST", "/api/testbase/notes", b'{"title": "x", "id": 1}'),
           ("POST", f"/api/testbase/notes/{n['bob1']}/reveal/password_hash", None),
           ("GET", "/notes/abc", None), ("GET", "/admin/audit?before=-1", None)]
    for method, path, body in bad:
        response = await client.request(method, path, content=body, headers={**headers,
                                        "Content-Type": "application/json"})
        assert 400 <= response.status_code < 500, (method, path, response.status_code, response.text[:200])
        if path.startswith("/api/"):
            assert "error" in response.json()
    ids = await client.post("/api/testbase/notes", json={"title": "x", "id": n["bob1"]}, headers=headers)
    assert ids.status_code == 422 and "id" in ids.json()["error"]["fields"]


def test_policy_combines_grants_and_field_rules() -> None:
    """Unit level: scopes OR-ed, an unrelated extra role never unmasks, readonly gets the least-privileged view."""
    from core.addon import Addon

    addon = Addon(name="crm_p", version="1", roles=(Role("a", "A"), Role("b", "B"), Role("c", "C")),
                  permissions=(Grant("a", "crm_p.m", ("read",), "own"), Grant("b", "crm_p.m", ("read",), "team"),
                               Grant("b", "crm_p.m", ("read",), "subordinates"), Grant("c", "crm_p.other", ("read",))),
                  field_rules=(FieldRule("a", "crm_p.m", "phone", "masked", masker="phone"),
                               FieldRule("b", "crm_p.m", "phone", "readonly"),
                               FieldRule("a", "crm_p.m", "secret", "hidden"),
                               FieldRule("b", "crm_p.m", "secret", "masked", reveal=True)))
    pol = compile_policy([addon])
    assert pol.scopes({"a", "b"}, "crm_p.m", "read") == {"own", "team", "subordinates"}
    assert pol.scopes({"a"}, "crm_p.m", "update") == frozenset()
    assert pol.scopes({"admin"}, "crm_p.m", "delete") == {"all"}
    assert pol.scopes({"readonly"}, "crm_p.m", "read") == {"all"}
    assert pol.scopes({"readonly"}, "crm_p.m", "update") == frozenset()
    assert pol.scopes({"readonly"}, "core.audit_log", "read") == frozenset()
    assert pol.field_rule({"a"}, "crm_p.m", "phone") == ("masked", "phone", False)
    assert pol.field_rule({"a", "c"}, "crm_p.m", "phone") == ("masked", "phone", False)  # c has no grant on m
    assert pol.field_rule({"a", "b"}, "crm_p.m", "phone")[0] == "readonly"
    assert pol.field_rule({"a", "b"}, "crm_p.m", "secret") == ("masked", "default", True)
    assert pol.field_rule({"readonly"}, "crm_p.m", "phone") == ("masked", "phone", False)
    assert pol.field_rule({"readonly"}, "crm_p.m", "secret") == ("hidden", "default", False)
    assert pol.field_rule({"a"}, "crm_p.m", "title") == ("editable", "default", False)
    assert pol.field_rule({"admin"}, "crm_p.m", "secret") == ("editable", "default", True)
