"""Tables of the service desk.

A ticket is the kernel's ``BusinessRecord``: ``owner`` is its assignee and ``team`` its team (core_team), so
the access layer's *team* rule gives agents the tickets of their teams. Its SLA figures (``*_due_at``,
``*_breached``) are a cache recomputed from ``StateChange`` rows (``sla.py``); the breach flags only go up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from piccolo.columns import (
    JSON,
    Boolean,
    Bytea,
    Date,
    ForeignKey,
    Integer,
    LazyTableReference,
    OnDelete,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from core.mixins import BusinessRecord, Created, Timestamped, Versioned, team_ref, user_ref

if TYPE_CHECKING:
    from core.security.models import Team, User


def _person() -> LazyTableReference:
    return LazyTableReference("Person", module_path="crm_contacts.models")


def _organization() -> LazyTableReference:
    return LazyTableReference("Organization", module_path="crm_contacts.models")


class Calendar(Versioned, Table, tablename="crm_service_calendar"):
    """Working hours per weekday (``hours``: ``{"0": [["09:00", "18:00"]], ...}``, 0 = Monday), a time zone
    and the public holidays of ``country`` (``holidays`` library), plus the ``CalendarDay`` exceptions."""
    id: Serial  # added by Piccolo; declared for type checkers

    key = Varchar(length=60, default="")
    name = Varchar(length=120)
    timezone = Varchar(length=60, default="Asia/Shanghai")
    country = Varchar(length=2, default="CN")
    hours = JSON(default={})


class CalendarDay(Table, tablename="crm_service_calendar_day"):
    """A day that differs from the weekly rule: an extra working day (调休) or a day off."""
    id: Serial  # added by Piccolo; declared for type checkers

    calendar = ForeignKey(Calendar, on_delete=OnDelete.cascade, index=True)
    day = Date()
    is_working = Boolean(default=False)
    note = Varchar(length=200, default="")


class ServiceTeam(Versioned, Table, tablename="crm_service_team"):
    """Service settings of a kernel team: how new tickets are assigned among its members."""
    id: Serial  # added by Piccolo; declared for type checkers

    team: ForeignKey[Team] = ForeignKey(team_ref(), on_delete=OnDelete.cascade, unique=True)
    assignment = Varchar(length=20, default="round_robin")  # round_robin | least_loaded | manual
    capacity = Integer(default=20)  # open tickets per agent before least-loaded skips them
    last_assignee: ForeignKey[User] = ForeignKey(user_ref(), null=True, on_delete=OnDelete.set_null)
    is_vip = Boolean(default=False)  # the VIP queue: its tickets are at least high priority (dispatch.py)


class RoutingRule(Versioned, Table, tablename="crm_service_routing_rule"):
    """Tickets matching every non-empty criterion go to ``team``; the lowest ``sequence`` wins."""
    id: Serial  # added by Piccolo; declared for type checkers

    sequence = Integer(default=10)
    name = Varchar(length=120)
    ticket_type = Varchar(length=30, default="")
    priority = Varchar(length=20, default="")
    channel = Varchar(length=20, default="")
    keywords = Varchar(length=300, default="")  # comma separated, any of them in subject or description
    customer_tag = Varchar(length=60, default="")  # a tag of the customer (crm_contacts), e.g. "VIP"
    team: ForeignKey[Team] = ForeignKey(team_ref(), on_delete=OnDelete.cascade)
    min_priority = Varchar(length=20, default="")  # a matched ticket's priority is raised to at least this
    is_active = Boolean(default=True)


class SlaPolicy(Versioned, Table, tablename="crm_service_sla_policy"):
    """Targets in business minutes of ``calendar``; the most specific active policy matching a ticket applies."""
    id: Serial  # added by Piccolo; declared for type checkers

    name = Varchar(length=120)
    team: ForeignKey[Team] = ForeignKey(team_ref(), null=True, on_delete=OnDelete.cascade)
    priority = Varchar(length=20, default="")
    ticket_type = Varchar(length=30, default="")
    customer_tag = Varchar(length=60, default="")  # a tag of the ticket's customer (crm_contacts)
    calendar = ForeignKey(Calendar, on_delete=OnDelete.restrict)
    first_response_minutes = Integer(default=240)
    resolution_minutes = Integer(default=2400)
    next_response_minutes = Integer(default=0)  # answer each later customer message within; 0: no target
    warn_minutes = Integer(default=30)  # tell the assignee this long before a deadline
    is_active = Boolean(default=True)


class Ticket(BusinessRecord, Timestamped, Table, tablename="crm_service_ticket"):
    id: Serial  # added by Piccolo; declared for type checkers

    subject = Varchar(length=300)
    description = Text(default="")
    person: ForeignKey[Table] = ForeignKey(_person(), null=True, on_delete=OnDelete.set_null, index=True)
    organization: ForeignKey[Table] = ForeignKey(_organization(), null=True, on_delete=OnDelete.set_null,
                                                 index=True)
    channel = Varchar(length=20, default="web")  # email | portal | web | phone | api
    ticket_type = Varchar(length=30, default="question")
    priority = Varchar(length=20, default="normal", index=True)
    state = Varchar(length=30, default="new", index=True)
    tags = JSON(default=[])
    customer_email = Varchar(length=254, default="")
    sla_policy = ForeignKey(SlaPolicy, null=True, on_delete=OnDelete.set_null)
    first_response_at = Timestamptz(null=True, default=None)
    first_response_due_at = Timestamptz(null=True, default=None)
    resolution_due_at = Timestamptz(null=True, default=None)
    next_response_due_at = Timestamptz(null=True, default=None)
    first_response_breached = Boolean(default=False)
    resolution_breached = Boolean(default=False)
    next_response_breached = Boolean(default=False)
    resolved_at = Timestamptz(null=True, default=None)
    merged_into = Integer(null=True, default=None)  # the survivor, when this ticket was merged into another
    escalation_of = Integer(null=True, default=None)  # the first ticket of a group escalated together
    escalation_reason = Varchar(length=300, default="")
    csat = Integer(null=True, default=None)  # the customer's rating of a resolved ticket, 1-5
    csat_comment = Varchar(length=500, default="")
    search_text = Text(default="")  # the words of subject and description, jieba-segmented (ticket_search.py)


class StateChange(Table, tablename="crm_service_state_change"):
    """The ticket's state history: the SLA clock is recomputed from it."""
    id: Serial  # added by Piccolo; declared for type checkers

    ticket = ForeignKey(Ticket, on_delete=OnDelete.cascade, index=True)
    from_state = Varchar(length=30, default="")
    to_state = Varchar(length=30)
    at = Timestamptz(default=TimestamptzNow())
    user: ForeignKey[User] = ForeignKey(user_ref(), null=True, on_delete=OnDelete.set_null)


