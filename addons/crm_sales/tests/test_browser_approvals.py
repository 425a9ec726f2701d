"""An approval flow in a real browser: the admin puts quote discounts above 15 % behind the team leader, the rep's
quote with a 20 % discount waits, the manager approves it in the inbox on a phone (390 px, Chinese), and the
quote goes out by itself. A real ``crm serve`` (SQLite, crm_sales, embedded jobs) and Debian's Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.testing import CHROMIUM, CHROMIUM_ARGS, served_crm

PASSWORD = "Correct-Horse-42!"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    users = [["users", "create", login, "--name", name, "--role", role]
             for login, name, role in (("root", "Root", "admin"), ("rep", "Rep One", "sales_rep"),
                                       ("manager", "王经理", "sales_manager"))]
    with served_crm(tmp_path, [["init"], ["addons", "install", "crm_sales"], *users], password=PASSWORD) as url:
        yield url


def _login(page: Any, server: str, login: str) -> None:
    page.goto(server + "/login")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def _watch(page: Any, errors: list[str]) -> Any:
    """Record any page, script or stylesheet of ours that fails (the browser's own favicon probe aside)."""
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
    return page


@pytest.mark.browser
def test_a_discount_waits_for_the_manager_who_approves_on_a_phone(server: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        errors: list[str] = []

        admin = _watch(browser.new_context(locale="en-US").new_page(), errors)
        _login(admin, server, "root")
        admin.goto(server + "/admin/teams")
        new_team = admin.locator("form[action='/admin/teams']")
        new_team.locator("input[name=name]").fill("Team A")
        new_team.locator("select[name=leader]").select_option(label="manager")
        new_team.locator("label.check", has_text="rep").locator("input").check()
        new_team.locator("button[type=submit]").click()
        admin.goto(server + "/admin/approvals/new?action=crm_sales.quote_discount|crm_sales.quote")
        admin.fill("input[name=name]", "Discounts above 15 %")
        admin.fill("textarea[name=condition]", '{"field": "discount", "op": "gt", "value": 15}')
        admin.fill("textarea[name=steps]", "team_leader")
        admin.click("#approval-form button[type=submit]")
        expect(admin.locator("table.approval-rules")).to_contain_text("Discounts above 15 %")

        rep = _watch(browser.new_context(locale="en-US").new_page(), errors)
        _login(rep, server, "rep")
        rep.goto(server + "/sales/leads/new")
        rep.fill("input[name=name]", "数据中心 Data centre")
        rep.fill("input[name=contact_name]", "李雷")
        rep.fill("input[name=email]", "li.lei@example.com")
        rep.fill("input[name=expected_revenue]", "50000")
        rep.click("form.lead-form button[type=submit]")
        rep.click("form[action$='/qualify'] button")
        rep.wait_for_url("**/sales/opportunities/*")
        rep.click("text=New quote")
        rep.fill("input[name=description_0]", "机架式服务器")
        rep.fill("input[name=quantity_0]", "2")
        rep.fill("input[name=unit_price_0]", "30000")
        rep.fill("input[name=discount_percent_0]", "20")
        rep.fill("input[name=tax_rate_0]", "0.13")
        rep.click("form.quote-editor button[type=submit]")
        quote_url = rep.url
        rep.click("text=Send by e-mail")
        expect(rep.locator("[data-approval-notice=pending]")).to_be_visible()
        panel = rep.locator("[data-panel=core_approvals]")
        expect(panel).to_contain_text("awaiting approval by 王经理")
        expect(rep.locator("h1")).to_contain_text("Draft")

        phone = browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844}, is_mobile=True,
                                    has_touch=True)
        manager = _watch(phone.new_page(), errors)
        _login(manager, server, "manager")
        manager.goto(server + "/approvals")
        expect(manager.locator("h1")).to_have_text("审批")
        card = manager.locator("article.approval").first
        expect(card).to_contain_text("批准报价单折扣")
        expect(card).to_contain_text("Rep One")
        # nothing wider than the phone: no sideways scrolling to reach the buttons
        assert manager.evaluate("document.documentElement.scrollWidth") <= 390
        approve = manager.locator("button[value=approve]").first
        box = approve.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390 and box["height"] >= 40
        manager.fill("textarea[name=comment]", "同意，客户是老客户")
        approve.click()
        expect(manager.locator("[role=status]")).to_contain_text("您的审批意见已记录")

        # the held sending runs by itself as the rep (an embedded job): the quote goes out
        # (sent: no SMTP server here, so its e-mail reads "sending" and then "not sent", never "Sent")
        for _ in range(30):
            rep.goto(quote_url)
            if rep.locator(".quote-state[data-state=sent]").count():
                break
            rep.wait_for_timeout(500)
        expect(rep.locator(".quote-state")).to_have_attribute("data-state", "sent")
        expect(rep.locator("h1")).not_to_contain_text("Draft")
        expect(rep.locator("[data-panel=core_approvals]")).to_contain_text("Approved")
        rep.goto(server + "/notifications")
        expect(rep.locator("ul.notifications")).to_contain_text("Approved and done")
        assert errors == [], errors
        browser.close()
