"""The quote page as an editor (issue 12): lines added and removed in the browser post with gaps in their
numbering, a product's price and tax offered to the line, a quote-level discount the lines follow, an accepted
quote shown as text; its e-mail state (sending until the SMTP server took it)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from crm_sales import acceptance, quotes
from crm_sales.models import Product, Quote, QuoteLine
from sales_helpers import new_deal

from core.testing import csrf_of, login_client


async def test_quote_editor_lines_discount_and_read_only_after_acceptance(crm_client: Any) -> None:
    from sales_helpers import build_org

    from core.runtime import current

    client = await crm_client("crm_sales")
    org = await build_org(current())
    rep = await org.acc("rep1")
    await Product.insert(Product(code="SRV-1", name="Rack server", name_zh="机架式服务器", unit="台",
                                 list_price=Decimal("30000"), currency="CNY", tax_rate=Decimal("0.13")))
    opp_id = await new_deal(rep, "Servers", email="buyer@example.com")
    quote_id = await quotes.create_quote(rep, opp_id)
    await login_client(client, "rep1")
    page = (await client.get(f"/sales/quotes/{quote_id}")).text
    # the product's price and tax ride on its option, for the editor to fill the line; a template row to add
    assert 'data-price="30000' in page and 'data-tax="0.13' in page and 'id="line-template"' in page
    assert "/static/crm_sales/quote_editor.js" in page
    js = await client.get("/static/crm_sales/quote_editor.js")
    assert js.status_code == 200 and "remove-line" in js.text and "dataset.price" in js.text
    csrf = csrf_of(page)
    # rows 0 and 7 (row 3 added then removed in the browser: gone from the form); row 7 has its own discount
    saved = await client.post(f"/sales/quotes/{quote_id}", data={
        "csrf_token": csrf, "language": "zh_CN", "discount_percent": "10",
        "description_0": "机架式服务器", "quantity_0": "2", "unit_price_0": "30000", "tax_rate_0": "0.13",
        "description_7": "安装服务", "quantity_7": "1", "unit_price_7": "1000", "tax_rate_7": "0.13",
        "discount_percent_7": "5"})
    assert saved.status_code == 303
    lines = await QuoteLine.select().where(QuoteLine.quote == quote_id).order_by(QuoteLine.sequence)
    assert [(ln["description"], Decimal(ln["discount_percent"])) for ln in lines] == [
        ("机架式服务器", Decimal(10)), ("安装服务", Decimal(5))]
    quote = await Quote.select().where(Quote.id == quote_id).first()
    assert Decimal(quote["untaxed"]) == Decimal("54950.00")  # 60000 × 0.9 + 1000 × 0.95
    # the quote's discount changes: the line that followed it follows again, the one with its own stays
    page = (await client.get(f"/sales/quotes/{quote_id}")).text
    assert "Before discount" in page and "−CN¥6,050.00" in page
    again = await client.post(f"/sales/quotes/{quote_id}", data={
        "csrf_token": csrf, "language": "zh_CN", "discount_percent": "20",
        "description_0": "机架式服务器", "quantity_0": "2", "unit_price_0": "30000", "tax_rate_0": "0.13",
        "discount_percent_0": "10",
        "description_1": "安装服务", "quantity_1": "1", "unit_price_1": "1000", "tax_rate_1": "0.13",
        "discount_percent_1": "5"})
    assert again.status_code == 303
    lines = await QuoteLine.select().where(QuoteLine.quote == quote_id).order_by(QuoteLine.sequence)
    assert [Decimal(ln["discount_percent"]) for ln in lines] == [Decimal(20), Decimal(5)]
    # the editor's live figures: what saving would store, and nothing written
    typed = {"csrf_token": csrf, "discount_percent": "0", "description_0": "机架式服务器", "quantity_0": "3",
             "unit_price_0": "30000", "tax_rate_0": "0.13", "discount_percent_0": "15", "product_4": "",
             "description_4": "安装服务", "quantity_4": "1", "unit_price_4": "999.99", "tax_rate_4": "0.13"}
    shown = await client.post(f"/sales/quotes/{quote_id}/preview", data=typed)
    assert shown.status_code == 200, shown.text
    # 90000 × 0.85 + 999.99 = 77499.99 untaxed; tax 9945.00 + 130.00 (per line, half to even)
    assert 'data-index="0">CN¥76,500.00' in shown.text and 'data-index="4">CN¥999.99' in shown.text
    assert "CN¥87,574.99" in shown.text.split("grand-total")[1]
    assert Decimal((await Quote.select(Quote.untaxed).where(Quote.id == quote_id).first())["untaxed"]) == Decimal(
        "48950")  # still the saved figures: 60000 × 0.8 + 1000 × 0.95
    # another team's rep may not update this quote: no figures, nothing about it
    await client.post("/logout", data={"csrf_token": csrf})
    await login_client(client, "rep3")
    other = csrf_of((await client.get("/")).text)
    refused = await client.post(f"/sales/quotes/{quote_id}/preview", data={**typed, "csrf_token": other})
    assert refused.status_code in (403, 404) and "CN¥" not in refused.text
    await client.post("/logout", data={"csrf_token": other})
    await login_client(client, "rep1")
    csrf = typed["csrf_token"] = csrf_of((await client.get(f"/sales/quotes/{quote_id}")).text)
    wrong = await client.post(f"/sales/quotes/{quote_id}/preview", data={**typed, "quantity_4": "1x"})
    assert wrong.status_code == 422 and "data-preview-error" in wrong.text
    assert "Line 2 · Qty" in wrong.text and 'data-invalid="quantity_4"' in wrong.text
    saved_now = await client.post(f"/sales/quotes/{quote_id}", data={**typed, "language": "zh_CN"})
    assert saved_now.status_code == 303
    assert Decimal((await Quote.select(Quote.total).where(Quote.id == quote_id).first())["total"]) == Decimal(
        "87574.99")  # the preview's figure is the saved one
    bad = await client.post(f"/sales/quotes/{quote_id}", data={"csrf_token": csrf, "discount_percent": "120",
                                                                "description_0": "x", "unit_price_0": "1"})
    assert bad.status_code == 422
    assert await QuoteLine.count().where(QuoteLine.quote == quote_id) == 2  # nothing half-written

    # sent: "sending" until the e-mail job delivered it (no SMTP here: the job fails, the quote says so)
    sent = await acceptance.send(rep, quote_id)
    assert (await Quote.select(Quote.email_state).where(Quote.id == quote_id).first())["email_state"] == "sending"
    assert "Sending…" in (await client.get(f"/sales/quotes/{quote_id}")).text
    await acceptance.accept(quote_id, by="王芳", via="link")
    page = (await client.get(f"/sales/quotes/{quote_id}")).text
    assert 'name="description_0"' not in page and "<input" not in page.split("quote-readonly")[1].split("</section>")[0]
    assert "机架式服务器" in page and "王芳" in page and "Accepted" in page
    public = await client.get(sent["accept_url"][sent["accept_url"].index("/sales/q/"):])
    assert public.status_code == 200 and "机架式服务器" in public.text
    # the deal is won: its page and the list of won deals show what was ordered
    total = (await Quote.select(Quote.total).where(Quote.id == quote_id).first())["total"]
    shown = f"CN¥{Decimal(total):,.2f}"
    deal = (await client.get(f"/sales/opportunities/{opp_id}")).text
    assert 'class="order-amount"' in deal and shown in deal.split('class="order-amount"')[1][:200]
    listed = (await client.get("/sales/opportunities", params={"state": "won"})).text
    assert shown in listed.split('class="order-amount"')[1][:200]
