"""Pages, exports (formula-safe CSV/XLSX, audited) and the PDF report (Chinese rendered), the API and panels."""

from __future__ import annotations

import io
import subprocess
from typing import Any

from erp_bridge.backends.fake import FakeBackend
from erp_helpers import binding, customer, drain, order

from core.security.access import Access


async def _setup(crm_client: Any) -> tuple[Any, int, FakeBackend]:
    from erp_bridge import connection, reconcile, sync, taxes
    from erp_bridge.backends.base import ErpPermanentError

    from core.testing import login_client, make_user

    fake = FakeBackend()
    client = await crm_client("erp_bridge")
    await connection.configure("main", "fake")
    connection.use_backend("main", fake)
    await taxes.set_mapping("0.13", "1")  # the fake ERP's 13 % tax
    person = await customer("=HYPERLINK(\"http://evil\") 上海贸易")
    good = await order(person)
    await drain()
    await order(person)  # the one the ERP refuses
    fake.fail_next("push_order", ErpPermanentError("Tryton rejected: 产品未知"))
    await drain()
    await sync.pull_invoices()
    await reconcile.run(trigger="test")
    await make_user("fin", "finance")
    await login_client(client, "fin")
    return client, good, fake


async def test_reconciliation_page_exports_and_pdf(crm_client: Any, tmp_path: Any) -> None:
    from openpyxl import load_workbook

    from core.security.models import AuditLog

    client, good, _ = await _setup(crm_client)
    page = await client.get("/erp/reconciliation")
    assert page.status_code == 200 and f"CRM-SO-{good}" in page.text and 'data-status="failed"' in page.text
    only = await client.get("/erp/reconciliation?status=matched")
    assert f"CRM-SO-{good}" in only.text and f"CRM-SO-{good + 1}" not in only.text
    csv_resp = await client.get("/erp/reconciliation/export.csv")
    text = csv_resp.content.decode("utf-8-sig")
    assert "'=HYPERLINK" in text and "\n=HYPERLINK" not in text and ",=HYPERLINK" not in text
    xlsx = await client.get("/erp/reconciliation/export.xlsx")
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    customers = [row[2] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert customers and all(c.startswith("'=") for c in customers)
    pdf = await client.get("/erp/reconciliation/export.pdf")
    assert pdf.headers["content-type"] == "application/pdf"
    path = tmp_path / "r.pdf"
    path.write_bytes(pdf.content)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    assert f"CRM-SO-{good}" in text and "上海贸易" in text and "产品未知" in text
    fonts = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True).stdout
    assert any(n in fonts for n in ("WenQuanYi", "Noto", "Source", "CJK")), fonts
    exports = await AuditLog.count().where(AuditLog.action == "export")
    assert exports >= 3


async def test_failed_list_redrive_api_and_order_panel(crm_client: Any) -> None:
    from core import hooks
    from core.security import access, principal
    from core.testing import csrf_of

    client, good, _ = await _setup(crm_client)
    failed_id = (await binding(good + 1))["id"]
    page = await client.get("/erp/failed")
    assert "产品未知" in page.text
    api = await client.get("/api/erp/bindings?state=failed")
    assert [i["id"] for i in api.json()["items"]] == [failed_id]
    resp = await client.post(f"/erp/bindings/{failed_id}/redrive", data={"csrf_token": csrf_of(page.text)})
    assert resp.status_code == 303
    await drain()
    assert (await binding(good + 1))["state"] == "synced"
    who = await principal.load((await _user_id("fin")), implied=access.policy().implied)
    panels = await hooks.call("crm_record_panels", model="crm_sales.order",
                                   record_id=good, access=Access(who))
    (panel,) = [p for p in panels if p.key == "erp_bridge"]
    assert panel.context["s"]["state"] == "synced" and panel.context["s"]["external_number"]
    refused = await client.post("/api/erp/bindings", json={"reference": "x"})
    assert refused.status_code in (403, 405, 422)


async def _user_id(login: str) -> int:
    from core.security.models import User

    return int((await User.select(User.id).where(User.login == login).first())["id"])
