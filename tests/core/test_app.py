from __future__ import annotations

import re

from core.discovery import Discovered
from core.testing import csrf_of, login_client, make_user


async def test_only_installed_addons_are_mounted(crm_client, found: Discovered) -> None:
    client = await crm_client("crm_testbase", found=found)
    await make_user("alice", "tb_user")
    await login_client(client, "alice")
    assert (await client.get("/notes/")).status_code == 200
    assert (await client.get("/static/crm_testbase/notes.css")).status_code == 200
    assert (await client.get("/static/crm_testext/x.css")).status_code == 404


async def test_later_addon_extends_template_and_adds_panels(crm_client, found: Discovered) -> None:
    from crm_testbase.models import Note

    client = await crm_client("crm_testext", found=found)
    uid = await make_user("bob", "tb_manager")
    note = await Note.insert(Note(title="Quarterly review", owner=uid)).returning(Note.id)
    await login_client(client, "bob")
    page = await client.get(f"/notes/{note[0]['id']}")
    assert page.status_code == 200, page.text
    assert 'class="base-extra"' in page.text and "extended by crm_testext" in page.text
    panels = re.findall(r'<section class="card panel" data-panel="([^"]+)">\s*<h2>([^<]+)</h2>', page.text)
    assert panels == [("base", "Base panel"), ("ext", "Extension panel")]


async def test_navigation_lists_menus_the_user_may_read(crm_client, found: Discovered) -> None:
    client = await crm_client("crm_testbase", found=found)
    await make_user("carol", "tb_user")
    await make_user("dave", "auditor")
    await login_client(client, "carol")
    assert 'href="/notes/"' in (await client.get("/")).text
    client.cookies.clear()
    await login_client(client, "dave")
    home = await client.get("/")
    assert home.status_code == 200 and 'href="/notes/"' not in home.text


async def test_dashboard_collects_widgets(crm_client, found: Discovered) -> None:
    client = await crm_client("crm_testbase", found=found)
    await make_user("erin", "tb_user")
    await login_client(client, "erin")
    assert "1 note widget" in (await client.get("/")).text


async def test_language_from_accept_language_and_user(crm_client, found: Discovered) -> None:
    client = await crm_client("crm_testbase", found=found)
    page = await client.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert "登录" in page.text and '<html lang="zh-CN">' in page.text
    page = await client.get("/login", headers={"Accept-Language": "en-US"})
    assert "Log in" in page.text and "登录" not in page.text
    await make_user("fang", "tb_user", language="zh_CN")
    await login_client(client, "fang")
    home = await client.get("/", headers={"Accept-Language": "en"})
    assert "退出" in home.text  # the user's language wins over the header


async def test_anonymous_is_sent_to_login_and_api_gets_json_401(crm_client, found: Discovered) -> None:
    client = await crm_client("crm_testbase", found=found)
    page = await client.get("/notes/")
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    api = await client.get("/api/testbase/notes")
    assert api.status_code == 401
    assert api.json()["error"]["code"] == "not_authenticated"


async def test_post_without_csrf_token_is_refused(crm_client, found: Discovered) -> None:
    client = await crm_client("crm_testbase", found=found)
    await make_user("gus", "tb_user")
    response = await client.post("/login", data={"login": "gus", "password": "Correct-Horse-42!"})
    assert response.status_code == 403 and "CSRF" in response.text
    await login_client(client, "gus")
    response = await client.post("/logout", data={"csrf_token": "forged"})
    assert response.status_code == 403
    page = await client.get("/")
    response = await client.post("/logout", data={"csrf_token": csrf_of(page.text)})
    assert response.status_code == 303
    assert (await client.get("/notes/")).status_code == 303  # session revoked


async def test_security_headers_and_request_id(crm_client, found: Discovered) -> None:
    client = await crm_client(found=found)
    response = await client.get("/login", headers={"X-Request-ID": "abc123"})
    assert response.headers["x-request-id"] == "abc123"
    assert response.headers["x-frame-options"] == "DENY"
    assert "HttpOnly" in response.headers["set-cookie"]


async def test_unknown_errors_show_no_traceback(crm_client, found: Discovered) -> None:
    client = await crm_client("crm_testbase", found=found)
    await make_user("hal", "tb_user")
    await login_client(client, "hal")
    response = await client.get("/notes/999999")
    assert response.status_code == 404 and "Traceback" not in response.text
