"""Standardize the values of a write (form, API, import) before they reach the database.

One function per main table turns user input into stored values: standardized fields, the original phone,
exact duplicate keys, ``search_text`` and ``updated_at``. Any value that does not standardize raises
``core.errors.ValidationError`` naming the field, which the API answers with 422 and the import reports
per row. The pure rules live in ``standardize.py``; this module applies them to records.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Mapping
from typing import Any

from core.errors import ValidationError
from core.i18n import N_
from crm_contacts.countries import COVERED, country_code
from crm_contacts.standardize import (
    StandardizationError,
    canonical_region,
    fold_width,
    normalize_email,
    normalize_name,
    normalize_phone,
    normalize_tax_id,
)

_LANGUAGE = re.compile(r"^[a-z]{2,3}([_-][A-Za-z]{2,4})?$")
_LIMITS = {"name": 200, "given_name": 100, "family_name": 100, "job_title": 100, "industry": 100,
           "source": 100, "website": 300, "tax_id": 60, "stage": 40, "province": 40, "city": 60}
_TEXT = ("job_title", "industry", "source", "website")


#: set in an import's worker processes, which are not booted: the importing process's default region
WORKER_REGION: str | None = None


def default_region() -> str:
    """The region phone numbers without a country code are read in (``CRM_DEFAULT_REGION``, CN)."""
    if WORKER_REGION is not None:
        return WORKER_REGION
    try:
        from core.runtime import current

        return current().settings.default_region or "CN"
    except Exception:  # not booted (pure unit use): the documented default
        return "CN"


def _text(values: dict[str, Any], name: str) -> str:
    raw = values.get(name)
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raw = str(raw)
    text = " ".join(fold_width(raw).split())
    limit = _LIMITS.get(name, 300)
    if len(text) > limit:
        raise ValidationError({name: N_("is longer than %(limit)s characters") % {"limit": limit}})
    return text


def _fail(exc: StandardizationError, field: str | None = None) -> ValidationError:
    return ValidationError({field or exc.field: exc.message})


def _phone(out: dict[str, Any], values: Mapping[str, Any], region: str) -> None:
    raw = values.get("phone")
    if raw is None:
        return
    if str(raw).strip() == "":
        out["phone"], out["phone_original"] = "", ""
        return
    if len(str(raw)) > 60:
        raise ValidationError({"phone": N_("is longer than %(limit)s characters") % {"limit": 60}})
    try:
        phone = normalize_phone(str(raw), region)
    except StandardizationError as exc:
        raise _fail(exc, "phone") from None
    out["phone"], out["phone_original"] = phone.e164, str(raw).strip()


def _email(out: dict[str, Any], values: Mapping[str, Any]) -> None:
    raw = values.get("email")
    if raw is None:
        return
    if str(raw).strip() == "":
        out["email"], out["email_key"] = "", ""
        return
    try:
        out["email"] = normalize_email(str(raw))
        out["email_key"] = out["email"].lower()  # == standardize.email_key(raw), without validating twice
    except StandardizationError as exc:
        raise _fail(exc, "email") from None


def _country(out: dict[str, Any], values: Mapping[str, Any], before: Mapping[str, Any] | None) -> str:
    """Store the ``country`` given as its ISO code; return the country the record's region and phone are read
    in: the one given, else the stored one, else the site's (``CRM_DEFAULT_REGION``)."""
    if "country" in values:
        try:
            out["country"] = country_code(str(values.get("country") or ""))
        except StandardizationError as exc:
            raise _fail(exc) from None
    country = out["country"] if "country" in out else str((before or {}).get("country") or "")
    return country or default_region()


def _region(out: dict[str, Any], values: Mapping[str, Any], country: str) -> None:
    """``region`` (free text: "广东省深圳市") or ``province``/``city`` → canonical short names when a dictionary
    covers the country (China); for any other country they are kept as entered (``region`` as the province)."""
    if country not in COVERED:
        for name in ("province", "city"):
            if name in values:
                out[name] = _text(dict(values), name)
        if str(values.get("region") or "").strip() and not out.get("province"):
            out["province"] = _text({"province": values["region"]}, "province")
        return
    for name in ("region", "province", "city"):
        raw = values.get(name)
        if raw is None or str(raw).strip() == "":
            if name in values and name != "region":
                out[name] = ""
            continue
        try:
            region = canonical_region(str(raw), field=name)
        except StandardizationError as exc:
            raise _fail(exc) from None
        if name == "province" and region.city and region.city != region.province:
            raise ValidationError({"province": N_("%(value)s is a city, not a province") % {"value": repr(raw)}})
        if name == "city" and out.get("province") and out["province"] != region.province:
            raise ValidationError({"city": N_("%(value)s is not in %(province)s") % {"value": repr(raw),
                                                                                    "province": out["province"]}})
        out["province"] = region.province
        if region.city and name != "province":
            out["city"] = region.city


def _common(values: Mapping[str, Any], out: dict[str, Any], before: Mapping[str, Any] | None) -> None:
    v = dict(values)
    country = _country(out, v, before)
    for name in _TEXT:
        if name in v:
            out[name] = _text(v, name)
    if "stage" in v:
        out["stage"] = _text(v, "stage").lower()
    _phone(out, v, country)
    _email(out, v)
    _region(out, v, country)
    out.pop("region", None)
    if "custom" in v and v["custom"] is not None and not isinstance(v["custom"], dict):
        raise ValidationError({"custom": N_("must be an object of free fields")})
    out["updated_at"] = dt.datetime.now(dt.UTC)


