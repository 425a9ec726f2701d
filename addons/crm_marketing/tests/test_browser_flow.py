"""One marketing flow in a real browser on a phone (390×844, zh-CN): build a segment with its live count →
campaign → preview → test send → send → a recipient clicks → the ROI page counts it. A real ``crm serve``
(SQLite, crm_marketing without crm_sales, jobs in-process) mailing a local aiosmtpd sink; no page scrolls
sideways."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from marketing_helpers import Sink

from core.testing import CHROMIUM, CHROMIUM_ARGS, crm_process, free_port

PASSWORD = "Correct-Horse-42!"
SETUP = """
import asyncio, os
from core import db, lifecycle
from core.discovery import discover
from core.runtime import boot
from core.settings import Settings
from core.security.users import create_user

async def main():
    settings = Settings.from_env()
    db.configure(settings.database_url)
    await lifecycle.ensure_kernel()
    await lifecycle.install(["crm_marketing"], discover())
    await boot(settings)
    from crm_contacts.api import find_or_create_person
    from crm_contacts.models import Person
    await create_user("mk", "Mei", os.environ["CRM_NEW_PASSWORD"], roles=["marketing"])
    people = (("王芳", "wang.fang", "广东"), ("李雷", "li.lei", "广东"), ("张伟", "zhang.wei", "北京"))
    for name, mail, province in people:
        ref, _ = await find_or_create_person(name=name, email=mail + "@example.cn", language="zh_CN")
        await Person.update({Person.province: province, Person.stage: "customer"}).where(Person.id == ref.id)

asyncio.run(main())
"""


def _wait(what: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not what():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


@pytest.mark.browser
def test_segment_to_roi_in_a_browser(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    sink, port = Sink(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    env = {
        "CRM_DATABASE_URL": f"sqlite:///{tmp_path / 'crm.sqlite3'}",
        "CRM_NEW_PASSWORD": PASSWORD,
        "CRM_SMTP_HOST": "127.0.0.1",
        "CRM_SMTP_PORT": str(port),
        "CRM_SMTP_FROM": "news@example.com",
        "CRM_X_MARKETING_SCANNER_SECONDS": "0",
    }
    base = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")} | {"CRM_DATA_DIR": str(tmp_path)} | env
    # the database as `crm init`, `crm addons install crm_marketing`, `crm users create` and a contacts import
    # would leave it, in one process (four CLI boots cost more than the flow itself on a busy machine)
    done = subprocess.run([sys.executable, "-c", SETUP], env=base, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    try:
        with crm_process(tmp_path, "serve", env) as server, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            phone = browser.new_context(
                viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, locale="zh-CN"
            )
            page = phone.new_page()
            errors: list[str] = []
            page.on(
                "response",
                lambda r: (
                    errors.append(f"{r.status} {r.url}")
                    if r.status >= 400 and not r.url.endswith("/favicon.ico")
                    else None
                ),
            )
            page.on("pageerror", lambda e: errors.append(f"script error: {e}"))

            def no_sideways_scroll() -> None:
                wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                assert wide <= 1, (page.url, wide)

            page.goto(server + "/login")
            page.fill("input[name=login]", "mk")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")

            page.goto(server + "/marketing/segments/new")
            page.fill("input[name=name]", "华南客户")
            page.fill("#condition", '{"field": "province", "op": "eq", "value": "广东"}')
            expect(page.locator("#live-count")).to_have_text("2")  # the live count, before saving
            no_sideways_scroll()
            page.click("#builder button[type=submit]")
            expect(page.locator("#member-count")).to_have_text("2")
            expect(page.locator("#build-ms")).to_be_visible()
            no_sideways_scroll()

            page.goto(server + "/marketing/campaigns/new")
            page.fill("input[name=name]", "双十二")
            page.select_option("select[name=segment]", label="华南客户 (2)")
            page.fill("input[name=subject_zh]", "{{ contact.name }}，双十二优惠")
            page.fill(
                "textarea[name=body_zh]", '<p>{{ contact.name }}您好</p><a href="https://shop.example.cn/">选购</a>'
            )
            page.fill("input[name=cost]", "300")
            no_sideways_scroll()
            page.click("form.card button[type=submit]")
            expect(page.locator("h1")).to_contain_text("双十二")
            campaign_url = page.url
            no_sideways_scroll()

            page.click("form[action$='/preview'] button")
            expect(page.locator("#subject")).to_contain_text("双十二优惠")
            no_sideways_scroll()
            page.goto(campaign_url)
            page.fill("input[name=to]", "me@example.com")
            page.click("form[action$='/test'] button")
            _wait(lambda: len(sink.to("me@example.com")) == 1)
            assert str(sink.to("me@example.com")[0]["Subject"]).startswith("[TEST] ")

            page.click("#send")
            _wait(lambda: len(sink.messages) == 3)
            page.goto(campaign_url)
            expect(page.locator("#delivered")).to_have_text("2")
            message = sink.to("li.lei@example.cn")[0]
            html = next(part for part in message.walk() if part.get_content_type() == "text/html").get_content()
            click = html.split('href="')[1].split('"')[0]
            assert "/marketing/public/click/" in click
            # the shop is outside this machine (no network here): the redirect is checked, not followed
            answer = phone.request.get(click, max_redirects=0)
            assert answer.status == 302 and answer.headers["location"] == "https://shop.example.cn/"

            page.goto(campaign_url + "/roi")
            expect(page.locator("#clicks")).to_contain_text("1")
            expect(page.locator("#delivered")).to_have_text("2")
            expect(page.locator("#cost")).to_contain_text("300.00")
            no_sideways_scroll()
            assert not errors, errors
            browser.close()
    finally:
        controller.stop()
