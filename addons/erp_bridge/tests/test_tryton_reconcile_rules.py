"""Reconciliation rules that follow the money, each against a real trytond (docs/finance.md): a credit note,
a cancelled invoice, a deleted draft invoice and Tryton's replacement, an invoice with our reference and no sale,
orders in two currencies; the order's ERP state after the sale is done, and a sale renamed in Tryton."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from erp_bridge.testing.tryton_server import TrytonConnection, post_and_pay_invoice, proteus_config
from erp_helpers import binding, boot_bridge, customer, drain, order

pytestmark = pytest.mark.tryton

TOTAL = Decimal("293.77")  # erp_helpers.LINES at 13 %: 259.97 + 33.80


async def _bridge(crm_boot: Any, tryton: TrytonConnection) -> None:
    await boot_bridge(crm_boot, None, kind="tryton", url=tryton.url, database=tryton.database,
                      username=tryton.username, password=tryton.password)


async def _sent(tryton: TrytonConnection, currency: str = "EUR", n: int = 1) -> list[tuple[int, Any]]:
    """``n`` confirmed orders pushed to Tryton: (order id, its Tryton invoice as a proteus record)."""
    from proteus import Model

    person = await customer()
    ids = [await order(person, currency=currency) for _ in range(n)]
    await drain()
    Sale = Model.get("sale.sale", config=proteus_config(tryton))
    out = []
    for oid in ids:
        assert (await binding(oid))["state"] == "synced"
        (sale,) = Sale.find([("reference", "=", f"CRM-SO-{oid}")])
        (invoice,) = sale.invoices
        out.append((oid, invoice))
    return out


async def _lines() -> dict[str, dict[str, Any]]:
    from erp_bridge import reconcile
    from erp_bridge.models import ReconciliationLine

    result = await reconcile.run(trigger="test")
    return {r["reference"]: dict(r) for r in await ReconciliationLine.select().where(
        ReconciliationLine.run == result["run_id"]).output(load_json=True)}


def _credit(tryton: TrytonConnection, invoice: Any) -> None:
    """Tryton's "Credit" with refund on a posted invoice: the credit note is posted and reconciled with it."""
    from proteus import Wizard

    invoice.click("post")
    credit = Wizard("account.invoice.credit", [invoice], config=proteus_config(tryton))
    credit.form.with_refund = True
    credit.execute("credit")


async def test_credit_note_takes_the_order_back_to_zero(crm_boot: Any, tryton: TrytonConnection) -> None:
    from crm_sales.models import Order

    await _bridge(crm_boot, tryton)
    (credited, invoice), (kept, _) = await _sent(tryton, n=2)
    _credit(tryton, invoice)
    lines = await _lines()
    line = lines[f"CRM-SO-{credited}"]
    # before: the cancelled invoice was dropped, the credit note (no sale on its lines) unseen: "matched, paid"
    assert line["status"] == "amount_mismatch" and line["mismatched"] == "untaxed,tax,total"
    assert (line["crm_total"], line["erp_total"], line["difference"]) == (TOTAL, 0, TOTAL)
    assert line["detail"] == "Credited in the ERP" and line["credit_notes"] and not line["is_paid"]
    assert line["erp_paid"] == 0 and line["erp_outstanding"] == 0
    kinds = sorted((d["kind"], d["state"], d["total"], d["counted"]) for d in line["documents"])
    assert kinds == [("credit_note", "paid", "-293.77", True), ("invoice", "cancelled", "293.77", True)]
    assert lines[f"CRM-SO-{kept}"]["status"] == "matched"
    # the CRM order cancelled too: both sides at zero
    await Order.update({Order.state: "cancelled"}).where(Order.id == credited)
    line = (await _lines())[f"CRM-SO-{credited}"]
    assert line["status"] == "matched" and line["crm_total"] == 0 and line["erp_total"] == 0


async def test_cancelled_invoice_is_not_money(crm_boot: Any, tryton: TrytonConnection) -> None:
    await _bridge(crm_boot, tryton)
    ((oid, invoice),) = await _sent(tryton)
    invoice.click("cancel")
    line = (await _lines())[f"CRM-SO-{oid}"]
    assert line["status"] == "amount_mismatch" and line["erp_total"] == 0 and line["crm_total"] == TOTAL
    assert line["detail"] == "An invoice was cancelled in the ERP"
    assert [(d["state"], d["counted"]) for d in line["documents"]] == [("cancelled", False)]


async def test_deleted_draft_invoice_and_its_replacement_count_once(crm_boot: Any, tryton: TrytonConnection) -> None:
    from erp_bridge import connection, mirror, sync
    from erp_bridge.models import RemoteInvoice
    from proteus import Model

    await _bridge(crm_boot, tryton)
    (oid, invoice), (other, other_invoice) = await _sent(tryton, n=2)
    assert await sync.pull_invoices() == 2
    Invoice = Model.get("account.invoice", config=proteus_config(tryton))
    Invoice.delete([invoice])  # Tryton makes a new draft invoice for the sale at once
    line = (await _lines())[f"CRM-SO-{oid}"]
    assert line["status"] == "matched" and line["erp_total"] == TOTAL, line
    gone = await RemoteInvoice.select().where(RemoteInvoice.external_id == str(invoice.id)).first()
    assert gone["deleted_at"] is not None and len(line["documents"]) == 1
    assert line["documents"][0]["external_id"] != str(invoice.id)
    # the keyset sweep finds a deletion the incremental pull never saw
    Invoice.delete([other_invoice])
    cfg = await connection.active()
    marked, _waited = await mirror.sweep_deleted(cfg, connection.open_backend(cfg), limit=1)
    assert marked == 1
    assert (await RemoteInvoice.select(RemoteInvoice.deleted_at).where(
        RemoteInvoice.external_id == str(other_invoice.id)).first())["deleted_at"] is not None
    assert (await _lines())[f"CRM-SO-{other}"]["status"] == "matched"


