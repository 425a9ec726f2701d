"""Custom fields in a real browser, on the demo: an admin adds a field on a phone-sized screen (nothing scrolls
sideways), then it is on the person form, the 360° page, the list (column and filter), the JSON API and the CSV
export. Screenshots go to ``test-artifacts/screenshots/``."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.demo import DEMO_PASSWORD

pytestmark = pytest.mark.browser

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PHONE = {"width": 390, "height": 844}


def _scrolls_sideways(page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth > window.innerWidth + 1"))


def test_add_a_field_and_find_it_on_form_list_filter_api_and_export(demo_server: str, browser) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport=PHONE, locale="en-US", extra_http_headers={"Accept-Language": "en-US"})
    page = context.new_page()
    page.goto(demo_server + "/login")
    page.fill("input[name=login]", "admin")
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(demo_server + "/")

    # the admin adds a one-choice field to people: filterable, a list column
    page.goto(demo_server + "/admin/fields")
    assert not _scrolls_sideways(page)
    page.click("section[data-model='crm_contacts.person'] a.button")
    page.wait_for_url("**/admin/fields/new?model=crm_contacts.person")
    page.fill("input[name=key]", "loyalty_tier")
    page.select_option("select[name=kind]", "choice")
    page.fill("input[name=label_en]", "Loyalty tier")
    page.fill("input[name=label_zh]", "忠诚度等级")
    page.fill("textarea[name=options]", "gold | Gold | 金卡\nsilver | Silver | 银卡")
    page.check("input[name=is_filterable]")
    page.check("input[name=is_listed]")
    assert not _scrolls_sideways(page)
    page.screenshot(path=str(SHOTS / "custom-field-new-phone.png"), full_page=True)
    page.click("form.cf-definition button[type=submit]")
    page.wait_for_url("**/admin/fields?model=crm_contacts.person*")
    assert page.locator("tr.cf-row[data-key='loyalty_tier']").count() == 1
    assert not _scrolls_sideways(page)
    page.screenshot(path=str(SHOTS / "custom-fields-phone.png"), full_page=True)

    # on the person form, and on the page of the person saved with it
    page.goto(demo_server + "/contacts/people/new")
    tier = page.locator("select[name='custom.loyalty_tier']")
    assert tier.is_visible()
    page.fill("input[name=name]", "Custom Field Person")
    tier.select_option("gold")
    page.click("form.card button[type=submit]")
    if page.locator("input[name=confirm]").count():  # a demo duplicate warning: confirm and save again
        page.check("input[name=confirm]")
        page.click("form.card button[type=submit]")
    page.wait_for_url("**/contacts/people/*")
    assert page.locator("dd[data-custom-field='custom.loyalty_tier']").inner_text() == "Gold"
    person_id = page.url.rstrip("/").rsplit("/", 1)[1]

    # a list column and a filter
    page.goto(demo_server + "/contacts/people")
    page.select_option("select[name=cf_loyalty_tier]", "gold")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**cf_loyalty_tier=gold*")
    rows = page.locator("tr.contact-row")
    assert rows.count() == 1 and rows.first.get_attribute("data-id") == person_id
    assert rows.first.locator("td[data-custom-field='custom.loyalty_tier']").inner_text() == "Gold"
    assert not _scrolls_sideways(page)
    page.screenshot(path=str(SHOTS / "custom-field-list-phone.png"), full_page=True)

    # the JSON API and the export carry it too
    api = page.request.get(demo_server + "/api/contacts/people?cf_loyalty_tier=gold")
    assert api.status == 200
    assert [(p["id"], p["custom"]) for p in api.json()["items"]] == [(int(person_id), {"loyalty_tier": "gold"})]
    csv = page.request.get(demo_server + "/contacts/people/export?format=csv&cf_loyalty_tier=gold")
    assert csv.status == 200
    lines = csv.text().splitlines()
    assert "custom.loyalty_tier" in lines[0] and len(lines) == 2 and "Gold" in lines[1]
    context.close()
