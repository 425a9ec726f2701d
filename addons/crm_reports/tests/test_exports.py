"""The builder over HTTP, then every exit of a report: CSV (rows equal, formulas neutralised), XLSX (same, Excel's
row limit refused), PDF in Chinese with the chart and an embedded CJK font, each export audited; schedules: a bad
cron refused on save, a run e-mailed with its attachment to a local SMTP server and logged, a failed run logged
and its owner told."""

from __future__ import annotations

import csv
import email
import io
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from reports_helpers import DEALS, Org, build_org

from core.testing import MailInbox as Inbox
from core.testing import csrf_of, free_port, login_client


async def test_pages_exports_and_api(crm_client: Any, tmp_path: Path, monkeypatch: Any) -> None:
    """The HTTP tests share one app and one organisation (the test budget): dashboards' KPI colours and full
    screen, then the builder and every export and schedule, then the JSON API as two reps."""
    from test_dashboards import kpi_thresholds_colour_and_full_screen_refreshes
    from test_reports_api import datasets_reports_results_and_dashboards, kernel_api_reports_and_dashboards

    from core.runtime import current

    client = await crm_client("crm_sales", "crm_reports")
    org = await build_org(current(), deals=24)
    await kpi_thresholds_colour_and_full_screen_refreshes(client, org)
    await build_export_and_schedule(client, org, tmp_path, monkeypatch)
    await datasets_reports_results_and_dashboards(client, org)
    await kernel_api_reports_and_dashboards(client, org)