class Message(Created, Table, tablename="crm_service_message"):
    """One entry of the conversation: an inbound mail or portal message, a public reply, an internal note."""
    id: Serial  # added by Piccolo; declared for type checkers

    ticket = ForeignKey(Ticket, on_delete=OnDelete.cascade, index=True)
    kind = Varchar(length=20)  # inbound | reply | note
    body = Text(default="")
    author: ForeignKey[User] = ForeignKey(user_ref(), null=True, on_delete=OnDelete.set_null)
    author_email = Varchar(length=254, default="")
    message_id = Varchar(length=300, default="", index=True)  # RFC 5322 Message-ID of the mail, in or out


class InboundMail(Created, Table, tablename="crm_service_inbound_mail"):
    """Each fetched mail once (``message_id`` unique): what became of it, so a second fetch is a no-op."""
    id: Serial  # added by Piccolo; declared for type checkers

    message_id = Varchar(length=300, unique=True)
    sender = Varchar(length=254, default="")
    subject = Varchar(length=300, default="")
    outcome = Varchar(length=20)  # ticket | reply | ignored | quarantined
    note = Varchar(length=500, default="")
    ticket = ForeignKey(Ticket, null=True, on_delete=OnDelete.set_null)


class Article(Versioned, Timestamped, Table, tablename="crm_service_article"):
    """A knowledge-base article; ``search_text`` is its words (Chinese segmented by jieba) for full-text search."""
    id: Serial  # added by Piccolo; declared for type checkers

    title = Varchar(length=200)
    body = Text(default="")  # Markdown
    category = Varchar(length=80, default="")
    language = Varchar(length=10, default="zh_CN")
    is_public = Boolean(default=False)
    search_text = Text(default="")


class PortalAccount(Created, Table, tablename="crm_service_portal_account"):
    """A customer's login to the portal: a person of crm_contacts, never a kernel user (it has no roles and no
    back-office session). ``token_hash``: the pending invitation or password-reset link (sha256 of it)."""
    id: Serial  # added by Piccolo; declared for type checkers

    person: ForeignKey[Table] = ForeignKey(_person(), on_delete=OnDelete.cascade, unique=True)
    email = Varchar(length=254, unique=True)
    password_hash = Varchar(length=200, default="")
    token_hash = Varchar(length=64, default="", index=True)
    token_expires_at = Timestamptz(null=True, default=None)
    is_active = Boolean(default=True)


class PortalSession(Created, Table, tablename="crm_service_portal_session"):
    """A signed-in portal customer (server side, so it can be revoked); the cookie holds the token, this its hash."""
    id: Serial  # added by Piccolo; declared for type checkers

    token_hash = Varchar(length=64, unique=True)
    account = ForeignKey(PortalAccount, on_delete=OnDelete.cascade, index=True)
    csrf = Varchar(length=64)
    expires_at = Timestamptz()


class Attachment(Created, Table, tablename="crm_service_attachment"):
    """A file on a ticket (from a mail, the portal or an agent), within the size and type limits of
    ``attachments.py``; served only to those who may read the ticket (or its customer in the portal)."""
    id: Serial  # added by Piccolo; declared for type checkers

    ticket = ForeignKey(Ticket, on_delete=OnDelete.cascade, index=True)
    message = ForeignKey(Message, null=True, on_delete=OnDelete.set_null)
    filename = Varchar(length=200)
    content_type = Varchar(length=100)
    size = Integer()
    content = Bytea(default=b"")


class FollowUp(Created, Table, tablename="crm_service_follow_up"):
    """A follow-up call to make on a ticket (a high-priority complaint) when crm_sales is not installed to hold
    it as an activity: its assignee is notified at ``due_at`` (``notified_at`` set then, once)."""
    id: Serial  # added by Piccolo; declared for type checkers

    ticket = ForeignKey(Ticket, on_delete=OnDelete.cascade, index=True)
    user: ForeignKey[User] = ForeignKey(user_ref(), null=True, on_delete=OnDelete.set_null)
    due_at = Timestamptz(index=True)
    note = Varchar(length=300, default="")
    notified_at = Timestamptz(null=True, default=None)


class CannedReply(Versioned, Table, tablename="crm_service_canned_reply"):
    """A prepared answer; ``{customer_name}``, ``{ticket_ref}``, ``{subject}``, ``{agent_name}`` are filled in."""
    id: Serial  # added by Piccolo; declared for type checkers

    name = Varchar(length=120)
    body = Text(default="")
    language = Varchar(length=10, default="zh_CN")