def _search_text(record: Mapping[str, Any], extra: str = "", model: str = "") -> str:
    """Lowercased name, company, emails and phones (E.164 and national digits) for substring search, and the
    values of searchable custom fields no role sees masked or hidden (``core.customfields``)."""
    from core.customfields.records import search_terms

    phone = str(record.get("phone") or "")
    parts = [record.get("name"), extra, record.get("email"), phone, phone[3:] if phone.startswith("+86") else "",
             record.get("phone_original"), record.get("tax_id"), search_terms(model, record.get("custom"))]
    return " ".join(str(p) for p in parts if p).lower()


async def _stage_exists(key: str) -> bool:
    from crm_contacts.models import Stage

    return bool(await Stage.exists().where(Stage.key == key))


async def clean_person(values: Mapping[str, Any], before: Mapping[str, Any] | None = None, *,
                       stages: Collection[str] | None = None, org_name: str | None = None) -> dict[str, Any]:
    """Standardized values for a create (``before`` None) or an update of a person; 422 naming the field.

    Bulk callers pass the known ``stages`` and the organization's name (``org_name``) to skip the lookups.
    """
    out: dict[str, Any] = {k: v for k, v in values.items() if k not in ("region",)}
    for name in ("given_name", "family_name"):
        if values.get(name):
            try:
                out[name] = normalize_name(_text(dict(values), name), field=name)
            except StandardizationError as exc:
                raise _fail(exc) from None
    if "name" in values or before is None:
        raw = values.get("name") or " ".join(
            p for p in (out.get("given_name"), out.get("family_name")) if p)
        if isinstance(raw, str) and len(raw) > 200:
            raise ValidationError({"name": N_("is longer than %(limit)s characters") % {"limit": 200}})
        try:
            out["name"] = normalize_name(raw if isinstance(raw, str) else "", field="name")
        except StandardizationError as exc:
            raise _fail(exc) from None
    _common(values, out, before)
    if "language" in values:
        lang = _text(dict(values), "language").replace("-", "_")
        if lang and not _LANGUAGE.match(lang):
            raise ValidationError({"language": N_("%(value)s is not a language code like zh_CN or en") % {
                "value": repr(lang)}})
        out["language"] = lang
    if values.get("birth_date") not in (None, ""):
        raw = values["birth_date"]
        try:
            out["birth_date"] = raw if isinstance(raw, dt.date) else dt.date.fromisoformat(str(raw).strip())
        except ValueError:
            raise ValidationError({"birth_date": N_("must be a date like 1990-04-09")}) from None
    elif "birth_date" in values:
        out["birth_date"] = None
    merged = {**(before or {}), **out}
    stage = str(merged.get("stage") or "")
    if stage and not (stage in stages if stages is not None else await _stage_exists(stage)):
        raise ValidationError({"stage": N_("%(value)s is not a lifecycle stage") % {"value": repr(merged["stage"])}})
    org_id = merged.get("organization")
    if org_name is not None:
        pass  # the caller resolved the organization
    elif org_id not in (None, ""):
        try:
            org_id = int(org_id)
        except (TypeError, ValueError):
            raise ValidationError({"organization": N_("must be an organization id")}) from None
        from crm_contacts.models import Organization  # here: an import row (org_name given) needs no model

        org = await Organization.select(Organization.name).where(Organization.id == org_id).first()
        if org is None:
            raise ValidationError({"organization": N_("organization %(id)s does not exist") % {"id": org_id}})
        org_name = org["name"]
        if "organization" in out:
            out["organization"] = org_id
    elif "organization" in out:
        out["organization"] = None
    out["search_text"] = _search_text(merged, org_name or "", "crm_contacts.person")
    return out


async def clean_organization(values: Mapping[str, Any], before: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Standardized values for a create or an update of an organization; 422 naming the field."""
    out: dict[str, Any] = {k: v for k, v in values.items() if k not in ("region",)}
    if "name" in values or before is None:
        raw = values.get("name")
        if isinstance(raw, str) and len(raw) > 200:
            raise ValidationError({"name": N_("is longer than %(limit)s characters") % {"limit": 200}})
        try:
            out["name"] = normalize_name(raw if isinstance(raw, str) else "", field="name")
        except StandardizationError as exc:
            raise _fail(exc) from None
    if "tax_id" in values:
        raw = values.get("tax_id")
        if raw in (None, "") or str(raw).strip() == "":
            out["tax_id"], out["tax_id_key"] = "", ""
        else:
            if len(str(raw)) > 60:
                raise ValidationError({"tax_id": N_("is longer than %(limit)s characters") % {"limit": 60}})
            try:
                out["tax_id"] = out["tax_id_key"] = normalize_tax_id(str(raw))
            except StandardizationError as exc:
                raise _fail(exc, "tax_id") from None
    _common(values, out, before)
    merged = {**(before or {}), **out}
    if merged.get("stage") and not await _stage_exists(str(merged["stage"])):
        raise ValidationError({"stage": N_("%(value)s is not a lifecycle stage") % {"value": repr(merged["stage"])}})
    out["search_text"] = _search_text(merged, merged.get("industry") or "", "crm_contacts.organization")
    return out