async def build_export_and_schedule(client: Any, org: Org, tmp_path: Path, monkeypatch: Any) -> None:
    from crm_reports import exports, schedules
    from crm_reports.models import ScheduleRun

    from core.models import Notification
    from core.runtime import current
    from core.security.models import AuditLog
    from core.security.users import set_preferences

    await set_preferences(org.ids["manager"], language="zh_CN", timezone="", has_email_notifications=False)
    await login_client(client, "manager")
    form = await client.get(f"/reports/reports/new?dataset={DEALS}")
    assert form.status_code == 200 and "created_at:month" in form.text
    token = csrf_of(form.text)
    base = {"csrf_token": token, "dataset": DEALS, "name": "来源报表", "dim1": "source", "dim2": "state",
            "measures": ["count", "expected_revenue"], "chart": "stacked_bar", "totals": "1"}
    # a bad field is refused on save, naming it, and nothing is stored
    bad = await client.post("/reports/reports/new", data={**base, "dim2": "colour"})
    assert bad.status_code == 422 and "colour" in bad.text
    bad = await client.post("/reports/reports/new", data={**base, "condition": '{"field": "nope", "op": "eq"}'})
    assert bad.status_code == 422 and "nope" in bad.text
    api = await client.post("/reports/api/query", json={"dataset": "crm_nope.things"},
                            headers={"X-CSRF-Token": token})
    assert api.status_code == 422 and "crm_nope.things" in api.json()["message"]
    saved = await client.post("/reports/reports/new", data=base)
    assert saved.status_code == 303, saved.text[:500]
    url = saved.headers["location"]
    page = await client.get(url)
    assert page.status_code == 200 and "来源报表" in page.text
    assert "<svg" in page.text, page.text[page.text.find("<main"):][:3000]
    assert "总计" in page.text
    mine = [d for d in org.deals if d["owner"] in (org.ids["rep1"], org.ids["rep2"], org.ids["manager"])]
    groups = {(d["source"], d["state"]) for d in mine}
    # CSV: one line per group, the formula-looking source neutralised; streamed in batches (of 2 here: the
    # pieces must join into every row, none lost or doubled at a batch's edge)
    from core import datasets

    whole = datasets.stream
    monkeypatch.setattr(datasets, "stream", lambda acc, q, **kw: whole(acc, q, batch=2))
    got = await client.get(f"{url}/export.csv")
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(got.text.lstrip("\ufeff"))))
    assert len(rows) == 1 + len(groups)
    assert sum(int(r[2]) for r in rows[1:]) == len(mine)
    assert any(r[0].startswith("'=cmd") for r in rows[1:]) and not any(r[0].startswith("=") for r in rows)
    # XLSX: the same rows, the same neutralisation; past Excel's limit refused with a clear message
    from openpyxl import load_workbook

    got = await client.get(f"{url}/export.xlsx")
    assert got.status_code == 200
    sheet = load_workbook(io.BytesIO(got.content)).active
    values = list(sheet.iter_rows(values_only=True))
    assert len(values) == 1 + len(groups) and any(str(v[0]).startswith("'=cmd") for v in values[1:])
    monkeypatch.setattr(exports, "EXCEL_MAX_ROWS", 3)
    refused = await client.get(f"{url}/export.xlsx")
    assert refused.status_code == 400 and "Excel" in refused.text
    monkeypatch.undo()
    # PDF in the reader's language (zh-CN): the chart as SVG, the Chinese title, an embedded CJK font
    got = await client.get(f"{url}/export.pdf")
    assert got.status_code == 200 and got.content.startswith(b"%PDF")
    (tmp_path / "r.pdf").write_bytes(got.content)
    text = subprocess.run(["pdftotext", str(tmp_path / "r.pdf"), "-"], capture_output=True, text=True).stdout
    fonts = subprocess.run(["pdffonts", str(tmp_path / "r.pdf")], capture_output=True, text=True).stdout
    assert "来源报表" in text and "总计" in text and ("WenQuanYi" in fonts or "Noto" in fonts)
    audited = await AuditLog.select(AuditLog.detail).where((AuditLog.action == "export")
                                                           & (AuditLog.model == "crm_reports.report"))
    assert sorted(a["detail"].split(":")[0] for a in audited) == ["csv", "pdf", "xlsx"]
    assert f"csv: {len(groups)} rows" in [a["detail"] for a in audited]  # counted as streamed
    # schedules: a cron that does not parse is refused on save, naming it
    report_id = int(url.rsplit("/", 1)[1])
    bad = await client.post(f"{url}/schedules", data={"csrf_token": token, "cron": "every monday", "format": "pdf"})
    assert bad.status_code == 422 and "cron" in bad.text
    ok = await client.post(f"{url}/schedules", data={"csrf_token": token, "cron": "0 8 * * 1", "format": "xlsx",
                                                      "roles": ["finance"]})
    assert ok.status_code == 303
    # each recipient's copy is computed as them: finance gets one once the report is shared with finance
    shared = await client.post(f"{url}/share", data={"csrf_token": token, "roles": ["finance"]})
    assert shared.status_code == 303
    # and with one colleague, picked on the page by name: they may open it, other reps may not
    from crm_reports import reports as saved

    from core.errors import NotFound

    page = await client.get(url)
    assert "共享给用户" in page.text and f'<option value="{org.ids["rep3"]}">Rep3</option>' in page.text
    one = await client.post(f"{url}/share", data={"csrf_token": token, "roles": ["finance"],
                                                   "users": [str(org.ids["rep3"])]})
    assert one.status_code == 303 and f'value="{org.ids["rep3"]}" selected' in (await client.get(url)).text
    assert (await saved.get(await org.acc("rep3"), report_id))["shared_users"] == [org.ids["rep3"]]
    with pytest.raises(NotFound):
        await saved.get(await org.acc("rep2"), report_id)
    from crm_reports.models import Schedule

    schedule_id = (await Schedule.select(Schedule.id).where(Schedule.report == report_id).first())["id"]
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        runtime = current()
        runtime.settings = runtime.settings.with_(smtp_host="127.0.0.1", smtp_port=port, smtp_from="crm@example.com")
        log = await schedules.run(schedule_id)
    finally:
        controller.stop()
    assert log["ok"], log
    assert sorted(m["To"] for m in inbox.messages) == ["fin@example.com", "manager@example.com"]
    msg = next(m for m in inbox.messages if m["To"] == "manager@example.com")
    assert "来源报表" in str(email.header.make_header(email.header.decode_header(msg["Subject"])))
    attachment = next(p for p in msg.walk() if p.get_filename())
    sheet = load_workbook(io.BytesIO(attachment.get_payload(decode=True))).active
    assert sheet.max_row == 1 + len(groups)
    # no SMTP server: the run is logged as failed and the owner told
    runtime.settings = runtime.settings.with_(smtp_host="")
    failed = await schedules.run(schedule_id)
    assert not failed["ok"] and "CRM_SMTP_HOST" in failed["detail"]
    runs = await ScheduleRun.select(ScheduleRun.ok).where(ScheduleRun.schedule == schedule_id).order_by(ScheduleRun.id)
    assert [r["ok"] for r in runs] == [True, False]
    told = await Notification.select().where((Notification.user_id == org.ids["manager"])
                                             & (Notification.url == "/reports/schedules"))
    assert len(told) == 1 and "CRM_SMTP_HOST" in told[0]["body"]
    page = await client.get(url)
    assert "0 8 * * 1" in page.text


def test_csv_writes_dates_to_the_second_in_the_readers_zone() -> None:
    """A date-time dimension is written as a spreadsheet reads it and to the second, in the reader's time zone
    (the page shows it to the minute: rows a second apart would look alike in a file); a date as ISO."""
    import datetime as dt

    from crm_reports import exports

    from core import datasets
    from core.formatting import zone

    columns = [datasets.ResultColumn("created_at", "Created", "dimension"),
               datasets.ResultColumn("due", "Due", "dimension"), datasets.ResultColumn("count", "Count", "measure")]
    moment = dt.datetime(2026, 1, 1, 16, 0, 5, tzinfo=dt.UTC)
    lines = list(exports.csv_lines(datasets.Result(columns, [
        {"created_at": moment, "due": dt.date(2026, 2, 3), "count": 2},
        {"created_at": moment.replace(tzinfo=None) + dt.timedelta(seconds=1), "due": None, "count": 1}])))
    local = moment.astimezone(zone())
    assert lines[1] == f"{local:%Y-%m-%d %H:%M:%S},2026-02-03,2\r\n"
    assert lines[2].startswith(f"{local + dt.timedelta(seconds=1):%Y-%m-%d %H:%M:%S},")
