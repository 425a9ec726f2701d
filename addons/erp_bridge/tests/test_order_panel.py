"""The ERP panel on crm_sales' order page, through the real app: state, number, invoices, re-drive, rights."""

from __future__ import annotations

import re
from typing import Any

from erp_bridge.backends.fake import FakeBackend
from erp_helpers import binding, customer, drain, order


def _panel(html: str) -> str | None:
    found = re.search(r'<section class="card panel" data-panel="erp_bridge">(.*?)</section>', html, re.S)
    return found.group(1) if found else None


async def _orders(fake: FakeBackend) -> tuple[int, int, int]:
    """One sent (and invoiced, then paid), one refused by the ERP, one still queued."""
    from erp_bridge import sync
    from erp_bridge.backends.base import ErpPermanentError

    person = await customer("杭州 Panel Trading")
    sent = await order(person)
    await drain()
    failed = await order(person)
    fake.fail_next("push_order", ErpPermanentError("Tryton rejected: 产品未知 P-003"))
    await drain()
    queued = await order(person)  # its outbox row is not run
    (invoice_id,) = fake.sales[int((await binding(sent))["external_id"])].invoice_ids
    fake.pay_invoice(str(invoice_id))
    await sync.pull_invoices()
    return sent, failed, queued


async def test_order_page_shows_erp_panel_by_role(crm_client: Any) -> None:
    from crm_sales.models import Order
    from erp_bridge import connection, taxes

    from core.addon import Grant
    from core.security import access
    from core.testing import csrf_of, login_client, make_user

    fake = FakeBackend()
    client = await crm_client("erp_bridge")
    await connection.configure("main", "fake")
    connection.use_backend("main", fake)
    await taxes.set_mapping("0.13", "1")  # the fake ERP's 13 % tax
    sent, failed, queued = await _orders(fake)
    sent_binding = await binding(sent)

    # finance: state, Tryton number, the invoice with amount and paid, the error and a re-drive button
    await make_user("fin", "finance")
    await login_client(client, "fin")
    page = await client.get(f"/sales/orders/{sent}")
    assert page.status_code == 200, page.text[:500]
    panel = _panel(page.text)
    assert panel is not None and 'data-erp-label="sent"' in panel
    assert sent_binding["external_number"] and sent_binding["external_number"] in panel
    total = (await Order.select(Order.total).where(Order.id == sent).first())["total"]
    assert 'class="list erp-invoices"' in panel and f"{total:.2f} EUR" in panel and "<strong>Paid</strong>" in panel
    assert "erp-redrive" not in panel

    page = await client.get(f"/sales/orders/{queued}")
    assert 'data-erp-label="queued"' in (_panel(page.text) or "")

    page = await client.get(f"/sales/orders/{failed}")
    panel = _panel(page.text) or ""
    assert 'data-erp-label="failed"' in panel and "产品未知 P-003" in panel and "erp-redrive" in panel
    failed_binding = (await binding(failed))["id"]
    assert f'action="/erp/bindings/{failed_binding}/redrive"' in panel
    resp = await client.post(f"/erp/bindings/{failed_binding}/redrive", data={"csrf_token": csrf_of(page.text)},
                             headers={"referer": f"http://testserver/sales/orders/{failed}"})
    assert resp.status_code == 303 and resp.headers["location"].endswith(f"/sales/orders/{failed}")
    await drain()
    panel = _panel((await client.get(f"/sales/orders/{failed}")).text) or ""
    assert 'data-erp-label="sent"' in panel and "erp-redrive" not in panel and "产品未知" not in panel

    # a sales rep on their own order: the sync state and the invoice summary, no invoice list, no button
    rep = await make_user("rep", "sales_rep")
    await Order.update({Order.owner: rep}).where(Order.id.is_in([sent, failed]))
    await login_client(client, "rep")
    page = await client.get(f"/sales/orders/{sent}")
    assert page.status_code == 200
    panel = _panel(page.text) or ""
    assert 'data-erp-label="sent"' in panel and sent_binding["external_number"] in panel
    assert "erp-invoices" not in panel and "<strong>Paid</strong>" in panel

    # a role that may read orders but not erp_bridge's bindings sees the order and no ERP panel
    access.policy().add_grant(Grant("marketing", "crm_sales.order", ("read",)))
    await make_user("mkt", "marketing")
    await login_client(client, "mkt")
    page = await client.get(f"/sales/orders/{sent}")
    assert page.status_code == 200 and f"CRM-SO-{sent}" in page.text
    assert _panel(page.text) is None and 'data-panel="erp_bridge"' not in page.text
