"""One sales flow in a real browser: lead → qualify → drag on the board → quote → PDF → send → the customer
accepts on the public page → order. A real ``crm serve`` (SQLite, crm_sales only) and Debian's Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.testing import CHROMIUM, CHROMIUM_ARGS, served_crm

PASSWORD = "Correct-Horse-42!"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    with served_crm(tmp_path, [["init"], ["addons", "install", "crm_sales"],
                     ["users", "create", "rep", "--name", "Rep One", "--role", "sales_rep"]],
                    password=PASSWORD) as url:
        yield url


@pytest.mark.browser
def test_lead_to_order_in_a_browser(server: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        # a phone (390×844, touch): the whole flow must work there, the board's drag with a finger included
        phone = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
        rep = phone.new_page()
        errors: list[str] = []
        # any script, stylesheet or page of ours that fails to load (the browser's own favicon probe aside)
        rep.on("response", lambda r: errors.append(f"{r.status} {r.url}")
               if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
        rep.on("pageerror", lambda e: errors.append(f"script error: {e}"))
        rep.goto(server + "/login")
        rep.fill("input[name=login]", "rep")
        rep.fill("input[name=password]", PASSWORD)
        rep.click("button[type=submit]")
        rep.goto(server + "/sales/leads/new")
        rep.fill("input[name=name]", "展会线索 Trade fair")
        rep.fill("input[name=contact_name]", "王芳")
        rep.fill("input[name=email]", "wang.fang@example.com")
        rep.fill("input[name=phone]", "138 0013 8000")
        rep.fill("input[name=expected_revenue]", "80000")
        rep.click("form.lead-form button[type=submit]")
        expect(rep.locator("[data-field=phone]")).to_have_text("+8613800138000")  # standardized like contacts'
        rep.click("text=Qualify")
        expect(rep.locator("h1")).to_contain_text("展会线索 Trade fair")
        opp_url = rep.url

        # the board: column totals, then a finger drags the card by its handle from the first column to the
        # second (touch events → pointer events); the server records it and the totals follow
        rep.goto(server + "/sales/")
        first, second = rep.locator(".column").nth(0), rep.locator(".column").nth(1)
        expect(first.locator(".column-total")).to_contain_text("80,000.00")
        handle = first.locator(".deal", has_text="展会线索").locator(".drag-handle")
        box = handle.bounding_box()
        goal = second.bounding_box()
        assert box and goal
        cdp = phone.new_cdp_session(rep)
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
        tx, ty = min(goal["x"] + 60, 380), goal["y"] + 80
        for i in range(1, 11):
            cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [
                {"x": x + (tx - x) * i / 10, "y": y + (ty - y) * i / 10}]})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        expect(second.locator(".deal", has_text="展会线索")).to_be_visible()
        expect(second.locator(".column-total .count")).to_have_text("1")
        expect(first.locator(".column-total .count")).to_have_text("0")
        assert first.locator(".column-total .sum").count() == 0  # nothing left to add up
        assert second.locator(".column-total").inner_text().count("·") == 1  # one amount, one separator
        rep.wait_for_timeout(500)
        rep.reload()
        expect(rep.locator(".column").nth(1).locator(".deal", has_text="展会线索")).to_be_visible()
        expect(rep.locator(".column").nth(1).locator(".column-total")).to_contain_text("80,000.00")
        assert rep.locator(".column").nth(0).locator(".column-total .sep").count() == 0
        assert rep.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways page scroll
        # the keyboard's way: → on the handle moves the deal one stage on, ← back (the server records both)
        with rep.expect_response("**/move"):
            rep.locator(".column").nth(1).locator(".deal .drag-handle").first.press("ArrowRight")
        expect(rep.locator(".column").nth(2).locator(".deal", has_text="展会线索")).to_be_visible()
        rep.wait_for_function("!document.querySelector('.deal[data-moving]')")  # the move came back
        with rep.expect_response("**/move"):
            rep.locator(".column").nth(2).locator(".deal .drag-handle").first.press("ArrowLeft")
        expect(rep.locator(".column").nth(1).locator(".deal", has_text="展会线索")).to_be_visible()
        rep.wait_for_timeout(300)
        rep.reload()
        expect(rep.locator(".column").nth(1).locator(".deal", has_text="展会线索")).to_be_visible()

        rep.goto(opp_url)
        rep.click("text=New quote")  # the editor: a line added and one removed without saving, a discount
        rep.fill("input[name=description_0]", "机架式服务器")
        rep.fill("input[name=quantity_0]", "2")
        rep.fill("input[name=unit_price_0]", "30000")
        rep.fill("input[name=tax_rate_0]", "0.13")
        rep.fill("input[name=description_1]", "不要这一行")
        rep.locator("tr.line", has=rep.locator("input[name=description_1]")).locator(".remove-line").click()
        rep.click("button.add-line")
        added = rep.locator("tr.line").last
        added.locator("[data-field=description]").fill("安装服务")
        added.locator("[data-field=unit_price]").fill("1000")
        added.locator("[data-field=tax_rate]").fill("0.13")
        rep.fill("input[name=discount_percent]", "10")
        # the figures follow what is typed (computed by the server, as saving will), before anything is saved
        expect(rep.locator(".quote-totals .grand-total")).to_contain_text("62,037.00")
        rep.fill("input[name=quantity_0]", "2x")
        expect(rep.locator("[data-preview-error]")).to_be_visible()
        expect(rep.locator("input[name=quantity_0]")).to_have_attribute("aria-invalid", "true")
        rep.fill("input[name=quantity_0]", "2")
        expect(rep.locator("[data-preview-error]")).to_have_count(0)
        expect(rep.locator("tr.line").first.locator("td.amount")).to_contain_text("54,000.00")
        rep.click("form.quote-editor button[type=submit]")
        # 2 × 30000 + 1000, 10 % off each line, 13 % tax: money formatted in the reader's locale
        expect(rep.locator(".totals .grand-total")).to_contain_text("62,037.00")
        expect(rep.locator("body")).not_to_contain_text("不要这一行")
        quote_url = rep.url
        pdf = rep.request.get(rep.url + "/pdf")
        assert pdf.status == 200 and pdf.body().startswith(b"%PDF")
        rep.click("text=Send by e-mail")
        link = rep.locator(".notice a").get_attribute("href")
        assert link and "/sales/q/" in link

        customer = browser.new_context().new_page()  # no session: the signed link is the key
        customer.goto(link)
        expect(customer.locator("h1")).to_contain_text("报价单")
        customer.fill("input[name=name]", "王芳")
        customer.click("button[value=accept]")
        expect(customer.locator(".notice")).to_contain_text("已接受")

        customer.goto(link)  # the accepted quote still opens from its link, read-only, and downloads
        expect(customer.locator("h1")).to_contain_text("报价单")
        assert customer.locator("button[value=accept]").count() == 0
        assert customer.request.get(link + "/pdf").body().startswith(b"%PDF")
        rep.goto(quote_url)  # the rep's page shows the accepted quote as text, not inputs
        expect(rep.locator(".quote-readonly")).to_contain_text("安装服务")
        assert rep.locator("input[name=description_0]").count() == 0

        rep.goto(server + "/sales/orders")
        expect(rep.locator("table.list")).to_contain_text("CRM-SO-")
        rep.goto(opp_url)
        expect(rep.locator("h1")).to_contain_text("won")
        refused = [e for e in errors if e.startswith("422 ") and e.endswith("/preview")]  # the "2x" typed above
        assert refused and [e for e in errors if e not in refused] == []
        browser.close()
