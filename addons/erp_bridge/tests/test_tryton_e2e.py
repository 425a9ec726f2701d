"""End to end against a real trytond: a CRM order confirmed → party and sale in Tryton → invoice → posted and
paid in Tryton → the pull brings the paid state back onto the CRM order → reconciliation says matched."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from erp_bridge.testing.tryton_server import TrytonConnection, post_and_pay_invoice, tax_ids
from erp_helpers import binding, boot_bridge, customer, drain, order

pytestmark = pytest.mark.tryton


async def _bridge(crm_boot: Any, tryton: TrytonConnection, password: str | None = None) -> None:
    await boot_bridge(crm_boot, None, kind="tryton", url=tryton.url, database=tryton.database,
                      username=tryton.username, password=password or tryton.password,
                      taxes={"0.13": tax_ids(tryton)[Decimal("0.13")], "0": ""})


async def _accepted_order(currency: str = "EUR") -> int:
    """The real crm_sales path: lead → deal → quote → sent → accepted (publishes crm_sales_order_confirmed)."""
    from crm_contacts.api import add_address
    from crm_sales import acceptance, leads, pipeline, quotes
    from crm_sales.models import Opportunity

    from core.security import access, principal
    from core.security.access import Access
    from core.testing import make_user

    rep = Access(await principal.load(await make_user("rep", "sales_rep"), implied=access.policy().implied))
    lead = await leads.create_lead(rep, {"name": "Widgets", "contact_name": "王伟", "email": "wang@example.org",
                                         "language": "zh_CN"})
    opp = await pipeline.qualify(rep, lead)
    person = (await Opportunity.select(Opportunity.person).where(Opportunity.id == opp).first())["person"]
    await add_address(person, line1="1 Century Ave", city="Shanghai", country="CN")
    quote = await quotes.create_quote(rep, opp, [
        {"code": "P-001", "description": "Widget", "quantity": "2", "unit_price": "100.00", "tax_rate": "0.13"},
        {"code": "P-003", "description": "Gadget 小工具", "quantity": "3", "unit_price": "19.99",
         "tax_rate": "0.13"}], currency=currency)
    await acceptance.send(rep, quote)
    return await acceptance.accept(quote, by="王伟", via="test")


async def test_order_to_paid_invoice_round_trip(crm_boot: Any, tryton: TrytonConnection) -> None:
    from erp_bridge import reconcile, status, sync
    from erp_bridge.testing.tryton_server import proteus_config
    from proteus import Model

    await _bridge(crm_boot, tryton)
    order_id = await _accepted_order()
    assert await drain() == [("erp_bridge.push_order", "done")]
    b = await binding(order_id)
    assert b["state"] == "synced" and b["remote_state"] == "processing" and b["external_number"]
    cfg = proteus_config(tryton)
    (sale,) = Model.get("sale.sale", config=cfg).find([("reference", "=", f"CRM-SO-{order_id}")])
    assert sale.party.code.startswith("CRM-C-") and str(sale.total_amount) == "293.77"
    (invoice,) = sale.invoices
    assert await sync.pull_invoices() == 1
    assert not (await status.order_status(order_id))["is_paid"]
    post_and_pay_invoice(tryton, str(invoice.id))
    assert await sync.pull_invoices() >= 1
    info = await status.order_status(order_id)
    assert info["is_paid"] and info["invoice_number"]
    result = await reconcile.run(trigger="test")
    assert result["counts"]["matched"] == 1 and result["lines"] == 1, result
    # a retried push (duplicate message) finds the sale by reference: still one sale in Tryton
    from erp_bridge.models import Binding

    await Binding.update({Binding.state: "in_flight", Binding.external_id: "", Binding.attempts: 1}).where(
        Binding.id == b["id"])  # as left by a run killed before it wrote the binding
    assert await sync.push_order(order_id) == "resumed"
    assert len(Model.get("sale.sale", config=cfg).find([("reference", "=", f"CRM-SO-{order_id}")])) == 1


async def test_tryton_refusals_end_in_failed_entries_that_redrive(crm_boot: Any, tryton: TrytonConnection) -> None:
    from erp_bridge import connection, status

    await _bridge(crm_boot, tryton, password="wrong")
    order_id = await order(await customer())
    await drain()
    b = await binding(order_id)
    assert b["state"] == "failed" and "wrong username or password" in b["last_error"]
    await connection.configure("main", "tryton", url=tryton.url, database=tryton.database,
                               username=tryton.username, password=tryton.password)
    await status.redrive(b["id"])
    await drain()
    assert (await binding(order_id))["state"] == "synced"
    bad = await order(await customer("Zürich AG"), lines=(("P-404", "Nope", "1", "1.00"),))
    cny = await order(await customer("深圳 Buyer"), currency="CNY")
    await drain()
    assert "unknown product code(s) in Tryton: P-404" in (await binding(bad))["last_error"]
    assert "Tryton has no currency 'CNY'" in (await binding(cny))["last_error"]
