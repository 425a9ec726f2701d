"""Tables of the customer data hub: organizations, people and what hangs on them.

Main tables (``Organization``, ``Person``) are the kernel's ``BusinessRecord`` (``owner``/``team`` for record
rules, ``is_archived`` for merged losers and archived records, ``version`` for optimistic concurrency) and
``Timestamped``; their ``created_at`` is indexed with ``stage`` as ``(created_at, stage)`` by a migration.
Standardized values are stored next to what the user typed (``phone`` is E.164, ``phone_original`` the
input); ``*_key`` columns are the exact duplicate keys; ``search_text`` is a lowercased blob of name,
company, phones and emails, indexed with pg_trgm on PostgreSQL, where a generated ``search_grams`` column
(not listed here) indexes one and two character Chinese terms (see the migrations and docs/contacts.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from piccolo.columns import (
    JSON,
    BigInt,
    Boolean,
    Bytea,
    Date,
    ForeignKey,
    Integer,
    OnDelete,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table

from core.mixins import BusinessRecord, Created, Owned, Timestamped, Versioned, user_ref

if TYPE_CHECKING:
    from core.security.models import User


class Stage(Table, tablename="crm_contacts_stage"):
    """A lifecycle stage (lead → prospect → customer → loyal → dormant → lost), seeded from data, editable."""

    id: Serial  # added by Piccolo; declared for type checkers
    key = Varchar(length=40, unique=True)
    label = Varchar(length=100)
    sequence = Integer(default=10)


class Organization(BusinessRecord, Timestamped, Table, tablename="crm_contacts_organization"):
    id: Serial  # added by Piccolo; declared for type checkers
    name = Varchar(length=200)
    tax_id = Varchar(length=60, default="")
    tax_id_key = Varchar(length=60, default="", index=True)
    industry = Varchar(length=100, default="")
    website = Varchar(length=300, default="")
    email = Varchar(length=254, default="")
    email_key = Varchar(length=254, default="", index=True)
    phone = Varchar(length=40, default="", index=True)
    phone_original = Varchar(length=60, default="")
    country = Varchar(length=2, default="")  # ISO 3166 code; "" reads as the site's region (CRM_DEFAULT_REGION)
    province = Varchar(length=40, default="")
    city = Varchar(length=60, default="")
    stage = Varchar(length=40, default="lead")
    source = Varchar(length=100, default="")
    custom = JSON(default="{}")
    search_text = Text(default="")
    merged_into = BigInt(null=True, default=None)
    import_batch = BigInt(null=True, default=None, index=True)


class Person(BusinessRecord, Timestamped, Table, tablename="crm_contacts_person"):
    id: Serial  # added by Piccolo; declared for type checkers
    name = Varchar(length=200)
    given_name = Varchar(length=100, default="")
    family_name = Varchar(length=100, default="")
    organization = ForeignKey(Organization, null=True, on_delete=OnDelete.set_null)
    job_title = Varchar(length=100, default="")
    email = Varchar(length=254, default="")
    email_key = Varchar(length=254, default="", index=True)
    phone = Varchar(length=40, default="", index=True)
    phone_original = Varchar(length=60, default="")
    language = Varchar(length=10, default="")
    country = Varchar(length=2, default="")  # ISO 3166 code; "" reads as the site's region (CRM_DEFAULT_REGION)
    province = Varchar(length=40, default="")
    city = Varchar(length=60, default="")
    industry = Varchar(length=100, default="")
    stage = Varchar(length=40, default="lead")
    source = Varchar(length=100, default="")
    birth_date = Date(null=True, default=None)
    custom = JSON(default="{}")
    search_text = Text(default="")
    merged_into = BigInt(null=True, default=None)
    import_batch = BigInt(null=True, default=None, index=True)
    is_anonymized = Boolean(default=False)


class Address(Table, tablename="crm_contacts_address"):
    """A postal address of a person or an organization (exactly one of the two is set)."""

    id: Serial  # added by Piccolo; declared for type checkers
    person = ForeignKey(Person, null=True, on_delete=OnDelete.cascade)
    organization = ForeignKey(Organization, null=True, on_delete=OnDelete.cascade)
    kind = Varchar(length=20, default="office")  # office | home | billing | shipping
    line1 = Varchar(length=300, default="")
    line2 = Varchar(length=300, default="")
    city = Varchar(length=100, default="")
    province = Varchar(length=100, default="")
    postcode = Varchar(length=20, default="")
    country = Varchar(length=2, default="CN")
    is_primary = Boolean(default=False)


class Channel(Table, tablename="crm_contacts_channel"):
    """An extra contact channel: phone, email, wechat, im or website; ``value_key`` is the dedup key."""

    id: Serial  # added by Piccolo; declared for type checkers
    person = ForeignKey(Person, null=True, on_delete=OnDelete.cascade)
    organization = ForeignKey(Organization, null=True, on_delete=OnDelete.cascade)
    kind = Varchar(length=20)
    value = Varchar(length=300)
    value_key = Varchar(length=300, default="", index=True)
    original = Varchar(length=300, default="")
    label = Varchar(length=60, default="")


class Tag(Versioned, Table, tablename="crm_contacts_tag"):
    id: Serial  # added by Piccolo; declared for type checkers
    name = Varchar(length=60, unique=True)
    color = Varchar(length=20, default="")


class PersonTag(Table, tablename="crm_contacts_person_tag"):
    id: Serial  # added by Piccolo; declared for type checkers
    person = ForeignKey(Person, on_delete=OnDelete.cascade, index=True)
    tag = ForeignKey(Tag, on_delete=OnDelete.cascade, index=True)


class OrganizationTag(Table, tablename="crm_contacts_organization_tag"):
    id: Serial  # added by Piccolo; declared for type checkers
    organization = ForeignKey(Organization, on_delete=OnDelete.cascade, index=True)
    tag = ForeignKey(Tag, on_delete=OnDelete.cascade, index=True)


class Merge(Owned, Created, Table, tablename="crm_contacts_merge"):
    """One merge: losers folded into the survivor, with the field-by-field choices made."""

    id: Serial  # added by Piccolo; declared for type checkers
    model = Varchar(length=60)
    survivor_id = BigInt(index=True)
    loser_ids = JSON(default="[]")
    choices = JSON(default="{}")
    snapshot = JSON(default="{}")  # the losers as they were, for the 360° page and for audits


class DuplicateGroup(Created, Table, tablename="crm_contacts_duplicate_group"):
    """A group of probable duplicates found by the background scan, ranked by ``score``."""

    id: Serial  # added by Piccolo; declared for type checkers
    model = Varchar(length=60, default="crm_contacts.person")
    record_ids = JSON(default="[]")
    score = Integer(default=0)  # 0..1000 (per-mille keeps ordering portable across backends)
    reasons = JSON(default="[]")
    status = Varchar(length=20, default="open", index=True)  # open | merged | dismissed
    scan_id = Varchar(length=40, default="")


class ImportBatch(Owned, Created, Table, tablename="crm_contacts_import_batch"):
    """An uploaded file and what importing it did; the file stays in the database for the job workers."""

    id: Serial  # added by Piccolo; declared for type checkers
    filename = Varchar(length=300)
    content = Bytea(default=b"")
    encoding = Varchar(length=40, default="")  # of a CSV file: detected at upload or chosen; "" for XLSX
    model = Varchar(length=60, default="crm_contacts.person")
    mode = Varchar(length=10, default="create")  # create | update | upsert
    keys = JSON(default="[]")
    mapping = JSON(default="{}")
    drop_invalid = JSON(default="[]")  # optional fields whose bad values are dropped (a warning), not failing the row
    status = Varchar(length=20, default="uploaded")  # uploaded | queued | running | done | failed | reverted
    total = Integer(default=0)
    done = Integer(default=0)
    created = Integer(default=0)
    updated = Integer(default=0)
    skipped = Integer(default=0)
    failed = Integer(default=0)
    error = Text(default="")
    finished_at = Timestamptz(null=True, default=None)


class ImportRow(Table, tablename="crm_contacts_import_row"):
    """The outcome of one row: enough to report it and to revert it (``before`` and ``after`` of the fields
    an update changed: a revert restores a field only while it still holds the imported value)."""

    id: Serial  # added by Piccolo; declared for type checkers
    batch = ForeignKey(ImportBatch, on_delete=OnDelete.cascade, index=True)
    row_no = Integer()
    action = Varchar(length=10)  # created | updated | skipped | failed
    record_id = BigInt(null=True, default=None)
    before = JSON(default="{}")
    after = JSON(default="{}")
    message = Text(default="")


class SavedFilter(Created, Table, tablename="crm_contacts_saved_filter"):
    id: Serial  # added by Piccolo; declared for type checkers
    name = Varchar(length=100)
    model = Varchar(length=60, default="crm_contacts.person")
    query = Text(default="")
    # a private filter goes with its user
    owner: ForeignKey[User] = ForeignKey(user_ref(), null=True, on_delete=OnDelete.cascade)


__all__ = ["Address", "Channel", "DuplicateGroup", "ImportBatch", "ImportRow", "Merge", "Organization",
           "OrganizationTag", "Person", "PersonTag", "SavedFilter", "Stage", "Tag"]
