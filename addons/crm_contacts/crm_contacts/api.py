"""The public surface of crm_contacts: the only module other addons import (list ``crm_contacts`` in depends).

Only ids and frozen dataclasses cross the boundary. Foreign keys from another addon point at
``crm_contacts_person`` / ``crm_contacts_organization`` through ``LazyTableReference("Person",
module_path="crm_contacts.models")``; when records are merged, implement the kernel hook
``crm_merge_records(model, survivor_id, loser_ids)`` to re-point yours (``model`` is ``PERSON_MODEL`` or
``ORGANIZATION_MODEL``).

These functions act as the system, not as a user: call them after your own access checks.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from core.errors import NotFound
from core.i18n import N_

if TYPE_CHECKING:
    from core.security.access import Access

PERSON_MODEL = "crm_contacts.person"
ORGANIZATION_MODEL = "crm_contacts.organization"
TAG_MODEL = "crm_contacts.tag"
PERSON_TABLE = "crm_contacts_person"
ORGANIZATION_TABLE = "crm_contacts_organization"

__all__ = ["ORGANIZATION_MODEL", "ORGANIZATION_TABLE", "PERSON_MODEL", "PERSON_TABLE", "TAG_MODEL", "ContactRef",
           "add_address", "add_tag", "contact_names", "contact_url", "find_or_create_person", "get_contact",
           "get_organization", "person_tags", "remove_tag", "seen_by", "standardize_fields", "survivor_of"]

_PAGES = {PERSON_MODEL: "people", ORGANIZATION_MODEL: "organizations"}  # the folder of each model's pages


@dataclass(frozen=True)
class ContactRef:
    """A customer as other addons see it (quotes, tickets, invoices): display data, no ORM row."""

    id: int
    kind: Literal["person", "organization"]
    display_name: str
    email: str = ""
    phone: str = ""  # E.164
    language: str = ""
    organization_id: int | None = None
    organization_name: str = ""
    address_lines: tuple[str, ...] = ()
    tax_id: str = ""
    owner_id: int | None = None
    is_archived: bool = False


def seen_by(access: Access, ref: ContactRef) -> ContactRef:
    """``ref`` as ``access``'s user may see it, for what they are shown (documents, pages, exports): the field
    rules of the contact pages applied - a masked value masked, a hidden one blank. (A document that goes to
    the customer themselves shows ``ref`` as it is.)"""
    own = PERSON_MODEL if ref.kind == "person" else ORGANIZATION_MODEL
    mine = access.present(own, {"name": ref.display_name, "email": ref.email, "phone": ref.phone,
                                "language": ref.language})
    org = access.present(ORGANIZATION_MODEL, {"name": ref.organization_name, "tax_id": ref.tax_id})
    return replace(ref, display_name=str(mine.get("name") or ""), email=str(mine.get("email") or ""),
                   phone=str(mine.get("phone") or ""), language=str(mine.get("language") or ""),
                   organization_name=str(org.get("name") or ""), tax_id=str(org.get("tax_id") or ""))


async def _address(person_id: int | None, org_id: int | None) -> tuple[str, ...]:
    from crm_contacts.models import Address

    where = Address.person == person_id if person_id else Address.organization == org_id
    row = await Address.select().where(where).order_by(Address.is_primary, ascending=False).order_by(
        Address.id).first()
    if row is None:
        return ()
    city = " ".join(p for p in (row["postcode"], row["province"], row["city"]) if p)
    return tuple(p for p in (row["line1"], row["line2"], city, row["country"]) if p)


async def survivor_of(model: str, record_id: int) -> int:
    """The live record ``record_id`` was merged into (itself if it was never merged)."""
    from crm_contacts.models import Organization, Person

    table: Any = Person if model == PERSON_MODEL else Organization
    seen: set[int] = set()
    while record_id not in seen:
        seen.add(record_id)
        row = await table.select(table.merged_into).where(table.id == record_id).first()
        if row is None or not row["merged_into"]:
            return record_id
        record_id = int(row["merged_into"])
    return record_id


async def get_contact(person_id: int, *, follow_merges: bool = True) -> ContactRef:
    """The person ``person_id`` (or, if merged, the survivor) as a ``ContactRef``; ``NotFound`` if absent."""
    from crm_contacts.models import Organization, Person

    if follow_merges:
        person_id = await survivor_of(PERSON_MODEL, person_id)
    row = await Person.select().where(Person.id == person_id).first()
    if row is None:
        raise NotFound(f"{PERSON_MODEL} {person_id} not found")
    org: dict[str, Any] | None = None
    if row["organization"]:
        org = await Organization.select(Organization.name, Organization.tax_id).where(
            Organization.id == row["organization"]).first()
    lines = await _address(person_id, None) or (await _address(None, row["organization"]) if org else ())
    return ContactRef(id=person_id, kind="person", display_name=row["name"], email=row["email"],
                      phone=row["phone"], language=row["language"], organization_id=row["organization"],
                      organization_name=org["name"] if org else "", address_lines=lines,
                      tax_id=org["tax_id"] if org else "", owner_id=row["owner"], is_archived=row["is_archived"])


async def contact_names(person_ids: Collection[int]) -> dict[int, str]:
    """``"organization / person"`` (or the person's name) for many people at once — one query per 5,000 ids,
    for lists and reports over thousands of records; ids not found (erased) are left out. Merged people are
    named as they are, not followed to their survivor."""
    from core.bulk import any_of
    from crm_contacts.models import Person

    ids = sorted(set(person_ids))
    out: dict[int, str] = {}
    for start in range(0, len(ids), 5000):
        rows = await Person.select(Person.id, Person.name, Person.organization.name).where(
            any_of(Person.id, ids[start:start + 5000]))
        for r in rows:
            org = r.get("organization.name") or ""
            out[int(r["id"])] = f"{org} / {r['name']}" if org else r["name"]
    return out


async def get_organization(organization_id: int, *, follow_merges: bool = True) -> ContactRef:
    """The organization (or its merge survivor) as a ``ContactRef``; ``NotFound`` if absent."""
    from crm_contacts.models import Organization

    if follow_merges:
        organization_id = await survivor_of(ORGANIZATION_MODEL, organization_id)
    row = await Organization.select().where(Organization.id == organization_id).first()
    if row is None:
        raise NotFound(f"{ORGANIZATION_MODEL} {organization_id} not found")
    return ContactRef(id=organization_id, kind="organization", display_name=row["name"], email=row["email"],
                      phone=row["phone"], organization_id=organization_id, organization_name=row["name"],
                      address_lines=await _address(None, organization_id), tax_id=row["tax_id"],
                      owner_id=row["owner"], is_archived=row["is_archived"])


async def find_or_create_person(*, name: str, email: str = "", phone: str = "", organization_id: int | None = None,
                                language: str = "", source: str = "", owner_id: int | None = None,
                                min_score: float = 0.9, access: Access | None = None) -> tuple[ContactRef, bool]:
    """The existing person matching these details, or a new standardized one: ``(ref, created)``.

    Matching uses the duplicate check: an exact email/phone key, or a fuzzy match scoring ``min_score`` or
    more. Raises ``core.errors.ValidationError`` naming the field when a value does not standardize.
    Acting for a user (``access``), only people that user may read are matched (otherwise a new person is
    created: the duplicate scan flags it later) and ``organization_id`` must be one they may read (422).
    """
    from core import db, hooks
    from core.security import audit
    from crm_contacts.cleaning import clean_person
    from crm_contacts.duplicates import person_candidates
    from crm_contacts.models import Person

    if access is not None:
        await access.check_references(Person, {"organization": organization_id})
    values: dict[str, Any] = {"name": name, "email": email, "phone": phone, "language": language,
                              "source": source, "organization": organization_id}
    clean = await clean_person({k: v for k, v in values.items() if v not in (None, "")})
    found = [c for c in await person_candidates(clean) if c.score >= min_score]
    if found and access is not None:
        ids = [c.id for c in found]
        readable = {int(r["id"]) for r in await (await access.select(
            Person, PERSON_MODEL, Person.id, where=Person.id.is_in(ids)))} if access.can(PERSON_MODEL) else set()
        found = [c for c in found if c.id in readable]
    if found:
        return await get_contact(found[0].id), False
    async with db.atomic():
        clean["owner"] = owner_id
        row = Person(_data={Person._meta.get_column_by_name(k): v for k, v in clean.items()})
        await row.save()
        await audit.record("create", model=PERSON_MODEL, record_id=row.id, changes=audit.diff(None, clean))
        await hooks.publish("crm_contacts_person_created", person_id=int(row.id))
    return await get_contact(int(row.id)), True


async def add_address(person_id: int, *, line1: str, city: str, country: str, line2: str = "", postcode: str = "",
                      province: str = "", kind: str = "office", primary: bool = False) -> None:
    """Give the person ``person_id`` a postal address (``country``: ISO 3166 alpha-2, ``"CN"``); audited.

    ``primary=True`` makes it the address documents and ERPs use (``get_contact().address_lines``).
    """
    from core.errors import ValidationError
    from core.security import audit
    from crm_contacts.models import Address

    country = country.strip().upper()
    if len(country) != 2 or not country.isalpha():
        raise ValidationError({"country": N_("must be a two-letter ISO 3166 code")})
    await Address.insert(Address(person=person_id, kind=kind, line1=line1, line2=line2, city=city, province=province,
                                 postcode=postcode, country=country, is_primary=primary))
    await audit.record("update", model=PERSON_MODEL, record_id=person_id, detail="address added",
                       changes={"address": [None, ", ".join(v for v in (line1, line2, postcode, city, country) if v)]})


def standardize_fields(values: Mapping[str, Any]) -> dict[str, str]:
    """``phone``, ``email`` and ``region`` of another addon's record (a lead, a ticket's caller) standardized by
    the rules people follow, so the same customer reads the same everywhere; only the keys given come back.

    Phone: E.164 (read in ``CRM_DEFAULT_REGION`` without a country code); e-mail: trimmed, domain lower-cased;
    region: a Chinese province or city in any spelling becomes its province's short name ("广东省深圳市",
    "Shenzhen" → "广东"), what the Chinese dictionary does not know is kept as typed (spaces folded), like other
    countries' regions. Empty stays empty. ``core.errors.ValidationError`` names the field that does not read.
    """
    from core.errors import ValidationError
    from crm_contacts.cleaning import default_region
    from crm_contacts.standardize import (
        StandardizationError,
        canonical_region,
        fold_width,
        normalize_email,
        normalize_phone,
    )

    out: dict[str, Any] = {}
    try:
        if values.get("phone") is not None:
            raw = str(values["phone"]).strip()
            if len(raw) > 60:
                raise ValidationError({"phone": N_("is longer than %(limit)s characters") % {"limit": 60}})
            out["phone"] = normalize_phone(raw, default_region()).e164 if raw else ""
        if values.get("email") is not None:
            raw = str(values["email"]).strip()
            out["email"] = normalize_email(raw) if raw else ""
    except StandardizationError as exc:
        raise ValidationError({exc.field: exc.message}) from None
    region = values.get("region")
    if region is not None:
        text = " ".join(fold_width(str(region)).split())
        try:
            out["region"] = canonical_region(text).province if text else ""
        except StandardizationError:
            out["region"] = text
    return {k: str(out[k]) for k in ("phone", "email", "region") if k in out}


async def contact_url(acc: Access, model: str, record_id: int) -> str | None:
    """The page of a person or an organization (``PERSON_MODEL`` / ``ORGANIZATION_MODEL``), or None when
    ``acc``'s read rights do not reach that record (link to it only then)."""
    from crm_contacts.manifest import ADDON
    from crm_contacts.models import Organization, Person

    folder = _PAGES.get(model)
    if folder is None or not acc.can(model):
        return None
    table: Any = Person if model == PERSON_MODEL else Organization
    if await acc.count(table, model, where=table.id == record_id) == 0:
        return None
    return f"{ADDON.mount}/{folder}/{record_id}"


