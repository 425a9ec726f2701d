"""The CRM's tax rate reaches the ERP as the tax it is mapped to (issue 17 §3): the push sends exactly the mapped
taxes (none for 0 %), an unmapped rate fails the push and cannot be quoted while an ERP is configured, the mapping
is validated wherever it is written, and ``crm erp check`` names every difference from the ERP's rules."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from erp_bridge.backends.base import RemoteTax
from erp_bridge.backends.fake import FakeBackend
from erp_helpers import binding, customer, drain, order

from core.errors import ValidationError


async def _payload(order_id: int) -> Any:
    from erp_bridge import sales

    found = await sales.load_order(order_id)
    assert found is not None
    return await sales.build_payload(found)


async def test_push_sends_the_mapped_tax_the_net_price_and_no_tax_at_zero(fake: FakeBackend) -> None:
    from crm_sales.api import NewOrderLine, create_order

    person = await customer()
    taxed = await create_order(person_id=person, currency="EUR", lines=[
        NewOrderLine(code="P-001", description="Widget", quantity="1000", unit_price="0.9999",
                     discount_percent="12.35", tax_rate="0.13")])
    payload = await _payload(taxed)
    (line,) = payload.lines
    # issue 17: the CRM computes the line from the net price it sends: 1000 × 0.8764 = 876.40, as Tryton does
    assert line.unit_price == Decimal("0.8764") and line.taxes == ("1",)
    assert (payload.untaxed, payload.tax, payload.total) == (Decimal("876.40"), Decimal("113.93"), Decimal("990.33"))
    untaxed = await order(person, tax_rate=Decimal(0))
    (zero, _) = (await _payload(untaxed)).lines
    assert zero.taxes == ()  # 0 % mapped to no tax: an explicitly empty tax list, never the product's 13 %
    assert await drain() and (await binding(taxed))["state"] == "synced"


async def test_an_unmapped_rate_fails_the_push_naming_the_rate(fake: FakeBackend) -> None:
    from erp_bridge import status, taxes

    order_id = await order(await customer(), tax_rate=Decimal("0.06"))
    await drain()
    b = await binding(order_id)
    assert b["state"] == "failed" and "tax rate 6 % has no ERP tax mapped" in b["last_error"]
    assert not any(c.startswith("push") for c in fake.calls)  # the ERP never saw it
    fake.taxes.append(RemoteTax("2", "VAT 6 %", "percentage", Decimal("0.06")))
    await taxes.set_mapping("0.06", "2")
    await status.redrive(b["id"])
    await drain()
    assert (await binding(order_id))["state"] == "synced"


async def _quote(rep: Any, rate: str) -> int:
    """A draft quote of ``rep`` (an Access) with a 13 % line and a line at ``rate``."""
    from crm_sales import leads, pipeline, quotes

    lead = await leads.create_lead(rep, {"name": "Widgets", "contact_name": "王伟", "email": "wang@example.org"})
    opp = await pipeline.qualify(rep, lead)
    return await quotes.create_quote(rep, opp, [
        {"code": "P-001", "description": "Widget", "quantity": "2", "unit_price": "100.00", "tax_rate": "0.13"},
        {"code": "P-003", "description": "Gadget 小工具", "quantity": "1", "unit_price": "19.99", "tax_rate": rate}])


async def test_a_quote_the_erp_cannot_tax_is_refused_before_it_is_sent(crm_client: Any) -> None:
    from crm_sales.models import Quote
    from erp_bridge import connection, taxes

    from core.models import Outbox
    from core.security import access, principal
    from core.security.access import Access
    from core.security.sessions import create_token
    from core.testing import make_user

    client = await crm_client("erp_bridge")
    rep_id = await make_user("rep", "sales_rep")
    rep = Access(await principal.load(rep_id, implied=access.policy().implied))
    headers = {"Authorization": f"Bearer {await create_token(rep_id, 'test', roles=['sales_rep'])}"}

    async def mails() -> int:
        return int(await Outbox.count().where(Outbox.actor == "crm_sales.send_quote_email"))

    # erp_bridge installed but no ERP configured: nothing to check against
    first = await _quote(rep, "0.06")
    assert (await client.post(f"/api/sales/quotes/{first}/send", headers=headers)).status_code == 200
    await connection.configure("main", "fake")
    connection.use_backend("main", FakeBackend())
    await taxes.set_mapping("0.13", "1")
    quote, before = await _quote(rep, "0.06"), await mails()
    refused = await client.post(f"/api/sales/quotes/{quote}/send", headers=headers)
    assert refused.status_code == 422, refused.text
    assert "lines[1].tax_rate" in refused.text and "6 %" in refused.text and "lines[0]" not in refused.text
    assert (await Quote.select(Quote.state).where(Quote.id == quote).first())["state"] == "draft"
    assert await mails() == before  # no e-mail went out
    await taxes.set_mapping("0.06", "2")
    sent = await client.post(f"/api/sales/quotes/{quote}/send", headers=headers)
    assert sent.status_code == 200, sent.text
    assert await mails() == before + 1


async def test_mapping_rows_are_validated_like_the_crm_stores_rates(crm_client: Any) -> None:
    from erp_bridge.models import TaxMapping

    from core.security.sessions import create_token
    from core.testing import make_user

    client = await crm_client("erp_bridge")

    async def bearer(login: str, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {await create_token(await make_user(login, role), 't', roles=[role])}"}

    fin, rep = await bearer("fin", "finance"), await bearer("rep", "sales_rep")
    url = "/api/erp/tax-map"
    assert (await client.post(url, json={"rate": "0.13", "erp_tax": "1"}, headers=rep)).status_code == 403
    cases = [({"rate": "0.13", "erp_tax": ""}, "erp_tax"), ({"rate": "0.12345", "erp_tax": "1"}, "rate"),
             ({"rate": "13", "erp_tax": "1"}, "rate"), ({"rate": "0.13", "erp_tax": "VAT"}, "erp_tax")]
    for body, field in cases:
        answer = await client.post(url, json=body, headers=fin)
        assert answer.status_code == 422 and field in answer.text, (body, answer.text)
    created = await client.post(url, json={"rate": "0.13", "erp_tax": "1", "erp_tax_name": "VAT 13 %"}, headers=fin)
    assert created.status_code == 201, created.text
    assert (await client.post(url, json={"rate": "0.130", "erp_tax": "4"}, headers=fin)).status_code == 422
    assert (await client.post(url, json={"rate": 0, "erp_tax": ""}, headers=fin)).status_code == 201
    rows = await TaxMapping.select(TaxMapping.rate, TaxMapping.erp_tax).order_by(TaxMapping.rate)
    assert [(Decimal(r["rate"]), r["erp_tax"]) for r in rows] == [(Decimal(0), ""), (Decimal("0.13"), "1")]
    row_id = created.json()["id"]
    cleared = await client.patch(f"{url}/{row_id}", json={"erp_tax": ""}, headers=fin)
    assert cleared.status_code == 422 and "erp_tax" in cleared.text


async def test_check_names_every_difference_from_the_erps_rules(fake: FakeBackend) -> None:
    from erp_bridge import taxes

    assert await taxes.check_erp() == []  # the fixture maps 13 % and 0 %, and rounds per line
    await order(await customer(), tax_rate=Decimal("0.06"), currency="USD")
    assert await taxes.check_erp() == ["tax rate 6 % is used by the CRM but mapped to no ERP tax "
                                       "(crm erp taxes map 0.06 TAX)"]
    await taxes.set_mapping("0.06", "1")  # the fake's 13 % tax
    await taxes.set_mapping("0.09", "77")
    fake.tax_rounding = "document"
    problems = await taxes.check_erp()
    assert problems == [
        "the ERP rounds taxes per document, the CRM per line: set the ERP's tax rounding to per line (Tryton: "
        "Accounting configuration, Tax Rounding)",
        "tax rate 6 % is mapped to ERP tax #1 'VAT 13 %', which is 13 %",
        "tax rate 9 % is mapped to ERP tax #77, which the ERP does not have (or not as a sale tax)"]
    await order(await customer("東京 Buyer"), currency="JPY", lines=(("P-001", "Widget", "1", "100"),))
    fake.currencies.add("JPY")
    assert "the ERP rounds JPY to 0.01, the CRM to 1 (ISO 4217): fix the currency's rounding in the ERP" in (
        await taxes.check_erp())


async def test_crm_erp_check_exits_1_on_a_mismatch(fake: FakeBackend, crm_db_url: str, tmp_path: Any,
                                                    monkeypatch: Any) -> None:
    from click.testing import CliRunner
    from erp_bridge.cli import erp

    monkeypatch.setenv("CRM_DATABASE_URL", crm_db_url)
    monkeypatch.setenv("CRM_DATA_DIR", str(tmp_path))

    def invoke(*args: str) -> Any:
        return CliRunner().invoke(erp, list(args), catch_exceptions=False)

    ok = await asyncio.to_thread(invoke, "check")
    assert ok.exit_code == 0 and "the ERP computes sales like the CRM" in ok.output, ok.output
    fake.tax_rounding = "document"
    bad = await asyncio.to_thread(invoke, "check")
    assert bad.exit_code == 1 and "mismatch: the ERP rounds taxes per document, the CRM per line" in bad.output
    listed = await asyncio.to_thread(invoke, "taxes")
    assert listed.exit_code == 0 and "13 %" in listed.output and "#1 VAT 13 %" in listed.output, listed.output
    mapped = await asyncio.to_thread(invoke, "taxes", "map", "0.13", "VAT 13 %")
    assert mapped.exit_code == 0 and "0.13 → #1 VAT 13 %" in mapped.output, mapped.output
    wrong = await asyncio.to_thread(invoke, "taxes", "map", "0.06", "1")
    assert wrong.exit_code != 0 and "is not a 0.06 tax" in wrong.output


def test_problems_is_pure_and_accepts_a_matching_erp() -> None:
    from erp_bridge.backends.base import ErpRules
    from erp_bridge.taxes import Mapped, problems

    rules = ErpRules("line", 4, {"EUR": Decimal("0.01"), "KWD": Decimal("0.001"), "JPY": Decimal(1)},
                     (RemoteTax("5", "VAT 13%", "percentage", Decimal("0.1300000000")),))
    mapping = {Decimal("0.13"): Mapped(Decimal("0.13"), "5"), Decimal(0): Mapped(Decimal(0), "")}
    assert problems(rules, mapping, [Decimal("0.1300"), Decimal(0)], ["EUR", "KWD", "JPY"]) == []
    assert problems(ErpRules("line", 2, {}, ()), {}, [], []) == [
        "the ERP keeps 2 decimals of a unit price, the CRM sends 4 (Tryton: [product] price_decimal)"]
    try:
        from erp_bridge.taxes import resolve

        resolve(rules, "VAT 6%")
    except ValidationError as exc:
        assert "no ERP sale tax is named 'VAT 6%'" in str(exc)
    else:
        raise AssertionError("an unknown tax name must be refused")
