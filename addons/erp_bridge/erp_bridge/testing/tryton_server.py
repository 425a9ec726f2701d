"""A real, throw-away Tryton server for tests.

`build_database()` creates a SQLite database ONCE per trytond version (cached under
``$CRM_CACHE_DIR`` or ``~/.cache/crm-tryton/<version>-r<SETUP_REVISION>/``) with `sale` and
`account_invoice` activated and a usable company: EUR company (USD, JPY with 0 decimals, KWD and BHD with
3 also exist; CNY and "XXX" do not), taxes rounded per line (account configuration "Tax Rounding", set
explicitly: the CRM's rule), current fiscal year with invoice sequences, minimal chart, sale taxes of
13 % (the products' default), 6 % and 9 %, a direct payment term, a cash payment method, countries
CN/DE/US, service products P-001..P-003 sold by the unit (whole quantities) and P-004 sold by the
kilogram with 4 decimals.

`running_server(db_file, workdir)` copies that file, starts ``trytond`` on a free loopback port and
yields a `TrytonConnection`; the process is killed on exit.

The database setup runs in a subprocess (``python -m erp_bridge.testing.tryton_server setup ...``)
so trytond's process-global pool/config never leak into the test process.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

# Bump when the setup below changes: invalidates cached databases.
SETUP_REVISION = 2
DB_NAME = "crm"
ADMIN_USER = "admin"
ADMIN_PASSWORD = "admin-secret"
COMPANY_CURRENCY = "EUR"
TAX_RATE = Decimal("0.13")
OTHER_TAX_RATES = (Decimal("0.06"), Decimal("0.09"))
TAX_ROUNDING = "line"  # the CRM's rule (crm_sales.pricing.TAX_ROUNDING); Tryton's default is "document"
PRODUCTS = (
    ("P-001", "Widget", Decimal("100.00")),
    ("P-002", "Consulting hour", Decimal("80.00")),
    ("P-003", "Gadget", Decimal("19.99")),
)
WEIGHED_PRODUCTS = (("P-004", "Copper wire", Decimal("8.50")),)  # by the kilogram: quantities with 4 decimals
# code, name, decimals, rate against the company currency
CURRENCIES = (("JPY", "Japanese Yen", 0, Decimal("160")), ("KWD", "Kuwaiti Dinar", 3, Decimal("0.33")),
              ("BHD", "Bahraini Dinar", 3, Decimal("0.41")))
_VENV_BIN = Path(sys.executable).parent
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # .../addons/erp_bridge


# trytond unchanged, except that e-mail validation skips its DNS deliverability lookup: test
# machines have no DNS, and Tryton would reject every customer e-mail ("domain does not exist").
_LAUNCHER = """
import sys
import trytond.tools.email_ as email_
_validate = email_.validate_email
email_.validate_email = lambda email, check_deliverability=True: _validate(email, False)
from trytond.cli import main
sys.argv[0] = "trytond"
sys.exit(main())
"""


class TrytonBuildError(RuntimeError):
    """The test database could not be built; the message carries the tool's output."""


@dataclass(frozen=True)
class TrytonConnection:
    url: str  # base url, e.g. http://127.0.0.1:8123/
    database: str
    username: str
    password: str = field(repr=False)
    pid: int = 0

    @property
    def rpc_url(self) -> str:
        return f"{self.url}{self.database}/rpc/"

    @property
    def xmlrpc_url(self) -> str:
        """URL for proteus.config.XmlrpcConfig (credentials embedded: tests only)."""
        host = self.url.split("://", 1)[1]
        return f"http://{self.username}:{self.password}@{host}{self.database}/rpc/"


def trytond_version() -> str:
    from importlib.metadata import version

    return version("trytond")


def cache_dir() -> Path:
    base = os.environ.get("CRM_CACHE_DIR") or str(Path.home() / ".cache" / "crm-tryton")
    return Path(base) / f"{trytond_version()}-r{SETUP_REVISION}"


