"""The shell in a real browser, on a desk and on a phone, in English and Chinese: the phone menu is collapsed
behind a button, no page scrolls sideways, the header search answers as you type. Screenshots go to
``test-artifacts/screenshots/`` for people to look at."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.demo import DEMO_PASSWORD

pytestmark = pytest.mark.browser

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PHONE = {"width": 390, "height": 844}
DESK = {"width": 1366, "height": 900}


def _login(browser, server: str, login: str, viewport: dict[str, int], locale: str):
    context = browser.new_context(viewport=viewport, locale=locale,
                                  extra_http_headers={"Accept-Language": locale})
    page = context.new_page()
    page.goto(server + "/login")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(server + "/")
    return context, page


def _scrolls_sideways(page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth > window.innerWidth + 1"))


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_phone_menu_is_a_button_and_nothing_scrolls_sideways(demo_server: str, browser, locale: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    context, page = _login(browser, demo_server, "sales_manager", PHONE, locale)
    nav = page.locator("nav#main-nav")
    assert not nav.is_visible(), "the menu fills the phone screen"
    assert not _scrolls_sideways(page)
    page.screenshot(path=str(SHOTS / f"home-phone-{locale}.png"), full_page=True)
    page.click("[data-menu-toggle]")
    assert nav.is_visible() and page.get_attribute("[data-menu-toggle]", "aria-expanded") == "true"
    page.screenshot(path=str(SHOTS / f"menu-phone-{locale}.png"), full_page=True)
    hrefs = [a.get_attribute("href") for a in nav.locator("a").all()]
    assert "/contacts/people" in hrefs and "/sales/leads" in hrefs
    for href in hrefs:
        page.goto(demo_server + href)
        assert not _scrolls_sideways(page), f"{href} scrolls sideways at 390 px"
    context.close()


def test_header_search_answers_as_you_type_and_with_enter(demo_server: str, browser) -> None:
    context, page = _login(browser, demo_server, "admin", DESK, "en-US")
    assert page.locator("nav#main-nav").is_visible()
    # one section per addon, in dependency order, then the system's (labels in the user's stored language)
    first = page.locator(".menu-section").first.locator("a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    assert page.locator(".menu-section-title").count() >= 3 and "/contacts/people" in first, first
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.name") == "q"
    page.goto(demo_server + "/contacts/people")
    name = page.locator("table.list tbody tr td a").first.inner_text().strip()
    page.fill("[data-global-search]", name[:3] if name.isascii() else name[:2])
    results = page.locator("[data-search-results]")
    results.wait_for(state="visible")
    assert results.locator("a").count() >= 1
    page.screenshot(path=str(SHOTS / "search-desk-en.png"))
    page.press("[data-global-search]", "Enter")
    page.wait_for_url("**/search?q=*")
    assert page.locator(".search-group").count() >= 1
    context.close()
