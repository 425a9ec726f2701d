"""What a finance clerk reads: the reconciliation page in words and formatted money (en and zh-CN), subtotals per
status and currency, changes since the previous run, reviews kept until the figures change (audited), the XLSX
with numeric cells and the PDF with run date, filters, tax breakdown and paid marks."""

from __future__ import annotations

import io
import json
import re
import subprocess
from decimal import Decimal
from typing import Any

from erp_bridge.backends.fake import FakeBackend
from erp_helpers import binding, customer, drain, order

TOTAL = Decimal("293.77")


async def _setup(crm_client: Any) -> tuple[Any, dict[str, int], FakeBackend]:
    from erp_bridge import connection, reconcile, sync
    from erp_bridge.models import BackendConfig

    from core.testing import login_client, make_user

    fake = FakeBackend()
    client = await crm_client("erp_bridge")
    await connection.configure("main", "fake")
    await BackendConfig.update({BackendConfig.web_url: "https://erp.example.com/"}).where(
        BackendConfig.name == "main")
    connection.use_backend("main", fake)
    await _map_taxes()
    person = await customer("上海 Paid Trading")
    ids = {"paid": await order(person), "open": await order(person),
           "usd": await order(await customer("Boston Buyer", country="US"), currency="USD")}
    await drain()
    (paid_invoice,) = fake.sales[int((await binding(ids["paid"]))["external_id"])].invoice_ids
    fake.pay_invoice(str(paid_invoice))
    await sync.pull_invoices()
    await reconcile.run(trigger="test")
    await make_user("fin", "finance")
    await login_client(client, "fin")
    return client, ids, fake


async def _map_taxes() -> None:
    """13 % → the fake ERP's tax, where the bridge maps taxes (erp_bridge.taxes)."""
    import importlib

    try:
        taxes = importlib.import_module("erp_bridge.taxes")
    except ImportError:
        return
    await taxes.set_mapping("0.13", "1")


async def _in_chinese(client: Any, url: str) -> Any:
    from core.security.models import User

    await User.update({User.language: "zh_CN"}).where(User.login == "fin")
    try:
        return await client.get(url)
    finally:
        await User.update({User.language: "en"}).where(User.login == "fin")


def _row(html: str, reference: str) -> str:
    found = re.search(rf'<tr data-status="[a-z_]+" data-line="\d+"[^>]*>(?:(?!</tr>).)*>{reference}</a>.*?</tr>',
                      html, re.S)
    assert found, reference
    return found.group(0)


async def test_page_in_words_and_money_per_currency(crm_client: Any) -> None:
    client, ids, _ = await _setup(crm_client)
    page = await client.get("/erp/reconciliation")
    assert page.status_code == 200
    html = page.text
    paid = _row(html, f"CRM-SO-{ids['paid']}")
    assert "Matched" in paid and "€293.77" in paid and "293.7700" not in html and "✓ paid" in paid
    assert "https://erp.example.com/invoice/" in paid and "https://erp.example.com/sale/" in paid  # the fake's links
    usd = _row(html, f"CRM-SO-{ids['usd']}")
    assert "$293.77" in usd and "€" not in usd
    # subtotals per status and currency, never EUR and USD added together
    assert re.search(r'<tr data-status="matched" data-currency="EUR">.*?€587.54', html, re.S)
    assert re.search(r'<tr data-status="matched" data-currency="USD">.*?\$293.77', html, re.S)
    assert "881.31" not in html
    assert '<div class="scroll-x"><table class="list reconciliation-lines stay">' in html
    api = (await client.get(f"/api/erp/reconciliation/lines?reference=CRM-SO-{ids['paid']}")).json()["items"]
    documents = api[0]["documents"]  # a JSON column: the kernel's API gives it as the stored text
    documents = json.loads(documents) if isinstance(documents, str) else documents
    assert Decimal(str(api[0]["erp_paid"])) == TOTAL and documents[0]["state"] == "paid"
    invoices = (await client.get("/api/erp/invoices")).json()["items"]
    assert {i["kind"] for i in invoices} == {"invoice"} and all(i["deleted_at"] is None for i in invoices)
    zh = await _in_chinese(client, "/erp/reconciliation")
    assert "一致" in zh.text and "小计" in zh.text and "已付款" in zh.text and "matched<" not in zh.text


