"""One reports flow in a real browser (a real ``crm serve`` on SQLite with crm_sales as the dataset provider,
Debian's Chromium): build a report → its chart → pin it to a dashboard → export the PDF; on a phone, in English,
then the same report read in Chinese."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.testing import CHROMIUM, CHROMIUM_ARGS, served_crm

PASSWORD = "Correct-Horse-42!"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    with served_crm(tmp_path, [["init"], ["addons", "install", "crm_sales", "crm_reports"],
                     ["users", "create", "boss", "--name", "Sales Rep", "--role", "sales_rep"]],
                    password=PASSWORD) as url:
        yield url


def _pdf_text(data: bytes, tmp_path: Path) -> str:
    path = tmp_path / "report.pdf"
    path.write_bytes(data)
    return subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True).stdout


@pytest.mark.browser
def test_build_chart_pin_and_export_in_a_browser(server: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, locale="en-US")
        page = phone.new_page()
        errors: list[str] = []
        page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
                if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
        page.on("pageerror", lambda e: errors.append(f"script error: {e}"))
        page.goto(server + "/login")
        page.fill("input[name=login]", "boss")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        for name, revenue in (("Turbines", "80000"), ("Pumps", "12000")):  # two deals through the real pages
            page.goto(server + "/sales/leads/new")
            page.fill("input[name=name]", name)
            page.fill("input[name=contact_name]", f"{name} buyer")
            page.fill("input[name=expected_revenue]", revenue)
            page.click("form.lead-form button[type=submit]")
            page.click("text=Qualify")
        page.goto(server + "/reports/")  # the role's dashboard, made from the installed datasets
        expect(page.locator("h1")).to_contain_text("Sales")
        board = page.url
        # build: a dataset, a group-by, a measure, a chart type
        page.goto(server + "/reports/reports")
        page.select_option("select[name=dataset]", "crm_sales.opportunities")
        page.click("form.dash-add button")
        page.fill("input[name=name]", "Revenue by stage")
        page.select_option("select[name=dim1]", "stage")
        page.uncheck("input[name=measures][value=count]")
        page.check("input[name=measures][value=expected_revenue]")
        page.select_option("select[name=chart]", "bar")
        page.click("form.report-builder button")
        expect(page.locator("h1")).to_contain_text("Revenue by stage")
        chart = page.locator("figure.chart-narrow svg")  # drawn for the phone; the wide one hidden
        expect(chart).to_be_visible()
        expect(page.locator("figure.chart-wide")).to_be_hidden()
        assert chart.bounding_box()["width"] <= 390  # the chart fits the phone
        expect(page.locator("table.report-table")).to_contain_text("92,000.00")
        report_url = page.url
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        # pin it: the rep's copy of the role dashboard gets the card, the chart drawn there too
        page.click("form[action$='/pin'] button")
        expect(page.locator(".dash-card", has_text="Revenue by stage").locator("figure.chart-narrow svg")
               ).to_be_visible()
        assert page.url != board  # edits went to the user's own copy
        # export the PDF as the browser would fetch it
        pdf = page.request.get(report_url + "/export.pdf")
        assert pdf.ok and pdf.body().startswith(b"%PDF")
        assert "Revenue by stage" in _pdf_text(pdf.body(), tmp_path).replace("\n", " ")
        # the same report read in Chinese: labels translated, the PDF speaks Chinese too
        page.goto(server + "/account/preferences")
        page.select_option("form#preferences select[name=language]", "zh_CN")
        page.click("form#preferences button[type=submit]")
        page.goto(report_url)
        expect(page.locator("form[action$='/pin'] label")).to_contain_text("固定到仪表盘")
        expect(page.locator("figure.chart-narrow svg")).to_be_visible()
        text = _pdf_text(page.request.get(report_url + "/export.pdf").body(), tmp_path)
        assert "Revenue by stage" in text.replace("\n", " ") and "阶段" in text
        browser.close()
    assert not errors, errors