async def test_invoice_with_our_reference_and_no_sale_is_missing_in_crm(crm_boot: Any,
                                                                         tryton: TrytonConnection) -> None:
    from proteus import Model

    await _bridge(crm_boot, tryton)
    ((oid, _),) = await _sent(tryton)
    cfg = proteus_config(tryton)
    party = Model.get("party.party", config=cfg).find([("code", "like", "CRM-%")])[0]
    (product,) = Model.get("product.product", config=cfg).find([("code", "=", "P-002")])
    invoice = Model.get("account.invoice", config=cfg)(type="out", party=party, reference="CRM-SO-987654")
    line = invoice.lines.new()
    line.product, line.quantity, line.unit_price = product, 2, Decimal("80.00")
    invoice.save()
    extra = Model.get("account.invoice", config=cfg)(type="out", party=party, reference=f"CRM-SO-{oid}")
    line = extra.lines.new()
    line.product, line.quantity, line.unit_price = product, 1, Decimal("80.00")
    extra.save()
    lines = await _lines()
    stray = lines["CRM-SO-987654"]
    assert stray["status"] == "missing_in_crm" and stray["erp_total"] == Decimal("180.80")
    assert stray["detail"] == "No CRM order has this reference" and stray["order_id"] is None
    # an invoice made by hand for an existing order is that order's money too
    mine = lines[f"CRM-SO-{oid}"]
    assert mine["status"] == "amount_mismatch" and mine["erp_total"] == TOTAL + Decimal("90.40")
    assert len(mine["documents"]) == 2


async def test_totals_per_currency_and_paid_outstanding(crm_boot: Any, tryton: TrytonConnection) -> None:
    from erp_bridge.reports import subtotals

    await _bridge(crm_boot, tryton)
    eur = await _sent(tryton, n=2)
    ((usd, usd_invoice),) = await _sent(tryton, currency="USD")
    post_and_pay_invoice(tryton, str(eur[0][1].id))
    usd_invoice.click("post")
    lines = await _lines()
    paid, posted = lines[f"CRM-SO-{eur[0][0]}"], lines[f"CRM-SO-{usd}"]
    assert paid["is_paid"] and (paid["erp_paid"], paid["erp_outstanding"]) == (TOTAL, 0)
    assert paid["documents"][0]["payments"] == [{"date": str(paid["invoice_date"]), "amount": "293.77",
                                                 "kind": "payment"}]
    assert not posted["is_paid"] and (posted["erp_paid"], posted["erp_outstanding"]) == (0, TOTAL)
    assert posted["due_date"] is not None and posted["erp_currency"] == "USD"
    draft = lines[f"CRM-SO-{eur[1][0]}"]
    assert (draft["erp_paid"], draft["erp_outstanding"]) == (0, TOTAL)
    totals = {(t["status"], t["currency"]): t for t in subtotals(list(lines.values()))}
    assert set(totals) == {("matched", "EUR"), ("matched", "USD")}  # never 6,757.05 of EUR and USD
    assert totals[("matched", "EUR")]["crm_total"] == 2 * TOTAL and totals[("matched", "EUR")]["n"] == 2
    assert totals[("matched", "USD")]["erp_total"] == TOTAL
    assert totals[("matched", "EUR")]["erp_outstanding"] == TOTAL


async def test_order_follows_the_sale_after_it_is_done_and_when_renamed(crm_boot: Any,
                                                                          tryton: TrytonConnection) -> None:
    from erp_bridge import status
    from proteus import Model

    await _bridge(crm_boot, tryton)
    (done, invoice), (renamed, _) = await _sent(tryton, n=2)
    assert (await binding(done))["remote_state"] == "processing"
    post_and_pay_invoice(tryton, str(invoice.id))
    Sale = Model.get("sale.sale", config=proteus_config(tryton))
    (sale,) = Sale.find([("reference", "=", f"CRM-SO-{renamed}")])
    sale.reference = f"CRM-SO-{renamed}-corrected"
    sale.save()
    lines = await _lines()
    assert (await binding(done))["remote_state"] == "done"
    assert (await status.order_status(done))["is_paid"]
    line = lines[f"CRM-SO-{renamed}"]
    assert line["status"] == "matched" and line["external_ids"] == str(sale.id)
    assert line["detail"] == "The ERP sale's reference was changed"
    assert line["sale_number"].endswith(f"[CRM-SO-{renamed}-corrected]")
    assert f"CRM-SO-{renamed}-corrected" not in lines  # the order's own sale, not a stranger
