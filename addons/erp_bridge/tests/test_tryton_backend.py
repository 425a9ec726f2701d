"""TrytonBackend against a real trytond (fresh copy of the cached database per test)."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from erp_bridge.backends.base import (
    ErpBackend,
    ErpConflictError,
    ErpPermanentError,
    ErpTransientError,
    OrderLinePayload,
)
from erp_bridge.backends.tryton import TrytonBackend, _map_error
from erp_bridge.testing.tryton_server import (
    TrytonConnection,
    create_sale_directly_with_proteus,
    free_port,
    post_and_pay_invoice,
    proteus_config,
    touch_sale,
)
from erp_payloads import count_calls, make_customer, make_order, record_timing
from proteus import Model

pytestmark = pytest.mark.tryton

# 2 × 100.00 + 3 × 19.99 = 259.97; 13 % tax = 33.7961 → 33.80
UNTAXED, TAX, TOTAL = Decimal("259.97"), Decimal("33.80"), Decimal("293.77")


def _sales_with_reference(conn: TrytonConnection, ref: str) -> list:
    return Model.get("sale.sale", config=proteus_config(conn)).find([("reference", "=", ref)])


def test_backend_satisfies_the_protocol(backend: TrytonBackend) -> None:
    assert isinstance(backend, ErpBackend)
    health = backend.health()
    assert health["ok"] is True and health["server_version"].startswith("8.")


def test_push_customer_twice_creates_one_party(backend: TrytonBackend, tryton) -> None:
    first = backend.push_customer(make_customer("CRM-C-7"))
    second = backend.push_customer(make_customer("CRM-C-7", name="Renamed"))
    assert first == second
    parties = Model.get("party.party", config=proteus_config(tryton)).find([("code", "=", "CRM-C-7")])
    assert len(parties) == 1
    (party,) = parties
    assert party.name == "上海 Acme Trading"
    assert party.addresses[0].city == "Shanghai" and party.addresses[0].country.code == "CN"
    assert {m.type: m.value for m in party.contact_mechanisms}["email"] == "buyer@acme.example.org"


def test_push_order_creates_processed_sale_with_invoice(backend: TrytonBackend, tryton) -> None:
    started = time.monotonic()
    remote = backend.push_order(make_order("CRM-SO-42"))
    record_timing("push_order (new sale)", time.monotonic() - started)
    assert remote.reference == "CRM-SO-42"
    assert remote.state == "processing"
    assert (remote.untaxed, remote.tax, remote.total) == (UNTAXED, TAX, TOTAL)
    assert all(isinstance(v, Decimal) for v in (remote.untaxed, remote.tax, remote.total))
    assert remote.currency == "EUR" and remote.number
    assert len(remote.invoice_ids) == 1
    (sale,) = _sales_with_reference(tryton, "CRM-SO-42")
    assert sale.state == "processing" and len(sale.invoices) == 1
    assert sale.invoices[0].total_amount == TOTAL
    assert sorted(line.description for line in sale.lines) == ["Gadget", "Widget, blue"]


def test_push_same_order_again_is_idempotent(backend: TrytonBackend, tryton) -> None:
    first = backend.push_order(make_order("CRM-SO-43"))
    started = time.monotonic()
    again = backend.push_order(make_order("CRM-SO-43"))
    record_timing("push_order (already there)", time.monotonic() - started)
    assert again.external_id == first.external_id
    assert len(_sales_with_reference(tryton, "CRM-SO-43")) == 1
    assert len(backend.find_orders("CRM-SO-43")) == 1


def test_push_finishes_a_sale_left_in_draft(backend: TrytonBackend, tryton) -> None:
    # A previous attempt created the sale, then died before quoting it.
    sale_id = create_sale_directly_with_proteus(tryton, reference="CRM-SO-44", confirm=False)
    remote = backend.push_order(make_order("CRM-SO-44"))
    assert remote.external_id == str(sale_id)
    assert remote.state == "processing" and len(remote.invoice_ids) == 1
    assert len(_sales_with_reference(tryton, "CRM-SO-44")) == 1


def test_a_second_sale_reuses_lookups_and_reads_once(backend: TrytonBackend, tryton) -> None:
    backend.push_order(make_order("CRM-SO-50"))
    calls = count_calls(backend)
    remote = backend.push_order(make_order("CRM-SO-51"))
    # find by reference, the party with its fields, create, find by reference again (another runner's sale made
    # meanwhile? see test_tryton_race.py), quote, confirm (process runs with it), one read
    assert calls == ["model.sale.sale.search_read", "model.party.party.search_read", "model.sale.sale.create",
                     "model.sale.sale.search_read", "model.sale.sale.quote", "model.sale.sale.confirm",
                     "model.sale.sale.read"], calls
    assert remote.state == "processing" and (remote.untaxed, remote.tax, remote.total) == (UNTAXED, TAX, TOTAL)
    (sale,) = _sales_with_reference(tryton, "CRM-SO-51")
    assert all(len(line.taxes) == 1 and line.unit.name == "Unit" for line in sale.lines)  # on_change's, cached


def test_a_product_gone_since_it_was_cached_is_looked_up_again(backend: TrytonBackend, tryton) -> None:
    backend.push_order(make_order("CRM-SO-52"))
    (product,) = Model.get("product.product", config=proteus_config(tryton)).find([("code", "=", "P-003")])
    template = product.template
    template.salable = False
    template.save()
    with pytest.raises(ErpPermanentError, match=r"unknown product code\(s\) in Tryton: P-003"):
        backend.push_order(make_order("CRM-SO-53"))  # Tryton refused the cached id; asked again: not salable
    assert backend.find_orders("CRM-SO-53") == []


def test_find_orders_reports_duplicates(backend: TrytonBackend, tryton) -> None:
    pushed = backend.push_order(make_order("CRM-SO-45"))
    create_sale_directly_with_proteus(tryton, reference="CRM-SO-45")
    found = backend.find_orders("CRM-SO-45")
    assert len(found) == 2 and found[0].external_id == pushed.external_id
    with pytest.raises(ErpConflictError, match="2 Tryton sales carry reference CRM-SO-45"):
        backend.push_order(make_order("CRM-SO-45"))


def test_unknown_product_code_is_permanent(backend: TrytonBackend) -> None:
    lines = (OrderLinePayload("P-999", "Nope", Decimal(1), Decimal("5.00")),)
    with pytest.raises(ErpPermanentError, match="P-999"):
        backend.push_order(make_order("CRM-SO-46", lines=lines))
    assert backend.find_orders("CRM-SO-46") == []


def test_unknown_currency_is_permanent(backend: TrytonBackend) -> None:
    with pytest.raises(ErpPermanentError, match="XXX"):
        backend.push_order(make_order("CRM-SO-47", currency="XXX"))
    assert backend.find_orders("CRM-SO-47") == []
    usd = backend.push_order(make_order("CRM-SO-48", currency="USD"))
    assert usd.currency == "USD" and usd.total == TOTAL


def test_tryton_validation_error_is_permanent_with_trytons_message(backend: TrytonBackend) -> None:
    lines = (OrderLinePayload("P-001", "Half a widget", Decimal("1.5"), Decimal("100.00")),)
    with pytest.raises(ErpPermanentError) as info:
        backend.push_order(make_order("CRM-SO-49", lines=lines))
    assert info.value.remote_message and "Quantity" in info.value.remote_message
    assert "Quantity" in str(info.value)


def test_unknown_country_is_permanent(backend: TrytonBackend) -> None:
    customer = make_customer(
        "CRM-C-9", address=make_customer().address.__class__(street="x", city="y", zip="1", country_code="ZZ")
    )
    with pytest.raises(ErpPermanentError, match="country 'ZZ'"):
        backend.push_customer(customer)


def test_customer_without_address_gets_a_minimal_one(backend: TrytonBackend, tryton) -> None:
    customer = make_customer("CRM-C-10", address=None, email=None, phone=None, lang=None)
    remote = backend.push_order(make_order("CRM-SO-50", customer=customer))
    assert remote.state == "processing"
    (sale,) = _sales_with_reference(tryton, "CRM-SO-50")
    assert sale.invoice_address.party.code == "CRM-C-10"


def test_wrong_password_is_permanent_and_not_leaked(tryton: TrytonConnection) -> None:
    secret = "Sup3r-Secret-Pw"
    bad = TrytonBackend(tryton.url, tryton.database, tryton.username, secret)
    with pytest.raises(ErpPermanentError) as info:
        bad.health()
    assert "login refused" in str(info.value)
    assert secret not in str(info.value) and secret not in repr(info.value)
    assert secret not in repr(bad) and "***" in repr(bad)


@pytest.mark.parametrize(("listed", "kind"), [(["crm"], ErpTransientError), (["other"], ErpPermanentError),
                                              (None, ErpTransientError)])
def test_login_404_is_permanent_only_for_an_unlisted_database(listed: list[str] | None, kind: type) -> None:
    """trytond answers 404 to a login when it cannot open the database too (SQLite locked under load)."""
    import httpx

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/rpc/":  # common.db.list; None: listing disabled in trytond.conf
            return httpx.Response(200, json={"id": 0, "result": listed}) if listed else httpx.Response(403)
        return httpx.Response(404)

    backend = TrytonBackend("http://tryton.test/", "crm", "admin", "pw")
    backend._client = httpx.Client(transport=httpx.MockTransport(answer))
    with pytest.raises(kind, match="crm"):
        backend.call("model.sale.sale.search", [])


def test_server_down_is_transient() -> None:
    down = TrytonBackend(f"http://127.0.0.1:{free_port()}/", "crm", "admin", "pw", timeout=2)
    with pytest.raises(ErpTransientError, match="cannot reach Tryton"):
        down.push_order(make_order("CRM-SO-51"))


def test_pull_invoices_incremental_and_paid(backend: TrytonBackend, tryton) -> None:
    order = backend.push_order(make_order("CRM-SO-52"))
    (invoice,) = backend.pull_invoices(None, limit=10)
    assert invoice.external_id == order.invoice_ids[0]
    assert invoice.order_reference == "CRM-SO-52"
    assert (invoice.untaxed, invoice.tax, invoice.total) == (UNTAXED, TAX, TOTAL)
    assert invoice.state == "draft" and not invoice.is_paid
    assert backend.pull_invoices(invoice.cursor) == []

    post_and_pay_invoice(tryton, invoice.external_id)
    (paid,) = backend.pull_invoices(invoice.cursor)
    assert paid.external_id == invoice.external_id
    assert paid.is_paid and paid.state == "paid" and paid.amount_to_pay == Decimal("0")
    assert paid.number and paid.invoice_date is not None and paid.total == TOTAL
    assert backend.pull_invoices(paid.cursor) == []


def test_pull_invoices_pages_by_keyset(backend: TrytonBackend) -> None:
    refs = [f"CRM-SO-6{i}" for i in range(3)]
    for ref in refs:
        backend.push_order(make_order(ref))
    page1 = backend.pull_invoices(None, limit=2)
    page2 = backend.pull_invoices(page1[-1].cursor, limit=2)
    assert len(page1) == 2 and len(page2) == 1
    assert sorted(i.order_reference for i in page1 + page2) == refs
    assert backend.pull_invoices(page2[-1].cursor, limit=2) == []


def test_cancel_with_stale_marker_conflicts(backend: TrytonBackend, tryton) -> None:
    sale_id = create_sale_directly_with_proteus(tryton, reference="CRM-SO-53", confirm=False)
    seen = backend.get_order(str(sale_id))
    time.sleep(0.01)
    touch_sale(tryton, sale_id, "changed by an ERP user")
    fresh = backend.get_order(str(sale_id))
    assert fresh.write_marker != seen.write_marker
    with pytest.raises(ErpConflictError):
        backend.cancel_order(seen.external_id, seen.write_marker)
    assert backend.get_order(str(sale_id)).state == "draft"
    assert backend.cancel_order(fresh.external_id, fresh.write_marker).state == "cancelled"


def test_cancel_processing_sale_is_refused(backend: TrytonBackend) -> None:
    order = backend.push_order(make_order("CRM-SO-54"))
    with pytest.raises(ErpPermanentError, match="processing"):
        backend.cancel_order(order.external_id, order.write_marker)


def test_pull_products_has_codes_and_decimal_prices(backend: TrytonBackend) -> None:
    products = backend.pull_products()
    assert [(p.code, p.list_price) for p in products] == [
        ("P-001", Decimal("100.00")),
        ("P-002", Decimal("80.00")),
        ("P-003", Decimal("19.99")),
        ("P-004", Decimal("8.50")),  # by the kilogram
    ]
    assert backend.pull_products(products[1].external_id) == products[2:]


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (["UserError", ["Bad thing", "details", None]], ErpPermanentError),
        (["ConcurrencyException", "Records were modified in the meanwhile"], ErpConflictError),
        (["OperationalError: database is locked", "tb"], ErpTransientError),
        (["'nofield'", ""], ErpPermanentError),
    ],
)
def test_error_mapping(error: list, kind: type) -> None:
    mapped = _map_error("model.x.y", error)
    assert type(mapped) is kind
