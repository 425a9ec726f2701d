"""/account/preferences: language (applied at once), time zone, e-mail notifications, one's own password; the
language a first login stores; every refusal a 422 naming the field, every change audited."""

from __future__ import annotations

import json

from core.security.models import AuditLog, Session, User
from core.testing import csrf_of, login_client, make_user

PASSWORD = "Correct-Horse-42!"
NEW_PASSWORD = "Purple-Kettle-Drum-77"
CHANGE = {"new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD}


async def _user(user_id: int) -> dict:
    return await User.select(User.language, User.timezone, User.has_email_notifications).where(
        User.id == user_id).first()


async def _audit(action: str, user_id: int) -> list[dict]:
    rows = await AuditLog.select().where((AuditLog.action == action) & (AuditLog.record_id == str(user_id)))
    for row in rows:
        row["changes"] = json.loads(row["changes"]) if isinstance(row["changes"], str) else row["changes"]
    return rows


async def test_saving_the_language_shows_the_next_page_in_it(crm_client) -> None:
    client = await crm_client()
    uid = await make_user("amy")
    await login_client(client, "amy")
    home = await client.get("/")
    assert 'href="/account/preferences"' in home.text  # the name in the header opens the page
    page = await client.get("/account/preferences")
    assert page.status_code == 200 and "Preferences" in page.text and 'href="/account/tokens"' in page.text
    saved = await client.post("/account/preferences", data={
        "csrf_token": csrf_of(page.text), "language": "zh_CN", "timezone": "Europe/Paris",
        "has_email_notifications": ""})
    assert saved.status_code == 303 and saved.headers["location"] == "/account/preferences?done=preferences"
    after = await client.get(saved.headers["location"])
    assert '<html lang="zh-CN">' in after.text and "偏好设置已保存。" in after.text
    assert "有效令牌 0 个。" in after.text  # a plural message, in Chinese's single form
    home = await client.get("/", headers={"Accept-Language": "en"})  # the user's choice wins over the browser's
    assert "退出" in home.text and "Log out" not in home.text
    assert await _user(uid) == {"language": "zh_CN", "timezone": "Europe/Paris", "has_email_notifications": False}
    [entry] = await _audit("update", uid)
    assert entry["model"] == "core.user" and entry["changes"] == {
        "language": ["en", "zh_CN"], "timezone": ["", "Europe/Paris"], "has_email_notifications": [True, False]}
    # "zh-CN" as a browser writes it is the same language
    page = await client.post("/account/preferences", data={"csrf_token": csrf_of(after.text), "language": "zh-CN",
                                                            "timezone": "", "has_email_notifications": "1"})
    assert page.status_code == 303
    assert await _user(uid) == {"language": "zh_CN", "timezone": "", "has_email_notifications": True}


async def test_a_bad_time_zone_or_language_is_a_422_naming_the_field(crm_client) -> None:
    client = await crm_client()
    uid = await make_user("bo", language="zh_CN")
    await login_client(client, "bo")
    csrf = csrf_of((await client.get("/account/preferences")).text)
    bad = await client.post("/account/preferences", data={"csrf_token": csrf, "language": "zh_CN",
                                                          "timezone": "Mars/Olympus", "has_email_notifications": "1"})
    assert bad.status_code == 422
    assert 'data-field="timezone"' in bad.text and 'data-field="language"' not in bad.text
    assert "时区：未知时区" in bad.text  # named and explained in the user's language
    assert 'value="zh_CN" lang="zh-CN" selected' in bad.text  # what was sent is shown again
    both = await client.post("/account/preferences", data={"csrf_token": csrf, "language": "fr",
                                                           "timezone": "../../etc/passwd"})
    assert both.status_code == 422
    assert 'data-field="timezone"' in both.text and 'data-field="language"' in both.text
    assert await _user(uid) == {"language": "zh_CN", "timezone": "", "has_email_notifications": True}
    assert await _audit("update", uid) == []
    forged = await client.post("/account/preferences", data={"language": "en", "timezone": "UTC"})
    assert forged.status_code == 403  # no CSRF token
    assert (await _user(uid))["language"] == "zh_CN"


async def test_password_change_needs_the_current_one_and_ends_other_sessions(crm_client) -> None:
    client = await crm_client()
    other = await crm_client()
    uid = await make_user("cy")
    await login_client(client, "cy")
    await login_client(other, "cy")
    assert (await other.get("/")).status_code == 200
    csrf = csrf_of((await client.get("/account/preferences")).text)

    wrong = await client.post("/account/password", data={"csrf_token": csrf, "current_password": "Not-The-One-123",
                                                          **CHANGE})
    assert wrong.status_code == 422 and 'data-field="current_password"' in wrong.text
    assert len(await _audit("denied", uid)) == 1
    weak = await client.post("/account/password", data={"csrf_token": csrf, "current_password": PASSWORD,
                                                         "new_password": "short", "confirm_password": "short"})
    assert weak.status_code == 422 and 'data-field="new_password"' in weak.text
    differ = await client.post("/account/password", data={"csrf_token": csrf, "current_password": PASSWORD,
                                                           "new_password": NEW_PASSWORD, "confirm_password": "x"})
    assert differ.status_code == 422 and 'data-field="confirm_password"' in differ.text
    assert (await other.get("/")).status_code == 200  # nothing changed yet

    done = await client.post("/account/password", data={"csrf_token": csrf, "current_password": PASSWORD, **CHANGE})
    assert done.status_code == 303 and done.headers["location"] == "/account/preferences?done=password"
    assert (await client.get("/")).status_code == 200  # this session stays
    gone = await other.get("/")
    assert gone.status_code == 303 and gone.headers["location"].startswith("/login")
    assert await Session.count().where((Session.user == uid) & Session.revoked_at.is_null()) == 1
    assert len(await _audit("password_change", uid)) == 1

    fresh = await crm_client()
    page = await fresh.get("/login")
    refused = await fresh.post("/login", data={"login": "cy", "password": PASSWORD, "csrf_token": csrf_of(page.text)})
    assert refused.status_code == 401
    await login_client(fresh, "cy", NEW_PASSWORD)
    assert (await fresh.get("/")).status_code == 200


async def test_first_login_stores_the_browsers_language(crm_client) -> None:
    client = await crm_client()
    new = await make_user("dee")  # created without a language
    set_ = await make_user("eve", language="en")
    assert (await _user(new))["language"] == ""
    for login in ("dee", "eve"):
        client.cookies.clear()
        client.headers["Accept-Language"] = "zh-CN,zh;q=0.9,en;q=0.5"
        await login_client(client, login)
    assert (await _user(new))["language"] == "zh_CN"
    assert (await _user(set_))["language"] == "en"  # a language already chosen is kept
    client.headers["Accept-Language"] = "en-US"
    client.cookies.clear()
    await login_client(client, "dee")
    assert (await _user(new))["language"] == "zh_CN"  # only the first login decides
    assert "退出" in (await client.get("/")).text