async def test_changes_and_reviews_across_runs(crm_client: Any) -> None:
    from crm_sales.models import Order
    from erp_bridge import reconcile
    from erp_bridge.models import ReconciliationLine

    from core.security.models import AuditLog
    from core.testing import csrf_of

    client, ids, _ = await _setup(crm_client)
    await Order.update({Order.total: TOTAL + 1, Order.tax: Decimal("34.80")}).where(Order.id == ids["open"])
    await reconcile.run(trigger="test")
    page = (await client.get("/erp/reconciliation?changed=new")).text
    row = _row(page, f"CRM-SO-{ids['open']}")
    assert "Amounts differ" in row and "New since the previous run" in row and "€1.00" in row
    assert f"CRM-SO-{ids['paid']}" not in page
    line_id = int(re.search(r'data-line="(\d+)"', row).group(1))  # type: ignore[union-attr]
    resp = await client.post(f"/erp/reconciliation/lines/{line_id}/review",
                             data={"csrf_token": csrf_of(page), "note": "customer agreed to 1 € more"})
    assert resp.status_code == 303
    audit = await AuditLog.select().where(AuditLog.action == "review").first()
    assert audit is not None and audit["record_id"] == str(line_id) and "customer agreed" in str(audit["changes"])
    await reconcile.run(trigger="test")  # same figures: the review holds, the mismatch is no longer new
    last = await ReconciliationLine.select().where(ReconciliationLine.reference == f"CRM-SO-{ids['open']}").order_by(
        ReconciliationLine.id, ascending=False).first()
    assert last["review_note"] == "customer agreed to 1 € more" and last["previous_status"] == "amount_mismatch"
    await Order.update({Order.total: TOTAL, Order.tax: Decimal("33.80")}).where(Order.id == ids["open"])
    await reconcile.run(trigger="test")  # figures changed (resolved): the review lapses
    page = (await client.get("/erp/reconciliation?changed=resolved")).text
    row = _row(page, f"CRM-SO-{ids['open']}")
    assert "Resolved since the previous run" in row and "customer agreed" not in row


async def test_xlsx_numbers_and_pdf_content(crm_client: Any, tmp_path: Any) -> None:
    from openpyxl import load_workbook

    client, ids, _ = await _setup(crm_client)
    xlsx = await client.get("/erp/reconciliation/export.xlsx")
    book = load_workbook(io.BytesIO(xlsx.content))
    sheet = book.worksheets[0]
    header = [c.value for c in sheet[1]]
    rows = {r[1].value: r for r in sheet.iter_rows(min_row=2)}
    paid = rows[f"CRM-SO-{ids['paid']}"]
    cell = paid[header.index("CRM total")]
    assert cell.data_type == "n" and Decimal(str(cell.value)) == TOTAL and cell.number_format == "#,##0.00"
    assert paid[header.index("Status")].value == "Matched" and paid[header.index("Paid")].value == "paid"
    assert rows[f"CRM-SO-{ids['open']}"][header.index("Paid")].value == "not paid"
    assert Decimal(str(paid[header.index("Paid amount")].value)) == TOTAL
    assert paid[header.index("Invoice date")].is_date
    assert all(not isinstance(c.value, str) or c.value not in ("True", "False") for r in rows.values() for c in r)
    totals = book.worksheets[1]
    assert [c.value for c in totals[1]][:3] == ["Status", "Currency", "Lines"]
    assert {(r[0], r[1], r[2]) for r in totals.iter_rows(min_row=2, values_only=True)} == {
        ("Matched", "EUR", 2), ("Matched", "USD", 1)}
    pdf = await client.get("/erp/reconciliation/export.pdf?currency=EUR&status=matched")
    path = tmp_path / "r.pdf"
    path.write_bytes(pdf.content)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "Filters: Status: Matched; Currency: EUR" in text and "Printed" in text and "Run" in text
    assert "CRM tax" in text and "ERP untaxed" in text and "€67.60" in text  # the tax of both EUR orders (subtotals)
    assert "✓ paid" in text and re.search(r"not\s+paid", text) and "Boston" not in text
    zh = await _in_chinese(client, "/erp/reconciliation/export.xlsx")
    assert load_workbook(io.BytesIO(zh.content)).worksheets[0].cell(row=2, column=1).value == "一致"
