"""One service flow in a real browser on a phone: an article in the knowledge base → a phoned-in ticket → the
article suggested on it → a public reply → resolved, with the SLA deadline and the timeline on the page.
A real ``crm serve`` (SQLite, crm_service and its dependency only) and Debian's Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.testing import CHROMIUM, CHROMIUM_ARGS, served_crm

PASSWORD = "Correct-Horse-42!"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    with served_crm(tmp_path, [["init"], ["addons", "install", "crm_service"],
                     ["users", "create", "boss", "--name", "Desk Boss", "--role", "service_manager"]],
                    password=PASSWORD) as url:
        yield url


@pytest.mark.browser
def test_ticket_with_suggested_article_in_a_browser(server: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        phone = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
        page = phone.new_page()
        errors: list[str] = []
        page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
                if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
        page.on("pageerror", lambda e: errors.append(f"script error: {e}"))
        page.goto(server + "/login")
        page.fill("input[name=login]", "boss")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")

        page.goto(server + "/service/articles")
        page.fill("input[name=title]", "退换货政策")
        page.fill("textarea[name=body]", "收到商品七天内可以申请**退货**退款。")
        page.check("input[name=is_public]")
        page.click("form[action='/service/articles'][method=post] button[type=submit]")
        expect(page.locator(".article-body strong")).to_have_text("退货")

        page.goto(server + "/service/")
        page.fill("input[name=subject]", "我想退货")
        page.fill("input[name=customer_name]", "刘洋")
        page.fill("input[name=customer_email]", "liu.yang@example.cn")
        page.select_option("select[name=channel]", "phone")
        page.click("form[action='/service/'][method=post] button[type=submit]")
        expect(page.locator("h1")).to_contain_text("我想退货")
        expect(page.locator(".sla-first")).not_to_have_text("—")  # the default policy's deadline is shown
        expect(page.locator(".suggestions")).to_contain_text("退换货政策")

        page.fill("textarea[name=body]", "您好，请参考《退换货政策》，七天内可退货。")
        page.click(".conversation button[type=submit]")
        expect(page.locator(".message-reply")).to_contain_text("七天内可退货")
        page.select_option("form[action$='/state'] select[name=state]", "resolved")
        page.click("form[action$='/state'] button[type=submit]")
        expect(page.locator(".ticket-state")).to_have_text("Resolved")
        expect(page.locator(".timeline")).to_contain_text("Resolved")
        # nothing on the phone scrolls sideways
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")

        page.goto(server + "/service/")
        expect(page.locator("table.tickets")).not_to_contain_text("我想退货")  # not in the unresolved list
        browser.close()
    assert errors == []
