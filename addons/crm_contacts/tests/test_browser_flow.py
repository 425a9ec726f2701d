"""Import and merge in a real browser: upload a CSV, map, dry run, import, read the counts and the report;
then scan for duplicates, merge two planted people field by field and follow the loser to the survivor; last, on
a 390 px phone, read a row not imported with its content and revert the import after confirming.
A real ``crm serve`` (SQLite, crm_contacts only, jobs in process) and Debian's Chromium."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.testing import CHROMIUM, CHROMIUM_ARGS, served_crm

PASSWORD = "Correct-Horse-42!"
# Row 2 and 5 are good, row 3 has a phone that is no phone, row 4 repeats row 2's phone in another format.
UPLOAD = ("姓名,手机,邮箱,公司,地区\n"
          "王芳,13812345678,wang.fang@example.com,星河科技,广东深圳\n"
          "Bad Phone,12345,bad@example.com,,\n"
          "王芳 again,+86 138 1234 5678,fang2@example.com,,\n"
          "Chen Jie,13987654321,chen.jie@example.com,,上海\n")
# Two records of one customer, planted before the browser starts: no shared phone or email (so the import
# lets both in), but the same name, company, city and birth date (so the scan groups them).
PLANTED = ("name,phone,email,company,city,job title,birth date\n"
           "Li Lei,13800138003,,Acme,Shenzhen,Buyer,1985-03-02\n"
           "Li Lei,,li.lei@gmail.com,Acme,Shenzhen,Head of purchasing,1985-03-02\n")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "planted.csv").write_text(PLANTED)
    with served_crm(tmp_path, [["init"], ["addons", "install", "crm_contacts"],
                     ["users", "create", "mgr", "--name", "Manager", "--role", "sales_manager"],
                     ["contacts", "import", str(tmp_path / "planted.csv"), "--as", "mgr"]],
                    password=PASSWORD) as url:
        yield url


@pytest.mark.browser
def test_import_then_merge_in_a_browser(server: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    upload = tmp_path / "people.csv"
    upload.write_text(UPLOAD, encoding="utf-8")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page()
        page.set_default_timeout(10_000)
        errors: list[str] = []
        page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
                if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
        page.goto(server + "/login")
        page.fill("input[name=login]", "mgr")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")

        # upload: the columns are recognised from their Chinese headers
        page.goto(server + "/contacts/imports")
        page.set_input_files("input[type=file]", str(upload))
        page.click("form[action='/contacts/imports'] button[type=submit]")
        expect(page.locator("h1")).to_contain_text("people.csv")
        batch_url = page.url
        assert re.search(r"/contacts/imports/\d+$", batch_url), batch_url
        assert page.locator("select[name=map_1]").input_value() == "phone"
        assert page.locator("select[name=map_3]").input_value() == "company"
        expect(page.locator("tr.preview")).to_have_count(4)  # the standardized preview of the first rows
        expect(page.locator("tr.preview").first).to_contain_text("+8613812345678")
        page.set_viewport_size({"width": 390, "height": 844})  # the mapping step on a phone: cards, no sideways scroll
        expect(page.locator("select[name=drop_1]")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.set_viewport_size({"width": 1280, "height": 800})

        # dry run: per-row outcomes, nothing written
        page.click("button:has-text('Dry run')")
        expect(page.locator(".dry-counts")).to_contain_text("Created: 2")
        expect(page.locator(".dry-counts")).to_contain_text("Failed: 1")
        expect(page.locator(".dry-counts")).to_contain_text("Skipped: 1")
        dry = page.locator("tr.dry-error")
        expect(dry).to_have_count(2)
        expect(dry.nth(0).locator("td").first).to_have_text("3")
        expect(dry.nth(0)).to_contain_text("phone")
        expect(dry.nth(1).locator("td").first).to_have_text("4")
        expect(dry.nth(1)).to_contain_text("duplicate of row 2")
        page.goto(server + "/contacts/people?q=chen.jie")
        expect(page.locator("tr.contact-row")).to_have_count(0)

        # the real run goes to the job queue; the page refreshes itself until the counts are in
        page.goto(batch_url)
        page.click("button:text-is('Import')")
        counts = page.locator("p.counts")
        expect(counts).to_be_visible(timeout=20_000)
        assert re.sub(r"\s+", " ", counts.inner_text()).startswith("Created 2, Updated 0, Skipped 1, Failed 1"), \
            counts.inner_text()
        expect(page.locator("table.list", has_text="duplicate of row 2")).to_be_visible()
        with page.expect_download() as info:
            page.click("text=Download the report (CSV)")
        report = list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text(encoding="utf-8-sig"))))
        assert [(r["row"], r["result"]) for r in report] == [("2", "created"), ("3", "failed"), ("4", "skipped"),
                                                              ("5", "created")]
        assert "phone" in report[1]["message"] and report[0]["record_id"]
        page.goto(server + "/contacts/people?q=chen.jie")
        expect(page.locator("tr.contact-row")).to_have_count(1)

        # duplicates: scan on demand (a background job), then review the planted pair
        page.goto(server + "/contacts/duplicates")
        page.click("button:has-text('Scan now')")
        group = page.locator("section.group", has_text="Li Lei")
        for _ in range(40):
            if group.count():
                break
            page.wait_for_timeout(250)
            page.reload()
        expect(group).to_have_count(1)
        expect(group.locator("li")).to_have_count(2)
        # keep the record with the e-mail, but the job title of the other one; the phone comes along from it
        keep, other = (int(str(group.locator("li", has_text=text).locator("a").get_attribute("href")).rsplit("/")[-1])
                       for text in ("li.lei@gmail.com", "+8613800138003"))
        assert keep != other
        group.locator("text=Review and merge").click()
        expect(page.locator("h1")).to_contain_text("Merge")
        page.check(f"input[name=survivor][value='{keep}']")
        expect(page.locator(f"input[name=field_job_title][value='{keep}']")).to_be_checked()  # follows the survivor
        expect(page.locator(f"input[name=field_email][value='{keep}']")).to_be_checked()
        page.check(f"input[name=field_job_title][value='{other}']")
        page.check(f"input[name=field_phone][value='{other}']")
        page.click("button:has-text('Merge')")
        expect(page).to_have_url(re.compile(rf"/contacts/people/{keep}$"))
        expect(page.locator("h1.cc-name")).to_have_text("Li Lei")
        facts = page.locator("section.facts")
        expect(facts.locator("dd.email")).to_contain_text("li.lei@gmail.com")
        expect(facts.locator("dd.phone")).to_contain_text("+8613800138003")
        expect(page.locator(".cc-head")).to_contain_text("Buyer")

        # the loser now leads to the survivor
        page.goto(f"{server}/contacts/people/{other}")
        expect(page).to_have_url(re.compile(rf"/contacts/people/{keep}\?from={other}$"))
        expect(page.locator(".notice")).to_contain_text(f"#{other}")
        page.goto(server + "/contacts/duplicates")
        expect(page.locator("section.group", has_text="Li Lei")).to_have_count(0)

        # on a phone: the import's rows not imported show what the row held, nothing scrolls sideways; the
        # revert asks first, on its own page
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(batch_url)
        failed = page.locator("tr.not-imported", has_text="Bad Phone")
        expect(failed).to_contain_text("12345")
        expect(failed.locator("td.row-content")).to_contain_text("bad@example.com")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.click("text=Revert this import")
        expect(page.locator("h1")).to_contain_text("Revert import")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.click("button:has-text('Yes, revert this import')")
        expect(page.locator("p.status")).to_contain_text("Reverted")
        page.goto(server + "/contacts/people?q=chen.jie")
        expect(page.locator("tr.contact-row")).to_have_count(0)
        assert errors == []
        browser.close()
