"""Smoke test in a real browser: the demo's home page, login, and every navigation entry."""

from __future__ import annotations

import pytest

from core.demo import DEMO_PASSWORD

pytestmark = pytest.mark.browser


def test_home_login_and_navigation(demo_server: str, browser, tmp_path) -> None:
    page = browser.new_page()
    page.goto(demo_server + "/")
    assert page.url.startswith(demo_server + "/login")
    page.fill("input[name=login]", "admin")
    page.fill("input[name=password]", "not-the-password")
    page.click("button[type=submit]")
    assert page.locator(".error").inner_text() == "Wrong login or password."

    page.fill("input[name=login]", "admin")
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(demo_server + "/")
    # the greeting is in the admin's stored language (another browser test may have switched it)
    assert "Demo Admin" in page.locator("h1").inner_text()
    page.screenshot(path=str(tmp_path / "home.png"), full_page=True)

    links = page.locator("nav.menu a")
    entries = [(links.nth(i).inner_text(), links.nth(i).get_attribute("href")) for i in range(links.count())]
    assert "/admin/users" in [href for _label, href in entries]
    for label, href in entries:
        response = page.goto(demo_server + href)
        assert response is not None and response.status == 200, f"{label} ({href}) → {response and response.status}"
        assert page.locator("header.topbar").count() == 1, f"{label} page lacks the layout"

    page.goto(demo_server + "/")
    page.click("header .me button")  # log out (a CSRF-protected form)
    page.wait_for_url(demo_server + "/login")
    page.goto(demo_server + "/admin/users")
    assert page.url.startswith(demo_server + "/login")
