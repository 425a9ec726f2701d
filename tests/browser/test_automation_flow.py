"""An automation rule in a real browser, on a phone-sized screen in Chinese: the admin creates a rule on
/admin/automation, a rep's new deal triggers it (the embedded worker of a real ``crm serve`` runs it), the rep is
notified, and the admin reads the run log. No page scrolls sideways at 390 px. Debian's Chromium."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.testing import CHROMIUM, CHROMIUM_ARGS, served_crm

PASSWORD = "Correct-Horse-42!"
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    with served_crm(tmp_path, [["init"], ["addons", "install", "crm_sales"],
                               ["users", "create", "root", "--name", "Root", "--role", "admin"],
                               ["users", "create", "rep", "--name", "Rep One", "--role", "sales_rep"]],
                    password=PASSWORD) as url:
        yield url


def _login(browser: Any, server: str, login: str) -> Any:
    context = browser.new_context(viewport=PHONE, locale="zh-CN",
                                  extra_http_headers={"Accept-Language": "zh-CN"})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto(server + "/login")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(server + "/")
    return page


def _fits(page: Any) -> None:
    assert not page.evaluate("document.documentElement.scrollWidth > window.innerWidth + 1"), (
        f"{page.url} scrolls sideways at 390 px")


@pytest.mark.browser
def test_admin_creates_a_rule_a_new_deal_triggers_it_and_the_log_shows_it(server: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        admin = _login(browser, server, "root")
        admin.goto(server + "/admin/automation")
        expect(admin.locator("h1")).to_have_text("自动化规则")
        _fits(admin)
        admin.click("text=新建规则")
        admin.fill("input[name=name]", "新商机通知")
        admin.select_option("select[name=model]", "crm_sales.opportunity")
        admin.select_option("select[name=trigger_type]", "created")
        admin.fill("textarea[name=condition]", json.dumps(
            {"field": "state", "op": "eq", "value": "open"}))
        admin.fill("textarea[name=actions]", json.dumps([
            {"kind": "notify", "params": {"to": "owner", "title_en": "New deal: {{ record.name }}",
                                          "title_zh": "新商机：{{ record.name }}"}},
            {"kind": "add_tag", "params": {"tag": "auto"}}], ensure_ascii=False))
        _fits(admin)
        admin.click("form#automation-form button[type=submit]")
        row = admin.locator("tr.automation-rule", has_text="新商机通知")
        expect(row).to_contain_text("已启用")
        expect(row).to_contain_text("记录创建时")
        _fits(admin)

        rep = _login(browser, server, "rep")
        rep.goto(server + "/sales/leads/new")
        rep.fill("input[name=name]", "自动化 Automation")
        rep.fill("input[name=contact_name]", "李雷")
        rep.click("form.lead-form button[type=submit]")
        rep.locator("form[action$='/qualify'] button").click()
        expect(rep.locator("h1")).to_contain_text("自动化 Automation")

        deadline = time.monotonic() + 30  # the embedded worker runs the rule after the commit
        while True:
            rep.goto(server + "/notifications")
            if rep.locator("text=新商机：自动化 Automation").count():
                break
            assert time.monotonic() < deadline, "the rule did not notify the rep"
            time.sleep(0.5)

        admin.goto(server + "/admin/automation")
        admin.locator("tr.automation-rule", has_text="新商机通知").locator("a", has_text="1 次完成").click()
        run = admin.locator("tr.automation-run").first
        expect(run).to_contain_text("完成")
        expect(run).to_contain_text("created")
        expect(run).to_contain_text("notified user(s)")
        expect(run).to_contain_text("tags")
        _fits(admin)
        admin.go_back()
        admin.locator("tr.automation-rule", has_text="新商机通知").locator("text=试运行").click()
        expect(admin.locator(".dry-run-count")).to_have_text("1")
        _fits(admin)
        browser.close()
