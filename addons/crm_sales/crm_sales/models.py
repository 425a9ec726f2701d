"""Tables of the sales engine.

Records a user works on (leads, opportunities, activities, quotes, orders) are the kernel's
``BusinessRecord``: ``owner``/``team`` for the record rules, ``is_archived`` and ``version`` (optimistic
concurrency). Money is ``Numeric`` read
back as ``Decimal``; amounts are stored rounded to the currency's minor unit (see ``pricing.py``).
A quote's place in its revision chain is ``revision``/``revision_of``: ``version`` is the kernel's
concurrency counter and means something else.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from piccolo.columns import (
    JSON,
    BigInt,
    Boolean,
    Date,
    ForeignKey,
    Integer,
    LazyTableReference,
    Numeric,
    OnDelete,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from core.mixins import BusinessRecord, Created, Versioned, team_ref, user_ref

if TYPE_CHECKING:
    from core.security.models import Team, User

MONEY = (16, 2)
QTY = (16, 4)


def _person() -> LazyTableReference:
    """crm_contacts' people, by name: the boundaries let this addon import only ``crm_contacts.api``, so
    foreign keys to them are typed ``ForeignKey[Table]``."""
    return LazyTableReference("Person", module_path="crm_contacts.models")


class PipelineStage(Table, tablename="crm_sales_pipeline_stage"):
    """A column of the board. ``team`` NULL: the default pipeline, used by teams without their own."""
    id: Serial  # added by Piccolo; declared for type checkers

    key = Varchar(length=40, index=True)
    name = Varchar(length=100)
    name_zh = Varchar(length=100, default="")
    team: ForeignKey[Team] = ForeignKey(team_ref(), null=True, on_delete=OnDelete.cascade)
    sequence = Integer(default=10)
    probability = Integer(default=10)  # default win probability (%) of a deal in this stage
    stall_hours = Integer(default=48)
    is_won = Boolean(default=False)
    is_lost = Boolean(default=False)


class Lead(BusinessRecord, Table, tablename="crm_sales_lead"):
    id: Serial  # added by Piccolo; declared for type checkers
    name = Varchar(length=200)
    contact_name = Varchar(length=200, default="")
    company_name = Varchar(length=200, default="")
    email = Varchar(length=254, default="")
    phone = Varchar(length=40, default="")
    language = Varchar(length=10, default="")
    region = Varchar(length=60, default="")
    industry = Varchar(length=100, default="")
    source = Varchar(length=60, default="")
    product_interest = Varchar(length=100, default="")
    utm_source = Varchar(length=100, default="")
    utm_medium = Varchar(length=100, default="")
    utm_campaign = Varchar(length=100, default="")
    expected_revenue = Numeric(digits=MONEY, default=Decimal(0))
    currency = Varchar(length=3, default="CNY")
    state = Varchar(length=20, default="new", index=True)  # new | qualified | disqualified
    disqualified_reason = Varchar(length=300, default="")
    opportunity_id = BigInt(null=True, default=None)
    assignment_rule_id = BigInt(null=True, default=None)
    assigned_at = Timestamptz(null=True, default=None)
    custom = JSON(default="{}")  # custom fields (core.customfields)
    created_at = Timestamptz(default=TimestamptzNow(), index=True)


class Opportunity(BusinessRecord, Table, tablename="crm_sales_opportunity"):
    id: Serial  # added by Piccolo; declared for type checkers
    name = Varchar(length=200)
    person: ForeignKey[Table] = ForeignKey(_person(), null=True, on_delete=OnDelete.set_null)
    lead_id = BigInt(null=True, default=None)
    stage = ForeignKey(PipelineStage, on_delete=OnDelete.restrict)
    stage_entered_at = Timestamptz(default=TimestamptzNow())
    state = Varchar(length=10, default="open", index=True)  # open | won | lost
    expected_revenue = Numeric(digits=MONEY, default=Decimal(0))
    currency = Varchar(length=3, default="CNY")
    probability = Integer(default=10)  # percent, 0..100
    is_probability_manual = Boolean(default=False)
    score_explanation = JSON(default="{}")
    expected_close = Date(null=True, default=None)
    source = Varchar(length=60, default="")
    region = Varchar(length=60, default="")
    industry = Varchar(length=100, default="")
    products_of_interest = Varchar(length=300, default="")
    tags = JSON(default="[]")
    lost_reason = Varchar(length=300, default="")
    closed_at = Timestamptz(null=True, default=None)
    stall_alerted_at = Timestamptz(null=True, default=None)
    custom = JSON(default="{}")  # custom fields (core.customfields)
    created_at = Timestamptz(default=TimestamptzNow(), index=True)


class StageHistory(Table, tablename="crm_sales_stage_history"):
    id: Serial  # added by Piccolo; declared for type checkers
    opportunity = ForeignKey(Opportunity, on_delete=OnDelete.cascade, index=True)
    stage = ForeignKey(PipelineStage, on_delete=OnDelete.cascade)
    entered_at = Timestamptz(default=TimestamptzNow())
    left_at = Timestamptz(null=True, default=None)
    by_user: ForeignKey[User] = ForeignKey(user_ref(), null=True, on_delete=OnDelete.set_null)


class AssignmentRule(Table, tablename="crm_sales_assignment_rule"):
    """Tried in ``sequence`` order; empty criteria match anything. The first rule with a free member wins."""
    id: Serial  # added by Piccolo; declared for type checkers

    name = Varchar(length=100)
    sequence = Integer(default=10)
    is_active = Boolean(default=True)
    region = Varchar(length=60, default="")
    industry = Varchar(length=100, default="")
    source = Varchar(length=60, default="")
    product = Varchar(length=100, default="")
    min_value = Numeric(digits=MONEY, null=True, default=None)
    max_value = Numeric(digits=MONEY, null=True, default=None)
    strategy = Varchar(length=20, default="round_robin")  # round_robin | least_loaded
    team: ForeignKey[Team] = ForeignKey(team_ref(), null=True, on_delete=OnDelete.set_null)


class AssignmentMember(Table, tablename="crm_sales_assignment_member"):
    id: Serial  # added by Piccolo; declared for type checkers
    rule = ForeignKey(AssignmentRule, on_delete=OnDelete.cascade, index=True)
    user: ForeignKey[User] = ForeignKey(user_ref(), on_delete=OnDelete.cascade)
    capacity = Integer(default=0)  # open leads + opportunities this member may hold; 0 = no limit
    last_assigned_at = Timestamptz(null=True, default=None)


class Activity(BusinessRecord, Created, Table, tablename="crm_sales_activity"):
    id: Serial  # added by Piccolo; declared for type checkers
    kind = Varchar(length=20, default="todo")  # call | meeting | email | todo
    subject = Varchar(length=200)
    note = Text(default="")
    due_at = Timestamptz(index=True)
    remind_minutes = Integer(default=30)
    reminded_at = Timestamptz(null=True, default=None)
    done_at = Timestamptz(null=True, default=None)
    lead = ForeignKey(Lead, null=True, on_delete=OnDelete.cascade, index=True)
    opportunity = ForeignKey(Opportunity, null=True, on_delete=OnDelete.cascade, index=True)
    person: ForeignKey[Table] = ForeignKey(_person(), null=True, on_delete=OnDelete.cascade, index=True)


class Notification(Created, Table, tablename="crm_sales_notification"):
    """An in-app message; ``dedup_key`` is unique so a retried job cannot notify twice."""
    id: Serial  # added by Piccolo; declared for type checkers

    # not null: a message has a reader
    owner: ForeignKey[User] = ForeignKey(user_ref(), on_delete=OnDelete.cascade, index=True)
    kind = Varchar(length=30)
    title = Varchar(length=300)
    url = Varchar(length=300, default="")
    dedup_key = Varchar(length=200, unique=True)
    read_at = Timestamptz(null=True, default=None)


class Product(Versioned, Table, tablename="crm_sales_product"):
    id: Serial  # added by Piccolo; declared for type checkers
    code = Varchar(length=60, unique=True)
    name = Varchar(length=200)
    name_zh = Varchar(length=200, default="")
    unit = Varchar(length=20, default="")
    list_price = Numeric(digits=QTY, default=Decimal(0))
    currency = Varchar(length=3, default="CNY")
    tax_rate = Numeric(digits=(6, 4), default=Decimal(0))  # a fraction: 0.13 for 13 % VAT
    is_active = Boolean(default=True)
    external_ref = Varchar(length=100, default="", index=True)  # the ERP's id when synced from it


class PriceList(Versioned, Table, tablename="crm_sales_price_list"):
    id: Serial  # added by Piccolo; declared for type checkers
    name = Varchar(length=100)
    customer_group = Varchar(length=60, default="", index=True)
    currency = Varchar(length=3, default="CNY")
    valid_from = Date(null=True, default=None)
    valid_to = Date(null=True, default=None)
    is_active = Boolean(default=True)


class PriceListItem(Table, tablename="crm_sales_price_list_item"):
    id: Serial  # added by Piccolo; declared for type checkers
    price_list = ForeignKey(PriceList, on_delete=OnDelete.cascade, index=True)
    product = ForeignKey(Product, on_delete=OnDelete.cascade)
    price = Numeric(digits=QTY, default=Decimal(0))
    min_quantity = Numeric(digits=QTY, default=Decimal(1))


class Quote(BusinessRecord, Created, Table, tablename="crm_sales_quote"):
    id: Serial  # added by Piccolo; declared for type checkers
    number = Varchar(length=40, default="", index=True)  # same for every revision: Q<root id>
    revision = Integer(default=1)
    revision_of = BigInt(null=True, default=None)  # the quote this one revises
    opportunity = ForeignKey(Opportunity, on_delete=OnDelete.cascade, index=True)
    state = Varchar(length=10, default="draft", index=True)  # draft | sent | accepted | declined | expired
    is_superseded = Boolean(default=False)
    currency = Varchar(length=3, default="CNY")
    language = Varchar(length=10, default="zh_CN")  # zh_CN | en: the customer's
    customer_group = Varchar(length=60, default="")  # picks the price list (see pricelists.py)
    quote_date = Date(null=True, default=None)
    valid_until = Date(null=True, default=None)
    terms = Text(default="")
    notes = Text(default="")
    untaxed = Numeric(digits=MONEY, default=Decimal(0))
    tax = Numeric(digits=MONEY, default=Decimal(0))
    total = Numeric(digits=MONEY, default=Decimal(0))
    token_hash = Varchar(length=64, default="", index=True)  # sha256 of the latest acceptance token
    sent_at = Timestamptz(null=True, default=None)
    # the e-mail's own state: "sending" until the SMTP server took it, then "sent"; "failed" (the owner is told)
    email_state = Varchar(length=10, default="")
    discount_percent = Numeric(digits=(6, 2), default=Decimal(0))  # applied to the lines that follow the quote
    decided_at = Timestamptz(null=True, default=None)
    decided_by = Varchar(length=200, default="")
    custom = JSON(default="{}")  # custom fields (core.customfields)


class QuoteLine(Table, tablename="crm_sales_quote_line"):
    id: Serial  # added by Piccolo; declared for type checkers
    quote = ForeignKey(Quote, on_delete=OnDelete.cascade, index=True)
    sequence = Integer(default=10)
    product = ForeignKey(Product, null=True, on_delete=OnDelete.set_null)
    code = Varchar(length=60, default="")
    description = Varchar(length=500, default="")
    quantity = Numeric(digits=QTY, default=Decimal(1))
    unit = Varchar(length=20, default="")
    unit_price = Numeric(digits=QTY, default=Decimal(0))
    discount_percent = Numeric(digits=(6, 2), default=Decimal(0))
    tax_rate = Numeric(digits=(6, 4), default=Decimal(0))
    untaxed = Numeric(digits=MONEY, default=Decimal(0))
    tax = Numeric(digits=MONEY, default=Decimal(0))
    total = Numeric(digits=MONEY, default=Decimal(0))


class Order(BusinessRecord, Table, tablename="crm_sales_order"):
    id: Serial  # added by Piccolo; declared for type checkers
    reference = Varchar(length=40, default="", index=True)  # CRM-SO-<id>: the ERP finds a retried order by it
    quote = ForeignKey(Quote, null=True, on_delete=OnDelete.set_null)
    opportunity = ForeignKey(Opportunity, null=True, on_delete=OnDelete.set_null, index=True)
    person: ForeignKey[Table] = ForeignKey(_person(), null=True, on_delete=OnDelete.set_null, index=True)
    state = Varchar(length=10, default="confirmed")  # confirmed | cancelled
    currency = Varchar(length=3, default="CNY")
    untaxed = Numeric(digits=MONEY, default=Decimal(0))
    tax = Numeric(digits=MONEY, default=Decimal(0))
    total = Numeric(digits=MONEY, default=Decimal(0))
    confirmed_at = Timestamptz(default=TimestamptzNow())
    cancelled_at = Timestamptz(null=True, default=None)


class OrderLine(Table, tablename="crm_sales_order_line"):
    id: Serial  # added by Piccolo; declared for type checkers
    order = ForeignKey(Order, on_delete=OnDelete.cascade, index=True)
    sequence = Integer(default=10)
    product = ForeignKey(Product, null=True, on_delete=OnDelete.set_null)
    code = Varchar(length=60, default="")
    description = Varchar(length=500, default="")
    quantity = Numeric(digits=QTY, default=Decimal(1))
    unit = Varchar(length=20, default="")
    unit_price = Numeric(digits=QTY, default=Decimal(0))
    discount_percent = Numeric(digits=(6, 2), default=Decimal(0))
    tax_rate = Numeric(digits=(6, 4), default=Decimal(0))
    untaxed = Numeric(digits=MONEY, default=Decimal(0))
    tax = Numeric(digits=MONEY, default=Decimal(0))
    total = Numeric(digits=MONEY, default=Decimal(0))


class WinModel(Table, tablename="crm_sales_win_model"):
    """The latest trained scoring model (counts only), so pages explain a score without retraining."""
    id: Serial  # added by Piccolo; declared for type checkers

    trained_at = Timestamptz(default=TimestamptzNow())
    n_won = Integer(default=0)
    n_lost = Integer(default=0)
    counts = JSON(default="{}")
    rows_with = JSON(default="{}")
