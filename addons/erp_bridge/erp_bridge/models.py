"""erp_bridge tables. Money is Numeric (Decimal), quantized to the currency's minor unit; never float."""

from __future__ import annotations

from decimal import Decimal

from piccolo.columns import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Integer,
    Numeric,
    Secret,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from core.mixins import Timestamped

MONEY = (18, 4)  # wide enough for every minor unit (JPY 0 … KWD 3 decimals)


class BackendConfig(Table, tablename="erp_bridge_backend"):
    """One configured ERP: ``kind`` names a ``crm.erp_backends`` entry point. The password never leaves
    this row except to log in (``Secret``: excluded from ``select(exclude_secrets=True)``, masked in views)."""

    id: Serial  # added by Piccolo; declared for type checkers
    name = Varchar(length=60, unique=True)
    kind = Varchar(length=30, default="tryton")
    url = Varchar(length=300, default="")
    database = Varchar(length=100, default="")
    username = Varchar(length=100, default="")
    password = Secret(length=300, default="")  # type: ignore[no-untyped-call]  # Piccolo's Secret.__init__ is untyped
    is_active = Boolean(default=True)
    web_url = Varchar(length=300, default="")  # the ERP's web client, for links to its documents

    def __repr__(self) -> str:  # Piccolo's repr would print the password
        return f"BackendConfig(name={self.name!r}, kind={self.kind!r}, url={self.url!r}, password='***')"


class Binding(Timestamped, Table, tablename="erp_bridge_binding"):
    """``(backend, model, local_id) ↔ external_id``: what the ERP holds for one CRM record, unique per key."""

    id: Serial  # added by Piccolo; declared for type checkers
    backend = ForeignKey(BackendConfig, on_delete=OnDelete.cascade)
    model = Varchar(length=60, default="crm_sales.order")
    local_id = Integer(index=True)
    reference = Varchar(length=60, default="", index=True)  # our deterministic ERP reference (CRM-SO-42)
    external_id = Varchar(length=60, default="", index=True)
    external_number = Varchar(length=60, default="")
    state = Varchar(length=12, default="in_flight", index=True)  # in_flight | synced | failed
    operation = Varchar(length=12, default="push")  # push | cancel: what the last job tried
    sync_date = Timestamptz(null=True, default=None)
    payload_hash = Varchar(length=64, default="")
    remote_state = Varchar(length=30, default="")  # the ERP's own state name
    remote_marker = Varchar(length=60, default="")  # the ERP's write marker when we last saw it
    invoice_number = Varchar(length=60, default="")
    is_paid = Boolean(default=False)
    last_error = Text(default="")
    attempts = Integer(default=0)
    reruns = Integer(default=0)  # runs that found the work already done in the ERP: duplicates prevented
    locked_until = Timestamptz(null=True, default=None)  # per-record lock (a lease: a killed worker's expires)
    retry_at = Timestamptz(null=True, default=None)  # after a transient failure: not tried again before this


class RemoteInvoice(Table, tablename="erp_bridge_invoice"):
    """The ERP's customer invoices as last pulled; ``(backend, external_id)`` is unique."""

    id: Serial  # added by Piccolo; declared for type checkers
    backend = ForeignKey(BackendConfig, on_delete=OnDelete.cascade)
    external_id = Varchar(length=60)
    number = Varchar(length=60, default="")
    order_reference = Varchar(length=60, default="", index=True)
    state = Varchar(length=30, default="")
    currency = Varchar(length=3, default="")
    untaxed = Numeric(digits=MONEY, default=Decimal(0))
    tax = Numeric(digits=MONEY, default=Decimal(0))
    total = Numeric(digits=MONEY, default=Decimal(0))
    amount_to_pay = Numeric(digits=MONEY, default=Decimal(0))
    is_paid = Boolean(default=False)
    invoice_date = Date(null=True, default=None)
    cursor = Varchar(length=100, default="")
    paid_notified_at = Timestamptz(null=True, default=None)  # erp_bridge_invoice_paid published once
    pulled_at = Timestamptz(default=TimestamptzNow())
    kind = Varchar(length=12, default="invoice")  # invoice | credit_note
    reference = Varchar(length=60, default="")  # the invoice's own reference
    sale_id = Varchar(length=60, default="", index=True)  # the ERP sale (a credit note: the credited invoice's)
    credited_ids = Varchar(length=300, default="")  # a credit note: the invoices it credits
    move_id = Varchar(length=30, default="")
    cancel_move_id = Varchar(length=30, default="")  # an invoice cancelled by a credit note: that note's move
    due_date = Date(null=True, default=None)
    payments = JSON(default="[]")  # [{"date", "amount", "kind"}]: money settled against it
    deleted_at = Timestamptz(null=True, default=None)  # gone from the ERP (a deleted draft): kept for the record


