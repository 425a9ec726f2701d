"""The customer portal (crm_service) with crm_sales and erp_bridge installed: their sections show the signed-in
customer's quotes (PDF, accept online), orders and invoices through the kernel's portal hooks — crm_service names
neither addon. The isolation matrix of crm_service's portal test, extended to these sections: another customer's
quote, order or invoice id is a 404 on every page, download and action, never data."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

import httpx
from crm_sales import acceptance, leads, pipeline, quotes
from crm_sales.models import Opportunity, Order, Quote
from crm_service import portal
from erp_bridge import connection, taxes
from erp_bridge.backends.fake import FakeBackend
from erp_bridge.models import RemoteInvoice

from core.security.access import Access, policy
from core.security.models import AuditLog
from core.security.principal import load
from core.testing import make_user

BASE = "/service/public/portal"
PASSWORD = "Harbour-Lantern-93!"
LINES = [{"code": "SRV-1", "description": "机架式服务器", "quantity": "2", "unit_price": "1250.50", "tax_rate": "0"}]


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]*)"', html)
    assert found, "no CSRF field"
    return found.group(1)


async def _customer(rep: Access, name: str, email: str) -> tuple[int, int]:
    """A deal for a new contact with a sent quote: (person id, quote id)."""
    lead = await leads.create_lead(rep, {"name": f"{name} deal", "contact_name": name, "email": email,
                                         "expected_revenue": "2501", "language": "zh_CN"})
    opp = await pipeline.qualify(rep, lead)
    person = (await Opportunity.select(Opportunity.person).where(Opportunity.id == opp).first())["person"]
    quote = await quotes.create_quote(rep, opp, LINES, valid_until=dt.date.today() + dt.timedelta(days=30))
    await acceptance.send(rep, quote)
    return int(person), quote


async def _signed_in(app_client: httpx.AsyncClient, person: int, email: str) -> httpx.AsyncClient:
    link = await portal.invite(person, email)
    client = httpx.AsyncClient(transport=app_client._transport, base_url="http://testserver", follow_redirects=False,
                               headers={"accept-language": "zh-CN"})
    assert (await client.post(link, data={"password": PASSWORD})).status_code == 303
    return client


async def _invoice(order_id: int, number: str, *, paid: bool) -> int:
    from erp_bridge.models import BackendConfig

    backend = (await BackendConfig.select(BackendConfig.id).first())["id"]
    order = await Order.select().where(Order.id == order_id).first()
    rows = await RemoteInvoice.insert(RemoteInvoice(
        backend=backend, external_id=number, number=number, order_reference=order["reference"], state="posted",
        currency=order["currency"], untaxed=order["untaxed"], tax=order["tax"], total=order["total"],
        amount_to_pay=Decimal(0) if paid else order["total"], is_paid=paid, invoice_date=dt.date(2026, 11, 30),
    )).returning(RemoteInvoice.id)
    return int(rows[0]["id"])


async def test_quotes_orders_and_invoices_of_the_customer_only(crm_client: Any) -> None:
    staff = await crm_client("crm_service", "erp_bridge")
    await connection.configure("main", "fake")
    connection.use_backend("main", FakeBackend())
    await taxes.set_mapping("0", "")
    rep = Access(await load(await make_user("rep1", "sales_rep"), implied=policy().implied))
    zhou, zhou_quote = await _customer(rep, "周一", "zhou@example.cn")
    wu, wu_quote = await _customer(rep, "Wu Er", "wu@example.cn")
    draft = await quotes.create_quote(rep, (await Quote.select(Quote.opportunity).where(
        Quote.id == zhou_quote).first())["opportunity"], LINES)  # never sent: not the customer's to see
    wu_order = await acceptance.accept(wu_quote, by="Wu Er", via="link")
    wu_invoice = await _invoice(wu_order, "INV/WU/1", paid=True)

    customer = await _signed_in(staff, zhou, "zhou@example.cn")
    other = await _signed_in(staff, wu, "wu@example.cn")
    number = (await Quote.select(Quote.number).where(Quote.id == zhou_quote).first())["number"]

    home = await customer.get(f"{BASE}/")
    assert home.status_code == 200
    assert "您的报价单" in home.text and number in home.text and "¥2,501.00" in home.text  # kernel money, zh-CN
    assert f'{BASE}/r/crm_sales_quotes/{zhou_quote}"' in home.text
    assert f"/r/crm_sales_quotes/{wu_quote}\"" not in home.text and "INV/WU/1" not in home.text
    assert f"/{draft}\"" not in home.text

    page = await customer.get(f"{BASE}/r/crm_sales_quotes/{zhou_quote}")
    assert page.status_code == 200 and "机架式服务器" in page.text and "接受报价" in page.text
    token = _csrf(page.text)
    pdf = await customer.get(f"{BASE}/r/crm_sales_quotes/{zhou_quote}/pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF") and pdf.headers["content-type"] == \
        "application/pdf"

    # the matrix: the other customer's quote, order and invoice (and a draft, an unknown section) are 404s
    wu_token = _csrf((await other.get(f"{BASE}/")).text)
    for client, paths in (
            (customer, [f"crm_sales_quotes/{wu_quote}", f"crm_sales_quotes/{wu_quote}/pdf",
                        f"crm_sales_orders/{wu_order}", f"erp_bridge_invoices/{wu_invoice}",
                        f"crm_sales_quotes/{draft}", f"no_such_section/{zhou_quote}",
                        f"crm_sales_quotes/{zhou_quote}/nope"]),
            (other, [f"crm_sales_quotes/{zhou_quote}", f"crm_sales_quotes/{zhou_quote}/pdf"])):
        for path in paths:
            response = await client.get(f"{BASE}/r/{path}")
            assert response.status_code == 404, (path, response.status_code)
            assert "机架式服务器" not in response.text and "INV/WU/1" not in response.text
    for client, csrf, quote_id in ((customer, token, wu_quote), (other, wu_token, zhou_quote),
                                   (customer, token, draft)):
        for action in ("accept", "decline"):
            response = await client.post(f"{BASE}/r/crm_sales_quotes/{quote_id}/{action}",
                                         data={"name": "Mallory", "csrf_token": csrf})
            assert response.status_code == 404, (quote_id, action, response.status_code)
    assert (await Quote.select(Quote.state).where(Quote.id == zhou_quote).first())["state"] == "sent"

    # accepting online: the session's CSRF token and a name are required; then the acceptance link's own logic
    no_csrf = await customer.post(f"{BASE}/r/crm_sales_quotes/{zhou_quote}/accept", data={"name": "周一"})
    assert no_csrf.status_code == 403
    nameless = await customer.post(f"{BASE}/r/crm_sales_quotes/{zhou_quote}/accept", data={"csrf_token": token})
    assert nameless.status_code == 422
    accepted = await customer.post(f"{BASE}/r/crm_sales_quotes/{zhou_quote}/accept",
                                   data={"name": "周一", "csrf_token": token})
    assert accepted.status_code == 303 and accepted.headers["location"] == f"{BASE}/r/crm_sales_quotes/{zhou_quote}"
    quote = await Quote.select().where(Quote.id == zhou_quote).first()
    assert quote["state"] == "accepted" and quote["decided_by"] == "周一"
    audit = await AuditLog.select(AuditLog.detail).where(
        (AuditLog.action == "accept") & (AuditLog.record_id == str(zhou_quote))).first()
    assert audit["detail"] == "by 周一 via portal zhou@example.cn"
    order = await Order.select().where(Order.quote == zhou_quote).first()
    assert order["person"] == zhou
    again = await customer.post(f"{BASE}/r/crm_sales_quotes/{zhou_quote}/accept",
                                data={"name": "周一", "csrf_token": token})
    assert again.status_code == 303 and await Order.count().where(Order.quote == zhou_quote) == 1
    assert "接受报价" not in (await customer.get(f"{BASE}/r/crm_sales_quotes/{zhou_quote}")).text

    invoice = await _invoice(order["id"], "INV/ZHOU/1", paid=False)
    home = await customer.get(f"{BASE}/", headers={"accept-language": "en"})
    assert "Your orders" in home.text and order["reference"] in home.text and "CN¥2,501.00" in home.text
    assert "Your invoices" in home.text and "INV/ZHOU/1" in home.text and 'data-paid="unpaid"' in home.text
    assert (await customer.get(f"{BASE}/r/crm_sales_orders/{order['id']}")).status_code == 200
    shown = await customer.get(f"{BASE}/r/erp_bridge_invoices/{invoice}")
    assert shown.status_code == 200 and "INV/ZHOU/1" in shown.text and "未付" in shown.text
    for path in (f"crm_sales_orders/{order['id']}", f"erp_bridge_invoices/{invoice}"):
        assert (await other.get(f"{BASE}/r/{path}")).status_code == 404
    paid = await other.get(f"{BASE}/r/erp_bridge_invoices/{wu_invoice}")
    assert paid.status_code == 200 and 'data-paid="paid"' in paid.text
    # signed out (or never signed in): the sign-in page, not the record
    anonymous = await staff.get(f"{BASE}/r/crm_sales_quotes/{zhou_quote}")
    assert anonymous.status_code == 303 and anonymous.headers["location"] == f"{BASE}/login"
    await customer.aclose()
    await other.aclose()