async def add_tag(person_id: int, name: str) -> bool:
    """Tag the person ``person_id`` with ``name`` (folded and trimmed as the pages do; the tag is created if new);
    True if the person did not have it. Audited; a ``crm_contacts_person_updated`` event with ``["tags"]``.
    ``core.errors.ValidationError`` on ``tag`` for a blank name or one longer than 60 characters."""
    from core import db
    from core.security import audit
    from crm_contacts import events
    from crm_contacts.models import PersonTag, Tag

    tag = _tag_name(name)
    async with db.atomic():
        row = await Tag.select(Tag.id).where(Tag.name == tag).first()
        if row is None:
            new = Tag(name=tag)
            await new.save()
            row = {"id": new.id}
        if await PersonTag.exists().where((PersonTag.person == person_id) & (PersonTag.tag == row["id"])):
            return False
        await PersonTag.insert(PersonTag(person=person_id, tag=row["id"]))
        await audit.record("update", model=PERSON_MODEL, record_id=person_id, detail="tag added",
                           changes={"tags": [None, tag]})
        await events.updated("person", [person_id], ["tags"])
    return True


async def remove_tag(person_id: int, name: str) -> bool:
    """Take the tag ``name`` off the person ``person_id``; True if they had it. Audited, with the event."""
    from core import db
    from core.security import audit
    from crm_contacts import events
    from crm_contacts.models import PersonTag, Tag

    tag = _tag_name(name)
    async with db.atomic():
        ids = [r["id"] for r in await Tag.select(Tag.id).where(Tag.name == tag)]
        gone = await PersonTag.delete().where((PersonTag.person == person_id) & PersonTag.tag.is_in(ids or [0])
                                              ).returning(PersonTag.id)
        if not gone:
            return False
        await audit.record("update", model=PERSON_MODEL, record_id=person_id, detail="tag removed",
                           changes={"tags": [tag, None]})
        await events.updated("person", [person_id], ["tags"])
    return True


async def person_tags(person_id: int) -> list[str]:
    """The names of the person's tags, sorted."""
    from crm_contacts.services import tags_of

    return await tags_of(PERSON_MODEL, person_id)


def _tag_name(name: str) -> str:
    from core.errors import ValidationError
    from crm_contacts.standardize import fold_width

    tag = " ".join(fold_width(str(name)).split())
    if not tag or len(tag) > 60:
        raise ValidationError({"tag": N_("must be 1 to 60 characters")})
    return tag
