"""Tryton over JSON-RPC (httpx); the reference backend, tested against a real ``trytond``.

Entry point (group ``crm.erp_backends``): ``tryton = erp_bridge.backends.tryton:TrytonBackend``.

Mapping decisions
- Customer: ``party.party.code`` holds our reference (``CRM-C-17``); Tryton keeps it unique, which
  also guards against two concurrent pushes creating two parties. An existing party is not updated.
- Address: Tryton needs an invoice address on every sale. When the CRM has none we create an empty
  one on the party, exactly as Tryton's own client does for every new party; a country code Tryton
  does not know is an `ErpPermanentError` (run ``trytond_import_countries``), never silently dropped.
- Order: ``sale.sale.reference`` holds our reference. Lines go through Tryton's own
  ``on_change`` of the product, so units are Tryton's; our unit price (discounted, rounded to Tryton's price
  digits: Tryton's line amount is quantity × it, rounded to the currency, as the CRM's) and description then
  override, and so do the line's taxes: the ERP taxes the CRM's tax rate is mapped to (``erp_bridge.taxes``;
  none for a rate mapped to no tax), never the product's defaults or the party's tax rule. Amounts are read
  back, never computed here. Quantities are floats in Tryton (its schema), everything else Decimal.
- A push that fails halfway leaves a draft/quotation sale carrying our reference; the retry finds it
  and finishes its workflow. Two *concurrent* pushes of one order are prevented by the caller's
  per-record lock; `find_orders` reports any duplicate that slips through.
- The write marker is Tryton's own ``_timestamp``; `cancel_order` passes it back in the context so
  Tryton itself raises ConcurrencyException if the sale changed between our check and the write.
- Round trips (most of a push is Tryton's own confirm, which processes the sale): ids of currencies, countries and
  products found, and a product's line defaults from ``on_change`` (unit, taxes: they depend on the product,
  the party's tax rule, currency and company, not on the order) are kept for `CACHE_SECONDS` per backend;
  a code not found is always asked again, and a create that fails drops the cache and is tried once more
  with fresh look-ups. The party is found with the fields the sale needs in one call; a new sale is
  quoted and confirmed without reading it in between, and read once at the end.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
import threading
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import httpx

from .base import (
    CustomerPayload,
    ErpConflictError,
    ErpError,
    ErpPermanentError,
    ErpRules,
    ErpTransientError,
    OrderPayload,
    Payment,
    Pushed,
    RemoteInvoice,
    RemoteOrder,
    RemoteProduct,
    RemoteTax,
    SaleState,
)

_ORDER_FIELDS = [
    "number",
    "reference",
    "state",
    "currency.code",
    "untaxed_amount",
    "tax_amount",
    "total_amount",
    "_timestamp",
    "invoices",
]
_INVOICE_FIELDS = [
    "number",
    "reference",
    "state",
    "currency",
    "currency.code",
    "untaxed_amount",
    "tax_amount",
    "total_amount",
    "amount_to_pay",
    "invoice_date",
    "last_modified_at",
    "sales",
    "origin_invoices",
    "move",
    "cancel_move",
    "lines_to_pay",
    "payment_lines",
    "reconciliation_lines",
]
_MOVE_LINE_FIELDS = ["date", "maturity_date", "debit", "credit", "amount_second_currency", "second_currency",
                     "reconciliation", "move", "move_origin"]
_SALE_STATE_FIELDS = ["number", "reference", "state"]
_PARTY_FIELDS = ["addresses", "customer_payment_term", "customer_tax_rule"]
# the workflow buttons that take a sale from a state towards 'processing' (confirm normally runs process)
_STEPS = {"draft": ("quote", "confirm"), "quotation": ("confirm",), "confirmed": ("process",)}
CACHE_SECONDS = 300.0
_TRANSIENT_HINTS = ("database is locked", "OperationalError", "could not serialize", "deadlock", "TimeOutException")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return {"__class__": "Decimal", "decimal": str(obj)}
    if isinstance(obj, dt.datetime):
        return {
            "__class__": "datetime",
            "year": obj.year,
            "month": obj.month,
            "day": obj.day,
            "hour": obj.hour,
            "minute": obj.minute,
            "second": obj.second,
            "microsecond": obj.microsecond,
        }
    if isinstance(obj, dt.date):
        return {"__class__": "date", "year": obj.year, "month": obj.month, "day": obj.day}
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"cannot send {type(obj).__name__} to Tryton")


def _json_hook(dct: dict[str, Any]) -> Any:
    kind = dct.get("__class__")
    if kind == "Decimal":
        return Decimal(dct["decimal"])
    if kind == "datetime":
        return dt.datetime(
            dct["year"], dct["month"], dct["day"], dct["hour"], dct["minute"], dct["second"], dct["microsecond"]
        )
    if kind == "date":
        return dt.date(dct["year"], dct["month"], dct["day"])
    return dct


def _money(value: Any) -> Decimal:
    return Decimal(0) if value is None else Decimal(value)


class TrytonBackend:
    """An `ErpBackend` for one Tryton database, logged in as one user. Thread-safe."""

    name = "tryton"

    def __init__(self, url: str, database: str, username: str, password: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/") + "/"
        self.database = database
        self.username = username
        self.__password = password  # name-mangled: kept out of vars()/repr/tracebacks' locals
        self.timeout = timeout
        self._client = httpx.Client(timeout=timeout)
        self._lock = threading.Lock()
        self._auth: str | None = None
        self._context: dict[str, Any] = {}
        self._cache: dict[tuple[Any, ...], tuple[float, Any]] = {}

    def __repr__(self) -> str:
        return (
            f"TrytonBackend(url={self.url!r}, database={self.database!r}, username={self.username!r}, password='***')"
        )

    def close(self) -> None:
        self._client.close()

    # --- transport ---------------------------------------------------------------------------

    def _post(self, method: str, params: list[Any], *, auth: str | None, root: bool = False) -> Any:
        endpoint = f"{self.url}rpc/" if root else f"{self.url}{self.database}/rpc/"
        body = json.dumps({"id": 0, "method": method, "params": params}, default=_json_default)
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = auth
        try:
            resp = self._client.post(endpoint, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise ErpTransientError(f"Tryton timed out on {method} after {self.timeout}s") from exc
        except httpx.HTTPError as exc:
            raise ErpTransientError(f"cannot reach Tryton at {self.url}: {type(exc).__name__}") from exc
        status = resp.status_code
        if status == 401:
            raise _Unauthorized(method)
        if status == 429:
            raise ErpTransientError(f"Tryton rate-limited {method}")
        if status == 408:  # a proxy in front of Tryton gave up waiting: as a time-out, worth another try
            raise ErpTransientError(f"Tryton timed out on {method} (408 from the server)")
        if status == 403:
            raise ErpPermanentError(f"Tryton refused {method} (403 Forbidden)")
        if status == 404 and method == "common.db.login":
            raise _NoDatabase(method)
        if status >= 500:
            raise ErpTransientError(f"Tryton answered {status} to {method}")
        if status != 200:
            raise ErpPermanentError(f"Tryton answered {status} to {method}")
        try:
            data = json.loads(resp.content, object_hook=_json_hook)
        except ValueError as exc:
            raise ErpTransientError(f"Tryton sent an unreadable answer to {method}") from exc
        if "error" in data and data["error"] is not None:
            raise _map_error(method, data["error"])
        return data.get("result")

    def _login(self) -> None:
        try:
            result = self._post("common.db.login", [self.username, {"password": self.__password}], auth=None)
        except _Unauthorized:
            raise ErpPermanentError(
                f"Tryton login refused for user {self.username!r} on {self.database!r} (wrong username or password)"
            ) from None
        except _NoDatabase:
            raise self._login_not_found() from None
        user_id, token = result[0], result[1]
        raw = f"{self.username}:{user_id}:{token}".encode()
        self._auth = "Session " + base64.b64encode(raw).decode()
        self._context = self._post("model.res.user.get_preferences", [True, {}], auth=self._auth)

    def _login_not_found(self) -> ErpError:
        """trytond answers 404 to a login both for an unknown database and when it could not open it (e.g. its
        SQLite file locked by concurrent writes): only the database list tells which."""
        try:
            listed = self._post("common.db.list", [], auth=None, root=True)
        except ErpError:
            listed = None  # listing disabled ([database] list = False) or unreachable: assume it exists
        if isinstance(listed, list) and self.database not in listed:
            return ErpPermanentError(f"Tryton has no database {self.database!r}")
        return ErpTransientError(f"Tryton could not open database {self.database!r} to log in (busy?)")

    def call(self, method: str, *args: Any, context: dict[str, Any] | None = None) -> Any:
        """Call ``model.<name>.<method>``-style RPC with the session context appended."""
        with self._lock:
            if self._auth is None:
                self._login()
            auth, ctx = self._auth, {**self._context, **(context or {})}
        try:
            return self._post(method, [*args, ctx], auth=auth)
        except _Unauthorized:
            with self._lock:  # session expired: log in again once
                self._login()
                auth = self._auth
            try:
                return self._post(method, [*args, ctx], auth=auth)
            except _Unauthorized:
                raise ErpPermanentError(f"Tryton session refused for {method}") from None

    def _cached(self, key: tuple[Any, ...], fetch: Callable[[], Any]) -> Any:
        """``fetch()`` once per `CACHE_SECONDS` for ``key`` (a falsy answer is not kept: asked again)."""
        hit = self._cache.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        value = fetch()
        if value:
            self._cache[key] = (time.monotonic() + CACHE_SECONDS, value)
        return value

    def forget(self) -> None:
        """Drop cached ids and line defaults (the next push looks everything up again)."""
        self._cache.clear()

    def _search_read(
        self,
        model: str,
        domain: list[Any],
        fields: list[str],
        *,
        limit: int | None = None,
        order: list[Any] | None = None,
    ) -> list[dict[str, Any]]:
        return list(self.call(f"model.{model}.search_read", domain, 0, limit, order, fields))

    # --- interface ---------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        version = self._post("common.server.version", [], auth=None, root=True)
        with self._lock:
            self._login()
        return {
            "ok": True,
            "backend": self.name,
            "server_version": version,
            "database": self.database,
            "company_id": self._context.get("company"),
        }

    def push_customer(self, customer: CustomerPayload) -> str:
        return str(self._party(customer)["id"])

    def _party(self, customer: CustomerPayload) -> dict[str, Any]:
        """The party carrying our reference, created if missing, with the fields a sale needs."""
        return self._parties([customer])[customer.ref]

    def _parties(self, customers: list[CustomerPayload]) -> dict[str, dict[str, Any]]:
        """Our ref → party for *customers*: one search, one create for those missing, one read."""
        refs = sorted({c.ref for c in customers})
        fields = ["code", *_PARTY_FIELDS]
        found = {r["code"]: r for r in self._search_read("party.party", [("code", "in", refs)], fields)}
        missing = list({c.ref: c for c in customers if c.ref not in found}.values())
        if not missing:
            return found
        try:
            ids = self.call("model.party.party.create", [self._party_values(c) for c in missing])
        except ErpPermanentError:
            # Lost a race with a concurrent push (unique code): the other one's parties are ours.
            found = {r["code"]: r for r in self._search_read("party.party", [("code", "in", refs)], fields)}
            if len(found) < len(refs):
                raise
            return found
        found.update({r["code"]: r for r in self.call("model.party.party.read", ids, fields)})
        return found

    def _party_values(self, customer: CustomerPayload) -> dict[str, Any]:
        values: dict[str, Any] = {"name": customer.name, "code": customer.ref}
        if customer.lang:
            lang = self._cached(
                ("lang", customer.lang),
                lambda: self._search_read("ir.lang", [("code", "=", customer.lang)], ["id"], limit=1),
            )
            if lang:  # an unknown language is not worth failing an order for
                values["lang"] = lang[0]["id"]
        address: dict[str, Any] = {}
        if customer.address:
            a = customer.address
            address = {"street_unstructured": a.street, "city": a.city, "postal_code": a.zip}
            if a.country_code:
                code = a.country_code.upper()
                countries = self._cached(
                    ("country", code),
                    lambda: self._search_read("country.country", [("code", "=", code)], ["id"], limit=1),
                )
                if not countries:
                    raise ErpPermanentError(
                        f"Tryton does not know country {a.country_code!r} "
                        f"(customer {customer.ref}); import countries into Tryton"
                    )
                address["country"] = countries[0]["id"]
        values["addresses"] = [("create", [address])]
        mechanisms = [{"type": "email", "value": customer.email}] if customer.email else []
        if customer.phone:
            mechanisms.append({"type": "phone", "value": customer.phone})
        if mechanisms:
            values["contact_mechanisms"] = [("create", mechanisms)]
        return values

    def find_orders(self, ref: str) -> list[RemoteOrder]:
        rows = self._search_read("sale.sale", [("reference", "=", ref)], _ORDER_FIELDS, order=[("id", "ASC")])
        return [_to_order(r) for r in rows]

    def get_order(self, external_id: str) -> RemoteOrder:
        rows = self.call("model.sale.sale.read", [int(external_id)], _ORDER_FIELDS)
        return _to_order(rows[0])

    def push_order(self, order: OrderPayload) -> RemoteOrder:
        existing = self.find_orders(order.ref)
        if len(existing) > 1:
            raise ErpConflictError(
                f"{len(existing)} Tryton sales carry reference {order.ref}: "
                + ", ".join(o.external_id for o in existing)
            )
        if existing:
            return self._advance(existing[0].external_id, existing[0])
        try:
            sale_id = self._create_sale(order)
        except ErpPermanentError:
            if not self._cache:
                raise
            self.forget()  # a product or currency may have changed in Tryton since we cached it
            sale_id = self._create_sale(order)
        kept, _existed = self._one_sale_each({order.ref: str(sale_id)})[order.ref]
        return self._advance(kept.external_id, kept) if kept is not None else self._advance(str(sale_id), None)

    def _create_sale(self, order: OrderPayload) -> int:
        (sale_id,) = self._create_sales([order])
        return sale_id

    def _create_sales(self, orders: list[OrderPayload]) -> list[int]:
        """Draft sales for *orders* in one ``create`` (Tryton's transaction: all of them or none)."""
        for order in orders:
            if not order.lines:
                raise ErpPermanentError(f"order {order.ref} has no lines")
        currency_ids: dict[str, int] = {}
        for code in sorted({o.currency for o in orders}):
            currencies = self._cached(
                ("currency", code),
                functools.partial(self._search_read, "currency.currency", [("code", "=", code)], ["id"], limit=1),
            )
            if not currencies:
                refs = ", ".join(o.ref for o in orders if o.currency == code)
                raise ErpPermanentError(f"Tryton has no currency {code!r} (order {refs})")
            currency_ids[code] = currencies[0]["id"]
        products = self._products(sorted({ln.product_code for o in orders for ln in o.lines}),
                                  ", ".join(o.ref for o in orders))
        parties = self._parties([o.customer for o in orders])
        bare = [p for p in parties.values() if not p["addresses"]]
        if bare:
            new = self.call("model.party.address.create", [{"party": int(p["id"])} for p in bare])
            for party, address_id in zip(bare, new, strict=True):
                party["addresses"] = [address_id]
        values = []
        for order in orders:
            party = parties[order.customer.ref]
            party_id, currency_id = int(party["id"]), currency_ids[order.currency]
            header = {"party": party_id, "currency": currency_id, "company": self._context.get("company")}
            lines = [
                self._line_values(line, products[line.product_code], header, party["customer_tax_rule"])
                for line in order.lines
            ]
            address_id = party["addresses"][0]
            values.append({
                "reference": order.ref,
                "party": party_id,
                "currency": currency_id,
                "invoice_address": address_id,
                "shipment_address": address_id,
                "sale_date": order.order_date,
                "payment_term": party["customer_payment_term"],
                "lines": [("create", lines)],
            })
        return [int(i) for i in self.call("model.sale.sale.create", values)]

    def _products(self, codes: list[str], ref: str) -> dict[str, int]:
        """Code → id of salable products, one search for the codes not cached; unknown codes are an error."""
        out: dict[str, int] = {}
        for code in codes:
            hit = self._cache.get(("product", code))
            if hit is not None and hit[0] > time.monotonic():
                out[code] = hit[1]
        wanted = [c for c in codes if c not in out]
        if wanted:
            rows = self._search_read("product.product", [("code", "in", wanted), ("salable", "=", True)], ["code"])
            for p in rows:
                out[p["code"]] = p["id"]
                self._cache[("product", p["code"])] = (time.monotonic() + CACHE_SECONDS, p["id"])
        missing = [c for c in codes if c not in out]
        if missing:
            raise ErpPermanentError(f"unknown product code(s) in Tryton: {', '.join(missing)} (order {ref})")
        return out

    def _line_values(self, line: Any, product_id: int, header: dict[str, Any], tax_rule: Any) -> dict[str, Any]:
        values: dict[str, Any] = {"type": "line", "product": product_id, "quantity": float(line.quantity)}

        def defaults() -> dict[str, Any]:
            changes = self.call(
                "model.sale.line.on_change",
                {**values, **{f"_parent_sale.{k}": v for k, v in header.items()}},
                ["product"],
            )
            return {"unit": changes["unit"], "taxes": [t["id"] for _op, t in changes.get("taxes", {}).get("add", [])]}

        # what on_change gives us depends on the product, the party's tax rule, currency and company only
        key = ("line", product_id, tax_rule, header["currency"], header["company"])
        found = self._cached(key, defaults)
        taxes = found["taxes"] if line.taxes is None else [int(t) for t in line.taxes]  # None: tests only
        return {
            **values,
            "unit": found["unit"],
            "taxes": [("add", taxes)] if taxes else [],
            "unit_price": line.unit_price,
            "description": line.description,
        }

    def _advance(self, external_id: str, order: RemoteOrder | None) -> RemoteOrder:
        """Drive a sale carrying our reference to 'processing' (invoice created): the workflow's buttons in a
        row, then one read (``order`` None: a sale we just created, in draft)."""
        state = "draft" if order is None else order.state
        for _ in range(3):
            steps = _STEPS.get(state)
            if steps is None:  # processing, done, cancelled: nothing for us to do
                return order if order is not None else self.get_order(external_id)
            for step in steps:  # 'confirm' queues 'process', which runs at once unless Tryton has a worker
                self.call(f"model.sale.sale.{step}", [int(external_id)])
            order = self.get_order(external_id)
            state = order.state
        raise ErpPermanentError(f"Tryton sale {external_id} stuck in state {state}")

    def push_orders(self, orders: Sequence[OrderPayload]) -> list[Pushed]:
        """Several orders in a handful of calls: one search for our references, one create for the new sales
        (with their parties), then each workflow button once for every sale at that step, and one read.

        Tryton runs each call in one transaction, so a batch call that fails changed nothing: the orders of
        that step are then done one by one, so one bad order (unknown product, Tryton validation error) fails
        alone. A transient error (Tryton down, database locked) is raised for the whole batch."""
        refs = [o.ref for o in orders]
        if not refs:
            return []
        found: dict[str, list[RemoteOrder]] = {}
        for row in self._search_read("sale.sale", [("reference", "in", refs)], _ORDER_FIELDS, order=[("id", "ASC")]):
            found.setdefault(row["reference"], []).append(_to_order(row))
        results: dict[str, Pushed] = {}
        existed = set(found)
        todo: dict[str, RemoteOrder | None] = {}  # ref → sale to drive (None: just created, in draft)
        ids: dict[str, str] = {}
        for ref, remote in found.items():
            if len(remote) > 1:
                results[ref] = Pushed(ref, error=ErpConflictError(
                    f"{len(remote)} Tryton sales carry reference {ref}: " + ", ".join(o.external_id for o in remote)))
            else:
                todo[ref], ids[ref] = remote[0], remote[0].external_id
        new = [o for o in orders if o.ref not in found]
        if new:
            try:
                created = self._create_sales(new)
            except ErpPermanentError:
                self.forget()  # a cached product or currency may be stale; then find the bad order alone
                created = []
                for order in new:
                    try:
                        created.append(self._create_sale(order))
                    except ErpPermanentError as exc:
                        results[order.ref] = Pushed(order.ref, error=exc)
                        created.append(0)
            mine = {order.ref: str(sale_id) for order, sale_id in zip(new, created, strict=True) if sale_id}
            for ref, (kept, theirs) in self._one_sale_each(mine).items():
                todo[ref], ids[ref] = kept, (kept.external_id if kept is not None else mine[ref])
                if theirs:
                    existed.add(ref)
        results.update(self._advance_many(todo, ids, existed=existed))
        return [results[ref] for ref in refs]

    def _one_sale_each(self, mine: dict[str, str]) -> dict[str, tuple[RemoteOrder | None, bool]]:
        """After creating the draft sales ``mine`` (ref → id), before pressing any button: the search-then-create
        of two runners of one order is no transaction, so another runner (one whose lease ran out while it was
        still in its ``create``, or whose worker was killed with its ``create`` still running in trytond) may have
        created a sale for the same reference between our search and our create. Look again; where a reference
        has several sales, keep one and delete our draft: a sale another runner already moved on (quoted or
        further), else the lowest id — the first committed (trytond on SQLite commits one write at a time), which
        its own runner keeps by the same rule. Returns ref → (the sale to drive: None for our own draft, whether
        it was another runner's)."""
        out: dict[str, tuple[RemoteOrder | None, bool]] = {ref: (None, False) for ref in mine}
        if not mine:
            return out
        again: dict[str, list[RemoteOrder]] = {}
        for row in self._search_read("sale.sale", [("reference", "in", list(mine))], _ORDER_FIELDS,
                                     order=[("id", "ASC")]):
            again.setdefault(row["reference"], []).append(_to_order(row))
        ours_to_drop: list[int] = []
        for ref, sale_id in mine.items():
            others = [o for o in again.get(ref, []) if o.external_id != sale_id]
            if not others:
                continue
            moved = [o for o in others if o.state != "draft"]
            keep = moved[0] if moved else min([*others], key=lambda o: int(o.external_id))
            if moved or int(keep.external_id) < int(sale_id):
                ours_to_drop.append(int(sale_id))
                out[ref] = (keep, True)
        if ours_to_drop:
            self.call("model.sale.sale.delete", ours_to_drop)  # drafts: Tryton cancels then deletes them
        return out

    def _advance_many(self, todo: dict[str, RemoteOrder | None], ids: dict[str, str],
                      existed: set[str]) -> dict[str, Pushed]:
        """`_advance` for many sales: each button pressed once for all the sales at its step."""
        steps = {ref: _STEPS.get("draft" if remote is None else remote.state, ()) for ref, remote in todo.items()}
        try:
            for button in ("quote", "confirm", "process"):  # the workflow's order; _STEPS says who needs which
                batch = [int(ids[ref]) for ref in todo if button in steps[ref]]
                if batch:
                    self.call(f"model.sale.sale.{button}", batch)
            rows = self.call("model.sale.sale.read", [int(ids[ref]) for ref in todo], _ORDER_FIELDS) if todo else []
            done = {r["reference"]: _to_order(r) for r in rows}
        except ErpPermanentError:
            done = {}  # one sale refused a step: redo them one by one, so only that one fails
        out: dict[str, Pushed] = {}
        for ref in todo:
            got = done.get(ref)
            try:
                if got is None:
                    got = self._advance(ids[ref], self.get_order(ids[ref]))
                elif got.state in _STEPS:
                    got = self._advance(ids[ref], got)
                out[ref] = Pushed(ref, order=got, existed=ref in existed)
            except ErpPermanentError as exc:
                out[ref] = Pushed(ref, error=exc, existed=ref in existed)
        return out

    def cancel_order(self, external_id: str, expected_write_marker: str) -> RemoteOrder:
        current = self.get_order(external_id)
        if current.write_marker != expected_write_marker:
            raise ErpConflictError(
                f"Tryton sale {external_id} changed since we last saw it "
                f"(marker {expected_write_marker} → {current.write_marker})"
            )
        if current.state == "cancelled":
            return current
        if current.state not in ("draft", "quotation", "confirmed"):
            raise ErpPermanentError(
                f"Tryton cannot cancel sale {external_id} in state {current.state!r}; "
                "cancel its invoices and shipments in Tryton instead"
            )
        ctx = {"_timestamp": {f"sale.sale,{external_id}": expected_write_marker}}
        if current.state == "confirmed":
            self.call("model.sale.sale.draft", [int(external_id)], context=ctx)
            ctx = {}
        self.call("model.sale.sale.cancel", [int(external_id)], context=ctx)
        return self.get_order(external_id)

    def pull_invoices(self, cursor: str | None = None, limit: int = 100) -> list[RemoteInvoice]:
        domain: list[Any] = [("type", "=", "out")]
        if cursor:
            stamp, last_id = _parse_cursor(cursor)
            domain.append(
                ["OR", ("last_modified_at", ">", stamp), [("last_modified_at", "=", stamp), ("id", ">", last_id)]]
            )
        rows = self._search_read(
            "account.invoice", domain, _INVOICE_FIELDS, limit=limit, order=[("last_modified_at", "ASC"), ("id", "ASC")]
        )
        return self._invoices(rows)

    def get_invoices(self, external_ids: Sequence[str]) -> list[RemoteInvoice]:
        ids = [int(i) for i in external_ids]
        if not ids:
            return []
        rows = self._search_read("account.invoice", [("type", "=", "out"), ("id", "in", ids)], _INVOICE_FIELDS,
                                 order=[("id", "ASC")])
        return self._invoices(rows)

    def _invoices(self, rows: list[dict[str, Any]]) -> list[RemoteInvoice]:
        """Rows of account.invoice → RemoteInvoice: a few reads per page, whatever its size — the credited
        invoices' sales (credit notes point at invoice lines, not sale lines), the sales' references, and the
        receivable move lines (due dates, payments)."""
        credited = sorted({i for r in rows for i in r["origin_invoices"]})
        credited_sales = (
            {c["id"]: sorted(c["sales"]) for c in self.call("model.account.invoice.read", credited, ["sales"])}
            if credited
            else {}
        )
        sale_ids = sorted({s for r in rows for s in r["sales"]} | {s for v in credited_sales.values() for s in v})
        refs = (
            {s["id"]: s["reference"] for s in self.call("model.sale.sale.read", sale_ids, ["reference"])}
            if sale_ids
            else {}
        )
        line_ids = sorted({i for r in rows for f in ("lines_to_pay", "payment_lines", "reconciliation_lines")
                           for i in r[f]})
        lines = (
            {m["id"]: m for m in self.call("model.account.move.line.read", line_ids, _MOVE_LINE_FIELDS)}
            if line_ids
            else {}
        )
        out = []
        for r in rows:
            sales = sorted(r["sales"]) or next(
                (credited_sales[c] for c in sorted(r["origin_invoices"]) if credited_sales.get(c)), [])
            out.append(_to_invoice(r, refs, sales, lines))
        return out

    def invoice_ids(self, after: str | None = None, limit: int = 10000) -> list[str]:
        domain: list[Any] = [("type", "=", "out")]
        if after:
            domain.append(("id", ">", int(after)))
        return [str(i) for i in self.call("model.account.invoice.search", domain, 0, limit, [("id", "ASC")])]

    def existing_invoices(self, external_ids: Sequence[str]) -> set[str]:
        ids = [int(i) for i in external_ids]
        if not ids:
            return set()
        found = self.call("model.account.invoice.search", [("type", "=", "out"), ("id", "in", ids)], 0, None, None)
        return {str(i) for i in found}

    def sweep_orders(self, prefix: str, after: str | None = None, limit: int = 5000) -> list[SaleState]:
        domain: list[Any] = [("reference", "like", f"{prefix}%")]
        if after:
            domain.append(("id", ">", int(after)))
        rows = self._search_read("sale.sale", domain, _SALE_STATE_FIELDS, limit=limit, order=[("id", "ASC")])
        return [_to_sale_state(r) for r in rows]

    def sale_states(self, external_ids: Sequence[str]) -> list[SaleState]:
        ids = [int(i) for i in external_ids]
        if not ids:
            return []
        rows = self._search_read("sale.sale", [("id", "in", ids)], _SALE_STATE_FIELDS, order=[("id", "ASC")])
        return [_to_sale_state(r) for r in rows]

    def read_orders(self, external_ids: Sequence[str]) -> list[RemoteOrder]:
        ids = [int(i) for i in external_ids]
        if not ids:
            return []
        rows = self._search_read("sale.sale", [("id", "in", ids)], _ORDER_FIELDS, order=[("id", "ASC")])
        return [_to_order(r) for r in rows]

    def document_url(self, web_url: str, model: str, external_id: str) -> str:
        """Tryton's web client (sao) opens ``<web client>/#<database>/model/<model>/<id>``."""
        name = {"sale": "sale.sale", "invoice": "account.invoice"}.get(model)
        if not web_url or not name or not external_id:
            return ""
        return f"{web_url.rstrip('/')}/#{self.database}/model/{name}/{external_id}"

    def pull_products(self, cursor: str | None = None, limit: int = 100) -> list[RemoteProduct]:
        domain: list[Any] = [("salable", "=", True)]
        if cursor:
            domain.append(("id", ">", int(cursor)))
        rows = self._search_read(
            "product.product", domain, ["code", "name", "list_price_used", "active"], limit=limit, order=[("id", "ASC")]
        )
        return [
            RemoteProduct(
                external_id=str(r["id"]),
                code=r["code"] or "",
                name=r["name"],
                list_price=_money(r["list_price_used"]),
                is_active=bool(r["active"]),
            )
            for r in rows
        ]


    def accounting_rules(self, currencies: Sequence[str]) -> ErpRules:
        """Tax rounding (the company's account configuration), the sale line's unit price digits, the rounding
        of ``currencies`` and the taxes a customer sale may carry (no parent; no group, or a sale one)."""
        config = self.call("model.account.configuration.read", [1], ["tax_rounding"])
        tax_rounding = str(config[0]["tax_rounding"]) if config else "document"
        described = self.call("model.sale.line.fields_get", ["unit_price"])
        digits = described.get("unit_price", {}).get("digits")  # JSON text: '[null, 4]' (integer digits, decimals)
        try:
            decimals = json.loads(digits)[1] if isinstance(digits, str) else None
        except (ValueError, TypeError, IndexError, KeyError):
            decimals = None
        price_digits = decimals if isinstance(decimals, int) else None
        rounding = {r["code"]: _money(r["rounding"]) for r in self._search_read(
            "currency.currency", [("code", "in", sorted(set(currencies)))], ["code", "rounding"])} if currencies else {}
        sale_taxes = [("parent", "=", None), ["OR", ("group", "=", None), ("group.kind", "in", ["sale", "both"])]]
        rows = self._search_read("account.tax", sale_taxes, ["name", "type", "rate", "childs", "update_unit_price"],
                                 order=[("id", "ASC")])
        taxes = tuple(RemoteTax(
            external_id=str(r["id"]), name=r["name"], kind=r["type"],
            rate=Decimal(r["rate"]).normalize() if r["type"] == "percentage" and r["rate"] is not None else None,
            is_composite=bool(r["childs"]) or bool(r["update_unit_price"])) for r in rows)
        return ErpRules(tax_rounding=tax_rounding, price_digits=price_digits, currency_rounding=rounding,
                        taxes=taxes)


class _Unauthorized(Exception):
    """HTTP 401: bad login or expired session (internal; never leaves this module)."""


class _NoDatabase(Exception):
    """HTTP 404 to a login: no such database, or trytond could not open it (internal)."""


def _map_error(method: str, error: Any) -> ErpError:
    kind = error[0] if isinstance(error, list) and error else error
    detail = error[1] if isinstance(error, list) and len(error) > 1 else None
    if kind in ("UserError", "UserWarning"):
        parts = list(detail or [])
        text = parts[1] if kind == "UserWarning" else parts[0]
        extra = parts[2] if kind == "UserWarning" else parts[1]
        message = f"{text} - {extra}" if extra else str(text)
        return ErpPermanentError(f"Tryton rejected {method}: {message}", remote_message=message)
    if kind == "ConcurrencyException":
        return ErpConflictError(f"Tryton: {detail}", remote_message=str(detail))
    if kind == "LoginException":
        return ErpPermanentError(f"Tryton asks for more login parameters on {method}")
    text = str(kind)
    if any(hint in text or hint in str(detail) for hint in _TRANSIENT_HINTS):
        return ErpTransientError(f"Tryton is busy on {method}: {text}", remote_message=text)
    return ErpPermanentError(f"Tryton failed on {method}: {text}", remote_message=text)


def _to_order(row: dict[str, Any]) -> RemoteOrder:
    return RemoteOrder(
        external_id=str(row["id"]),
        number=row.get("number"),
        reference=row.get("reference") or "",
        state=row["state"],
        currency=_nested(row, "currency", "code"),
        untaxed=_money(row["untaxed_amount"]),
        tax=_money(row["tax_amount"]),
        total=_money(row["total_amount"]),
        write_marker=str(row["_timestamp"]),
        invoice_ids=tuple(str(i) for i in row.get("invoices") or ()),
    )


def _to_sale_state(row: dict[str, Any]) -> SaleState:
    return SaleState(external_id=str(row["id"]), number=row.get("number"), reference=row.get("reference") or "",
                     state=row["state"])


def _settled(row: dict[str, Any], lines: dict[int, dict[str, Any]]) -> tuple[Payment, ...]:
    """Money settled against the invoice: its payment lines and the lines reconciled with it that are not its
    own, in the invoice's currency (credit − debit on the receivable: positive for money received)."""
    own_move = row.get("move")
    out = []
    for line_id in sorted(set(row["payment_lines"]) | set(row["reconciliation_lines"])):
        line = lines.get(line_id)
        if line is None or (own_move and line["move"] == own_move):
            continue
        if line.get("second_currency") and line["second_currency"] == row.get("currency"):
            amount = -_money(line["amount_second_currency"])
        else:
            amount = _money(line["credit"]) - _money(line["debit"])
        # Tryton's pay wizard makes the payment's move with the invoice itself as origin; a line of another
        # invoice's move is that document settling this one (a credit note and the invoice it credits)
        origin = line.get("move_origin") or ""
        other = origin.startswith("account.invoice,") and origin != f"account.invoice,{row['id']}"
        out.append(Payment(line.get("date"), amount, "credit_note" if other else "payment"))
    return tuple(sorted(out, key=lambda p: (p.date or dt.date.min, p.amount)))


def _to_invoice(row: dict[str, Any], refs: dict[int, str], sales: list[int],
                lines: dict[int, dict[str, Any]]) -> RemoteInvoice:
    stamp: dt.datetime = row["last_modified_at"]
    own = row.get("reference") or ""
    total = _money(row["total_amount"])
    open_lines = [lines[i] for i in row["lines_to_pay"] if i in lines and not lines[i]["reconciliation"]]
    due = min((m["maturity_date"] for m in open_lines if m.get("maturity_date")), default=None)
    return RemoteInvoice(
        external_id=str(row["id"]),
        number=row.get("number"),
        order_reference=(refs.get(sales[0]) or None) if sales else (own or None),
        state=row["state"],
        currency=_nested(row, "currency", "code"),
        untaxed=_money(row["untaxed_amount"]),
        tax=_money(row["tax_amount"]),
        total=total,
        amount_to_pay=_money(row["amount_to_pay"]),
        is_paid=row["state"] == "paid",
        invoice_date=row.get("invoice_date"),
        cursor=f"{stamp.isoformat()}|{row['id']}",
        kind="credit_note" if total < 0 or row["origin_invoices"] else "invoice",
        reference=own,
        sale_id=str(sales[0]) if sales else "",
        credited_ids=tuple(str(i) for i in sorted(row["origin_invoices"])),
        move_id=str(row["move"] or ""),
        cancel_move_id=str(row["cancel_move"] or ""),
        due_date=due if row["state"] == "posted" else None,
        payments=_settled(row, lines),
    )


def _nested(row: dict[str, Any], field: str, sub: str) -> Any:
    value = row.get(f"{field}.") or {}
    return value.get(sub)


def _parse_cursor(cursor: str) -> tuple[dt.datetime, int]:
    try:
        stamp, last_id = cursor.rsplit("|", 1)
        return dt.datetime.fromisoformat(stamp), int(last_id)
    except ValueError as exc:
        raise ErpPermanentError(f"malformed invoice cursor {cursor!r}") from exc