class PullCursor(Table, tablename="erp_bridge_pull_cursor"):
    """Where the last incremental pull of ``kind`` stopped (an opaque keyset cursor, never an offset)."""

    id: Serial  # added by Piccolo; declared for type checkers
    backend = ForeignKey(BackendConfig, on_delete=OnDelete.cascade)
    kind = Varchar(length=20, default="invoice")
    cursor = Varchar(length=100, default="")
    updated_at = Timestamptz(default=TimestamptzNow())


class ReconciliationRun(Table, tablename="erp_bridge_reconciliation_run"):
    id: Serial  # added by Piccolo; declared for type checkers
    backend = ForeignKey(BackendConfig, on_delete=OnDelete.cascade)
    trigger = Varchar(length=20, default="schedule")  # schedule | cli | web
    started_at = Timestamptz(default=TimestamptzNow())
    finished_at = Timestamptz(null=True, default=None)
    counts = JSON(default="{}")  # status -> number of lines
    error = Text(default="")
    stats = JSON(default="{}")  # orders, seconds, seconds waiting for the ERP


class ReconciliationLine(Table, tablename="erp_bridge_reconciliation_line"):
    """One order/invoice pair as finance sees it; ``status`` is one of ``reconcile.STATUSES``."""

    id: Serial  # added by Piccolo; declared for type checkers
    run = ForeignKey(ReconciliationRun, on_delete=OnDelete.cascade, index=True)
    status = Varchar(length=20, index=True)
    reference = Varchar(length=60, default="", index=True)
    order_id = Integer(null=True, default=None)
    person_id = Integer(null=True, default=None, index=True)
    customer = Varchar(length=200, default="")
    order_date = Date(null=True, default=None, index=True)
    crm_currency = Varchar(length=3, default="")
    crm_untaxed = Numeric(digits=MONEY, null=True, default=None)
    crm_tax = Numeric(digits=MONEY, null=True, default=None)
    crm_total = Numeric(digits=MONEY, null=True, default=None)
    erp_currency = Varchar(length=3, default="")
    erp_untaxed = Numeric(digits=MONEY, null=True, default=None)
    erp_tax = Numeric(digits=MONEY, null=True, default=None)
    erp_total = Numeric(digits=MONEY, null=True, default=None)
    external_ids = Varchar(length=300, default="")  # ERP sale ids (several: a duplicate)
    invoice_ids = Varchar(length=300, default="")
    invoice_number = Varchar(length=60, default="")
    is_paid = Boolean(default=False)
    mismatched = Varchar(length=40, default="")  # "untaxed,tax,total": which amounts differ
    detail = Text(default="")
    difference = Numeric(digits=MONEY, null=True, default=None)  # CRM total − ERP total (same currency)
    erp_state = Varchar(length=30, default="")  # the ERP sale's state
    sale_number = Varchar(length=60, default="")
    invoice_date = Date(null=True, default=None)
    due_date = Date(null=True, default=None)  # the earliest open maturity of the order's posted invoices
    erp_paid = Numeric(digits=MONEY, null=True, default=None)
    erp_outstanding = Numeric(digits=MONEY, null=True, default=None)
    credit_notes = Varchar(length=300, default="")  # numbers of the order's credit notes
    documents = JSON(default="[]")  # the order's invoices and credit notes with their payments
    synced_at = Timestamptz(null=True, default=None)
    synced_by = Varchar(length=150, default="")
    previous_status = Varchar(length=20, default="")  # in the run before ("": not there)
    fingerprint = Varchar(length=64, default="")  # the figures a review holds for
    review_note = Text(default="")
    reviewed_by = Varchar(length=150, default="")
    reviewed_at = Timestamptz(null=True, default=None)


class ReconciliationReview(Table, tablename="erp_bridge_reconciliation_review"):
    """A finance clerk's review of one reference: kept across runs while the line's figures (``fingerprint``)
    stay the same; unique per ``(backend, reference)``."""

    id: Serial  # added by Piccolo; declared for type checkers
    backend = ForeignKey(BackendConfig, on_delete=OnDelete.cascade)
    reference = Varchar(length=60, default="", index=True)
    fingerprint = Varchar(length=64, default="")
    note = Text(default="")
    reviewed_by = Varchar(length=150, default="")
    reviewer_id = Integer(null=True, default=None)
    reviewed_at = Timestamptz(default=TimestamptzNow())


class TaxMapping(Table, tablename="erp_bridge_tax_map"):
    """A CRM tax rate → the ERP tax every line at that rate gets (``erp_bridge.taxes``); no ERP tax (``erp_tax``
    empty) means the line is sent with no tax at all. A rate without a row cannot be quoted or sent to the ERP.
    ``crm erp check`` verifies each row against the ERP (the tax exists and has the same rate)."""

    id: Serial  # added by Piccolo; declared for type checkers
    rate = Numeric(digits=(6, 4), unique=True)  # a fraction, as crm_sales' tax_rate: 0.13 for 13 %
    erp_tax = Varchar(length=60, default="")  # the ERP's id of the tax ("" = no tax)
    erp_tax_name = Varchar(length=200, default="")  # the ERP's name for it, for people (set by `crm erp taxes`)
