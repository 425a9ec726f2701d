"""Tryton's own cost per sale, with no RPC and no CRM: the ceiling for any client of this Tryton.

    .venv/bin/python bench/erp_tryton_floor.py [-n 60] [--chunk 20]

Runs trytond's models in this process on a copy of the cached test database (SQLite, as the tests' server
uses) and makes the sales erp_bridge makes — party with address and e-mail, sale with two lines (product
on_change, our price and description), quote, confirm, process (invoice) — ``--chunk`` sales per
transaction, each workflow step called once per chunk, as erp_bridge's batches do. Prints orders/s;
bench/erp_tryton_baseline.py runs it in the same run to print the bridge's ratio to it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

LINES = (("P-001", "Widget, blue", 2, Decimal("100.00")), ("P-003", "Gadget 小工具", 3, Decimal("19.99")))


def main(n: int, chunk: int) -> float:
    from erp_bridge.testing.tryton_server import DB_NAME, _write_conf, build_database

    work = Path(tempfile.mkdtemp(prefix="tryton-floor-"))
    try:
        shutil.copyfile(build_database(), work / f"{DB_NAME}.sqlite")
        conf = _write_conf(work)
        os.environ["TRYTOND_CONFIG"] = str(conf)
        import trytond.tools.email_ as email_
        from trytond import config

        # as the tests' trytond launcher: no DNS here, so no deliverability lookup for e-mails
        validate = email_.validate_email
        email_.validate_email = lambda email, check_deliverability=True: validate(email, False)
        config.update_etc(str(conf))
        from trytond.pool import Pool
        from trytond.transaction import Transaction

        Pool.start()
        pool = Pool(DB_NAME)
        with Transaction().start(DB_NAME, 0, readonly=True):
            pool.init()
        with Transaction().start(DB_NAME, 0, readonly=True):
            user = pool.get("res.user")
            (admin,) = user.search([("login", "=", "admin")])
        with Transaction().start(DB_NAME, admin.id):
            context = user.get_preferences(context_only=True)
        spent = 0.0
        for start in range(-chunk, n, chunk):  # the first chunk warms caches and is not counted
            t = time.perf_counter()
            with Transaction().start(DB_NAME, admin.id, context=context) as tx:
                _sales(pool, start, chunk)
                tx.commit()
            if start >= 0:
                spent += time.perf_counter() - t
        return n / spent
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _sales(pool: object, start: int, chunk: int) -> None:
    get = pool.get  # type: ignore[attr-defined]
    sale_model, line_model, party_model = get("sale.sale"), get("sale.line"), get("party.party")
    (cn,) = get("country.country").search([("code", "=", "CN")])
    (eur,) = get("currency.currency").search([("code", "=", "EUR")])
    products = {p.code: p for p in get("product.product").search([("code", "in", [c for c, *_ in LINES])])}
    parties = party_model.create([{
        "name": f"Floor Customer {start + i}", "code": f"FLOOR-C-{start + i}",
        "addresses": [("create", [{"street_unstructured": "1 Century Ave", "city": "Shanghai",
                                   "postal_code": "200120", "country": cn.id}])],
        "contact_mechanisms": [("create", [{"type": "email", "value": f"floor{start + i}@example.org"}])],
    } for i in range(chunk)])
    sales = []
    for i, party in enumerate(parties):
        sale = sale_model(party=party, currency=eur, reference=f"FLOOR-SO-{start + i}")
        sale.on_change_party()
        lines = []
        for code, description, quantity, price in LINES:
            line = line_model(type="line", product=products[code], quantity=quantity, sale=sale)
            line.on_change_product()
            line.unit_price, line.description = price, description
            lines.append(line)
        sale.lines = lines
        sales.append(sale)
    sale_model.save(sales)
    sale_model.quote(sales)
    sale_model.confirm(sales)
    sale_model.process(sales)
    assert {s.state for s in sale_model.browse(sales)} == {"processing"}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=60)
    parser.add_argument("--chunk", type=int, default=20)
    args = parser.parse_args()
    rate = main(args.n, args.chunk)
    label = "tryton in-process (no RPC, no CRM)"
    print(f"{label:<34} n={args.n:<4} {rate:6.2f} orders/s  ({1000 / rate:.0f} ms/order)")
    sys.exit(0)