def _write_conf(directory: Path, port: int | None = None) -> Path:
    conf = directory / "trytond.conf"
    lines = ["[database]", "uri = sqlite://", f"path = {directory}", "", "[web]"]
    lines.append(f"listen = 127.0.0.1:{port or 0}")
    # Small session timeouts would only make tests flaky; default login rate limits are fine.
    conf.write_text("\n".join(lines) + "\n")
    return conf


def _run(cmd: list[str], env: dict[str, str], what: str, stdin: str = "", timeout: float = 600) -> None:
    try:
        proc = subprocess.run(
            cmd,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise TrytonBuildError(f"{what} timed out after {timeout}s: {' '.join(cmd)}") from exc
    if proc.returncode != 0:
        tail = (proc.stdout[-3000:] + "\n" + proc.stderr[-6000:]).strip()
        raise TrytonBuildError(f"{what} failed (exit {proc.returncode}):\n{tail}")


def build_database(force: bool = False) -> Path:
    """Return the path of the cached, fully set-up SQLite file; build it if needed."""
    target_dir = cache_dir()
    target = target_dir / f"{DB_NAME}.sqlite"
    if target.exists() and not force:
        return target
    target_dir.mkdir(parents=True, exist_ok=True)
    with open(target_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test sessions build it once
        if target.exists() and not force:
            return target
        work = target_dir / f"build-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        try:
            conf = _write_conf(work)
            (work / f"{DB_NAME}.sqlite").touch()
            passfile = work / "pass"
            passfile.write_text(ADMIN_PASSWORD)
            env = {**os.environ, "TRYTONPASSFILE": str(passfile)}
            _run(
                [
                    str(_VENV_BIN / "trytond-admin"),
                    "-c",
                    str(conf),
                    "-d",
                    DB_NAME,
                    "-u",
                    "sale",
                    "account_invoice",
                    "--activate-dependencies",
                ],
                # --email validates deliverability over DNS (no network here): answer the
                # interactive prompt with "empty for none" instead.
                env,
                "trytond-admin (module activation)",
                stdin="\n",
            )
            env["PYTHONPATH"] = os.pathsep.join([str(_PACKAGE_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
            _run(
                [sys.executable, "-m", "erp_bridge.testing.tryton_server", "setup", str(conf), DB_NAME],
                env,
                "Tryton company/accounting setup",
            )
            _check_built(work / f"{DB_NAME}.sqlite")
            os.replace(work / f"{DB_NAME}.sqlite", target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target


def _check_built(path: Path) -> None:
    """Fold Tryton's WAL into the file (only the file is cached) and sanity-check the setup."""
    import sqlite3

    con = sqlite3.connect(path)
    try:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.execute("PRAGMA journal_mode=DELETE")
        (products,) = con.execute("SELECT count(*) FROM product_product").fetchone()
        (companies,) = con.execute("SELECT count(*) FROM company_company").fetchone()
    finally:
        con.close()
    if products != len(PRODUCTS) + len(WEIGHED_PRODUCTS) or companies != 1:
        raise TrytonBuildError(f"setup incomplete: {products} products, {companies} companies")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(proc: subprocess.Popen[bytes], port: int, log: Path, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{port}/{DB_NAME}/rpc/"
    body = {"id": 0, "method": "common.db.login", "params": [ADMIN_USER, {"password": ADMIN_PASSWORD}]}
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise TrytonBuildError(f"trytond exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            resp = httpx.post(url, json=body, timeout=2)
            if resp.status_code == 200 and "result" in resp.json():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TrytonBuildError(f"trytond not ready after {timeout}s:\n{log.read_text()[-4000:]}")


@contextlib.contextmanager
def running_server(db_file: Path, workdir: Path, timeout: float = 60) -> Iterator[TrytonConnection]:
    """Copy *db_file* into *workdir*, run trytond on it, yield its connection, then kill it."""
    workdir.mkdir(parents=True, exist_ok=True)
    for suffix in ("-wal", "-shm", "-journal"):  # a stale WAL would be replayed onto the copy
        (workdir / f"{DB_NAME}.sqlite{suffix}").unlink(missing_ok=True)
    shutil.copyfile(db_file, workdir / f"{DB_NAME}.sqlite")
    port = free_port()
    conf = _write_conf(workdir, port)
    log = workdir / "trytond.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, "-c", str(conf), "-d", DB_NAME],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_ready(proc, port, log, timeout)
        yield TrytonConnection(
            url=f"http://127.0.0.1:{port}/",
            database=DB_NAME,
            username=ADMIN_USER,
            password=ADMIN_PASSWORD,
            pid=proc.pid,
        )
    finally:
        proc.kill()
        proc.wait(timeout=10)


# --- helpers for tests (proteus over XML-RPC against a running server) ---------------------------


_PROTEUS_CONFIGS: dict[tuple[str, int], Any] = {}


def proteus_config(conn: TrytonConnection) -> Any:
    """A proteus XML-RPC config for *conn*, reused (proteus caches model definitions per config)
    and made current: proteus compares records' configs with the current one (in __repr__).

    It authenticates with a session, as Tryton's own client does: with the user and password in the URL
    (HTTP basic), trytond checks the password hash on every request, ~0.4 s per call."""
    import base64
    import xmlrpc.client

    from proteus import config as pconfig

    key = (conn.xmlrpc_url, conn.pid)
    if key not in _PROTEUS_CONFIGS:
        url = f"{conn.url}{conn.database}/rpc/"
        login: Any = xmlrpc.client.ServerProxy(url, allow_none=True, use_builtin_types=True)  # any XML-RPC value
        user_id, session = login.common.db.login(conn.username, {"password": conn.password})[:2]
        token = base64.b64encode(f"{conn.username}:{user_id}:{session}".encode()).decode()
        _PROTEUS_CONFIGS[key] = pconfig.XmlrpcConfig(url, headers=[("Authorization", f"Session {token}")])
    pconfig._CONFIG.current = _PROTEUS_CONFIGS[key]  # what set_xmlrpc does, minus a new login
    return _PROTEUS_CONFIGS[key]


def post_and_pay_invoice(conn: TrytonConnection, invoice_external_id: str) -> None:
    """Post the invoice (if draft) and pay its full amount with the cash payment method."""
    from proteus import Model

    cfg = proteus_config(conn)
    invoice = Model.get("account.invoice", config=cfg)(int(invoice_external_id))
    if invoice.state in ("draft", "validated"):
        invoice.click("post")
    (method,) = Model.get("account.invoice.payment.method", config=cfg).find([("name", "=", "Cash")])
    pay = invoice.click("pay")
    pay.form.amount = invoice.amount_to_pay
    pay.form.payment_method = method
    pay.execute("choice")
    invoice.reload()
    if invoice.state != "paid":
        raise AssertionError(f"invoice {invoice_external_id} is {invoice.state}, not paid")


def create_sale_directly_with_proteus(
    conn: TrytonConnection,
    *,
    reference: str,
    party_name: str = "Direct Customer",
    lines: tuple[tuple[str, Decimal], ...] = (("P-001", Decimal(1)),),
    confirm: bool = True,
) -> int:
    """Create a sale the way a Tryton user would (on_changes run); return its id."""
    from proteus import Model

    cfg = proteus_config(conn)
    Party = Model.get("party.party", config=cfg)
    Product = Model.get("product.product", config=cfg)
    parties = Party.find([("name", "=", party_name)], limit=1)
    if parties:
        party = parties[0]
    else:
        party = Party(name=party_name)
        party.save()
    sale = Model.get("sale.sale", config=cfg)()
    sale.party = party
    sale.reference = reference
    for code, quantity in lines:
        (product,) = Product.find([("code", "=", code)])
        line = sale.lines.new()
        line.product = product
        line.quantity = float(quantity)
    sale.save()
    if confirm:
        sale.click("quote")
        sale.click("confirm")
    return int(sale.id)


def tax_ids(conn: TrytonConnection) -> dict[Decimal, str]:
    """Rate (normalized: ``Decimal("0.13")``) → id of the database's sale taxes."""
    from proteus import Model

    return {Decimal(t.rate).normalize(): str(t.id) for t in Model.get("account.tax", config=proteus_config(conn)).find(
        [("type", "=", "percentage")])}


def set_tax_rounding(conn: TrytonConnection, method: str) -> None:
    """The company's "Tax Rounding" ("line" or "document"), as an accountant would set it."""
    from proteus import Model

    config = Model.get("account.configuration", config=proteus_config(conn))(1)
    config.tax_rounding = method
    config.save()


def touch_sale(conn: TrytonConnection, sale_id: int, comment: str) -> None:
    """Simulate a change made by an ERP user (bumps the sale's write marker)."""
    from proteus import Model

    sale = Model.get("sale.sale", config=proteus_config(conn))(sale_id)
    sale.comment = comment
    sale.save()


# --- database setup, run in a subprocess with trytond in-process --------------------------------


def _setup(conf: str, database: str) -> None:
    from proteus import Model
    from proteus import config as pconfig

    pconfig.set_trytond(database=database, config_file=conf)
    from trytond.modules.account.tests.tools import create_chart, create_fiscalyear, create_tax, get_accounts
    from trytond.modules.account_invoice.tests.tools import create_payment_term, set_fiscalyear_invoice_sequences
    from trytond.modules.company.tests.tools import create_company
    from trytond.modules.currency.tests.tools import get_currency

    Party = Model.get("party.party")
    company_party = Party(name="CRM Test Company")
    company_party.save()
    create_company(party=company_party, currency=get_currency(COMPANY_CURRENCY))
    get_currency("USD")
    Country = Model.get("country.country")
    for code, name in (("CN", "China"), ("DE", "Germany"), ("US", "United States")):
        Country(code=code, name=name).save()
    create_chart()
    fiscalyear = set_fiscalyear_invoice_sequences(create_fiscalyear())
    fiscalyear.save()
    fiscalyear.click("create_period")
    accounts = get_accounts()

    tax = create_tax(TAX_RATE)
    tax.save()
    for rate in OTHER_TAX_RATES:
        create_tax(rate).save()
    payment_term = create_payment_term()
    payment_term.save()
    account_config = Model.get("account.configuration")(1)
    account_config.default_customer_payment_term = payment_term
    account_config.tax_rounding = TAX_ROUNDING
    account_config.save()
    Currency, CurrencyRate = Model.get("currency.currency"), Model.get("currency.currency.rate")
    for code, name, digits, rate in CURRENCIES:
        currency = Currency(name=name, code=code, symbol=code, rounding=Decimal(1).scaleb(-digits), digits=digits)
        currency.save()
        CurrencyRate(date=datetime.date.min, rate=rate, currency=currency).save()

    (cash_journal,) = Model.get("account.journal").find([("type", "=", "cash")])
    method = Model.get("account.invoice.payment.method")(
        name="Cash", journal=cash_journal, credit_account=accounts["cash"], debit_account=accounts["cash"]
    )
    method.save()

    category = Model.get("product.category")(name="Sales")
    category.accounting = True
    category.account_revenue = accounts["revenue"]
    category.account_expense = accounts["expense"]
    category.customer_taxes.append(Model.get("account.tax")(tax.id))
    category.save()
    (unit,) = Model.get("product.uom").find([("name", "=", "Unit")])
    (kilogram,) = Model.get("product.uom").find([("name", "=", "Kilogram")])
    kilogram.rounding, kilogram.digits = 0.0001, 4  # the CRM keeps 4 decimals of a quantity
    kilogram.save()
    Template = Model.get("product.template")
    for uom, products in ((unit, PRODUCTS), (kilogram, WEIGHED_PRODUCTS)):
        for code, name, price in products:
            template = Template(
                name=name,
                code=code,
                default_uom=uom,
                type="service",
                salable=True,
                list_price=price,
                account_category=category,
            )
            template.save()


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "setup":
        _setup(argv[1], argv[2])
        return 0
    if argv == ["build"]:
        started = time.monotonic()
        path = build_database(force=True)
        print(f"built {path} in {time.monotonic() - started:.1f}s")
        return 0
    print("usage: python -m erp_bridge.testing.tryton_server build | setup CONF DB", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
