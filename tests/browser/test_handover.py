"""The hand-over form of a leaving user on a phone (390 px), in English and Chinese: the counts, the choices and
the dry run fit the screen. Only the dry run is clicked: the demo server is shared by the browser tests."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.demo import DEMO_PASSWORD

pytestmark = pytest.mark.browser

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PHONE = {"width": 390, "height": 844}


def _speak(page, server: str, language: str) -> str:
    """Set the signed-in user's language (the first login stored one already); returns the one it replaced."""
    page.goto(server + "/account/preferences")
    before = page.locator("select[name=language]").input_value()
    page.select_option("select[name=language]", value=language)
    page.locator("form", has=page.locator("select[name=language]")).locator("button[type=submit]").click()
    page.wait_for_load_state()
    return before


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_deactivate_form_and_dry_run_fit_a_phone(demo_server: str, browser, locale: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport=PHONE, locale=locale, extra_http_headers={"Accept-Language": locale})
    page = context.new_page()
    page.goto(demo_server + "/login")
    page.fill("input[name=login]", "admin")
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(demo_server + "/")
    before = _speak(page, demo_server, locale.replace("-", "_") if locale != "en-US" else "en")
    page.goto(demo_server + "/admin/users")
    href = page.locator("a", has_text=re.compile(r"^sales_rep$")).first.get_attribute("href")
    page.goto(demo_server + f"{href}/deactivate")
    assert page.locator("table.owned tr[data-model='crm_sales.lead']").count() == 1
    page.check("input[name=mode][value=user]")
    manager = page.locator("select[name=to_user] option", has_text="(sales_manager)").get_attribute("value")
    page.select_option("select[name=to_user]", value=manager)
    page.click("button[name=step][value=preview]")
    assert page.locator("section.dry-run [data-receiver='sales_manager']").count() == 1
    assert not page.evaluate("document.documentElement.scrollWidth > window.innerWidth + 1"), "scrolls sideways"
    if locale == "zh-CN":
        assert "试运行" in page.locator("section.dry-run h2").inner_text()
    page.screenshot(path=str(SHOTS / f"handover-phone-{locale}.png"), full_page=True)
    _speak(page, demo_server, before)
    context.close()
