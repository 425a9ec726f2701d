"""Tables of crm_marketing.

People are referenced through ``LazyTableReference`` (crm_contacts' models are never imported). Segment
membership is a plain table rebuilt set-based by one ``INSERT … SELECT`` (``segments.build``); a campaign's
recipients are fixed when it is sent (one row per person, unique per campaign), and carry their own send state
so a batch retried by the job runner never mails anyone twice.
"""

from __future__ import annotations

from decimal import Decimal

from piccolo.columns import (
    JSON,
    BigInt,
    Boolean,
    ForeignKey,
    Integer,
    LazyTableReference,
    Numeric,
    OnDelete,
    Serial,
    SmallInt,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table

from core.mixins import Created, TeamOwned, Versioned, user_ref


def _person() -> LazyTableReference:
    return LazyTableReference("Person", module_path="crm_contacts.models")


class Segment(Versioned, Created, Table, tablename="crm_marketing_segment"):
    """A dynamic segment (``condition`` in the kernel's condition language over people) or a static list."""

    id: Serial  # added by Piccolo; declared for type checkers
    name = Varchar(length=200)
    is_static = Boolean(default=False)
    condition = JSON(default="{}")
    member_count = Integer(default=0)
    built_at = Timestamptz(null=True, default=None)
    build_ms = Integer(null=True, default=None)


class SegmentMember(Table, tablename="crm_marketing_segment_member"):
    id: Serial  # added by Piccolo; declared for type checkers
    # no index of its own: the unique (segment, person) index leads with it
    segment = ForeignKey(Segment, on_delete=OnDelete.cascade)
    person: ForeignKey[Table] = ForeignKey(_person(), on_delete=OnDelete.cascade, index=True)


class Suppression(Created, Table, tablename="crm_marketing_suppression"):
    """An address never to be mailed: put on the do-not-contact list by hand, or unsubscribed by its owner."""

    id: Serial  # added by Piccolo; declared for type checkers
    email = Varchar(length=254, unique=True)  # lowercased
    person: ForeignKey[Table] = ForeignKey(_person(), null=True, on_delete=OnDelete.set_null, index=True)
    reason = Varchar(length=20, default="do_not_contact")  # do_not_contact | unsubscribed | bounced
    campaign = BigInt(null=True, default=None)  # the campaign an unsubscribe came from
    note = Varchar(length=300, default="")


class Campaign(Versioned, Created, Table, tablename="crm_marketing_campaign"):
    id: Serial  # added by Piccolo; declared for type checkers
    name = Varchar(length=200)
    segment = ForeignKey(Segment, null=True, on_delete=OnDelete.set_null)
    subject_en = Varchar(length=300, default="")
    body_en = Text(default="")
    subject_zh = Varchar(length=300, default="")
    body_zh = Text(default="")
    state = Varchar(length=20, default="draft")  # draft | sending | sent
    cost = Numeric(digits=(14, 2), default=Decimal("0"))
    currency = Varchar(length=3, default="CNY")
    sent_at = Timestamptz(null=True, default=None)
    scheduled_at = Timestamptz(null=True, default=None, index=True)  # a draft sent then by send_scheduled
    # who pressed send (or scheduled it): told when recipients fail for good
    sent_by: ForeignKey[Table] = ForeignKey(user_ref(), null=True, on_delete=OnDelete.set_null)


    # the UTM campaign code its links and forms carry: a form submission with it is a touch of this campaign
    utm_campaign = Varchar(length=100, default="", index=True)
    # A/B test of subjects (ab_test.py): subject B goes to half of ab_share % of the segment, subject A to the
    # other half; ab_wait_hours later the winner (opens, then clicks) goes to the rest
    subject_b_en = Varchar(length=300, default="")
    subject_b_zh = Varchar(length=300, default="")
    ab_share = Integer(default=0)  # percent of the segment in the test; 0: no test
    ab_wait_hours = Integer(default=4)
    ab_state = Varchar(length=10, default="")  # "" | testing | decided
    ab_winner = Varchar(length=1, default="")  # "" | a | b


class CampaignRecipient(Table, tablename="crm_marketing_campaign_recipient"):
    """One person a campaign goes to; ``state``: queued → sending → sent, or failed after the last try."""

    id: Serial  # added by Piccolo; declared for type checkers
    campaign = ForeignKey(Campaign, on_delete=OnDelete.cascade, index=True)
    person: ForeignKey[Table] = ForeignKey(_person(), null=True, on_delete=OnDelete.set_null, index=True)
    email = Varchar(length=254)
    language = Varchar(length=10, default="")
    state = Varchar(length=20, default="queued", index=True)
    attempts = Integer(default=0)
    next_try_at = Timestamptz(null=True, default=None)
    error = Text(default="")
    sent_at = Timestamptz(null=True, default=None)
    variant = Varchar(length=4, default="")  # A/B test: a | b | rest (held until the winner is known) | ""


class CampaignEvent(Table, tablename="crm_marketing_campaign_event"):
    """An open, a click or an unsubscribe; scanner hits are kept (``is_scanner``) but never counted."""

    id: Serial  # added by Piccolo; declared for type checkers
    campaign = ForeignKey(Campaign, on_delete=OnDelete.cascade, index=True)
    recipient = ForeignKey(CampaignRecipient, on_delete=OnDelete.cascade, index=True)
    kind = Varchar(length=20)  # open | click | unsubscribe
    url = Varchar(length=2000, default="")
    user_agent = Varchar(length=500, default="")
    is_scanner = Boolean(default=False)
    at = Timestamptz()


class CampaignReturn(TeamOwned, Table, tablename="crm_marketing_campaign_return"):
    """A confirmed order attributed to a campaign (its customer clicked the campaign, a counted click, within
    ``roi.ATTRIBUTION_DAYS`` before it, same currency), with the order's ``owner``/``team`` so the orders' record
    rule applies to it, and the campaign's ``cost`` on every row: the dataset ``crm_marketing.campaign_roi``
    (``returns.py``). Rebuilt from the orders dataset, never edited."""

    id: Serial  # added by Piccolo; declared for type checkers
    campaign = ForeignKey(Campaign, on_delete=OnDelete.cascade, index=True)
    order_ref = BigInt(index=True)  # the order's id in the orders dataset's table
    currency = Varchar(length=3, default="CNY")
    total = Numeric(digits=(16, 2), default=Decimal("0"))
    cost = Numeric(digits=(14, 2), default=Decimal("0"))
    clicked_at = Timestamptz()
    confirmed_at = Timestamptz()


class Journey(Versioned, Created, Table, tablename="crm_marketing_journey"):
    """A nurture journey stored as data: a ``trigger`` that enrolls people and ``steps`` they go through in order
    (wait, condition in the segment language, action); see ``crm_marketing.journeys``."""

    id: Serial  # added by Piccolo; declared for type checkers
    name = Varchar(length=200)
    trigger = JSON(default="{}")
    steps = JSON(default="[]")
    allow_reentry = Boolean(default=False)
    is_active = Boolean(default=False)
    # who switched it on: the author of its actions (notifications, audit) and the one told when a step fails
    started_by: ForeignKey[Table] = ForeignKey(user_ref(), null=True, on_delete=OnDelete.set_null)


class JourneyEnrollment(Table, tablename="crm_marketing_journey_enrollment"):
    """One pass of a person through a journey. ``position`` is the next step to run; ``state``: active (waiting
    until ``due_at``), done (went through every step) or exited (a condition did not hold, or no longer
    reachable). Advancing a step moves ``position`` with a conditional update in the step's transaction, so a
    retried advance never repeats a step's effect."""

    id: Serial  # added by Piccolo; declared for type checkers
    journey = ForeignKey(Journey, on_delete=OnDelete.cascade, index=True)
    person: ForeignKey[Table] = ForeignKey(_person(), on_delete=OnDelete.cascade, index=True)
    position = Integer(default=0)
    state = Varchar(length=20, default="active", index=True)
    due_at = Timestamptz(null=True, default=None, index=True)
    entered_at = Timestamptz()
    left_at = Timestamptz(null=True, default=None)
    note = Varchar(length=300, default="")


class MarketingEvent(Table, tablename="crm_marketing_event"):
    """A custom event about a person received through the API (``viewed_product_page``); journeys count them."""

    id: Serial  # added by Piccolo; declared for type checkers
    person: ForeignKey[Table] = ForeignKey(_person(), on_delete=OnDelete.cascade, index=True)
    name = Varchar(length=100, index=True)
    detail = Varchar(length=500, default="")
    at = Timestamptz()


class CaptureForm(Versioned, Created, Table, tablename="crm_marketing_form"):
    """A public capture form (forms.py): which person fields it asks, where a submission lands (tags, a static
    list, a lead when crm_sales is installed) and the thank-you text, in zh-CN and English."""

    id: Serial  # added by Piccolo; declared for type checkers
    name = Varchar(length=200)
    title_en = Varchar(length=200, default="")
    title_zh = Varchar(length=200, default="")
    fields = JSON(default="[]")  # [{"field": "email", "required": true}], field in forms.FIELDS
    tags = JSON(default="[]")  # tag names given to the person
    segment = ForeignKey(Segment, null=True, on_delete=OnDelete.set_null)  # a static list the person joins
    thanks_en = Text(default="")
    thanks_zh = Text(default="")
    creates_lead = Boolean(default=True)
    is_active = Boolean(default=True)


class FormSubmission(Table, tablename="crm_marketing_form_submission"):
    """One submission of a capture form, with its UTM codes; a honeypot hit is kept (``is_spam``) and changes
    nothing else. Form submissions with a campaign's ``utm_campaign`` are touches for attribution."""

    id: Serial  # added by Piccolo; declared for type checkers
    form = ForeignKey(CaptureForm, on_delete=OnDelete.cascade, index=True)
    person: ForeignKey[Table] = ForeignKey(_person(), null=True, on_delete=OnDelete.set_null, index=True)
    lead_id = BigInt(null=True, default=None)
    data = JSON(default="{}")
    utm_source = Varchar(length=100, default="")
    utm_medium = Varchar(length=100, default="")
    utm_campaign = Varchar(length=100, default="", index=True)
    ip = Varchar(length=64, default="")
    is_spam = Boolean(default=False)
    at = Timestamptz()


__all__ = [
    "Campaign",
    "CampaignEvent",
    "CampaignRecipient",
    "CaptureForm",
    "FormSubmission",
    "Journey",
    "JourneyEnrollment",
    "MarketingEvent",
    "Segment",
    "SegmentMember",
    "Suppression",
]


# --- RFM scoring and value tiers (crm_marketing.rfm) --------------------------------------------------


class ValueTier(Versioned, Created, Table, tablename="crm_marketing_value_tier"):
    """A value tier: a rule (the kernel's condition language over RFM fields, ``rfm.tier_schema``); a customer
    gets the first active tier, by ``sequence``, whose rule they meet."""

    id: Serial  # added by Piccolo; declared for type checkers
    key = Varchar(length=40, unique=True)  # what segment conditions name (value_tier = gold); never changes
    name_en = Varchar(length=100, default="")
    name_zh = Varchar(length=100, default="")
    rule = JSON(default="{}")
    sequence = Integer(default=10)
    is_active = Boolean(default=True)


class RfmScore(Table, tablename="crm_marketing_rfm_score"):
    """A customer's recency / frequency / monetary quintiles (1 low … 5 best) and tier as of the last rebuild."""

    id: Serial  # added by Piccolo; declared for type checkers
    # a person id, not a foreign key: the table is a cache rebuilt whole, and checking a key per row took a third
    # of a rebuild (100k customers); erased and merged people's rows go by hooks, deleted people's at the rebuild
    person = BigInt(unique=True)
    last_order_at = Timestamptz()
    recency_days = Integer(default=0)  # whole days from the last order to the rebuild
    orders = Integer(default=0)
    monetary = Numeric(digits=(16, 2), default=Decimal(0))
    r = SmallInt(default=1)
    f = SmallInt(default=1)
    m = SmallInt(default=1)
    tier = Varchar(length=40, null=True, default=None, index=True)  # a ValueTier key


class RfmBuild(Table, tablename="crm_marketing_rfm_build"):
    """One rebuild of the scores: when, how long, how many customers (the settings page shows the last)."""

    id: Serial  # added by Piccolo; declared for type checkers
    built_at = Timestamptz()
    build_ms = Integer(default=0)
    customers = Integer(default=0)
    currency = Varchar(length=3, default="CNY")



__all__ += ["RfmBuild", "RfmScore", "ValueTier"]
