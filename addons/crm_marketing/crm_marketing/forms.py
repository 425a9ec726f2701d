"""Capture forms: a definition managed by the ``marketing`` role, filled in on a public page or an embedded snippet.

A submission creates or matches the person through crm_contacts' duplicate check (``find_or_create_person``:
phone and e-mail standardized as every write path does), tags them, adds them to the form's static list, records
the UTM codes (hidden fields, or the page's query string) and, with crm_sales installed, creates a lead through
the kernel action ``crm_sales.create_lead`` — all in one transaction, so a refused value (422 naming the field)
writes nothing. Journeys with the trigger ``{"type": "form", "form": id}`` enroll the submitters
(``journeys._evidence``).

Public posts carry no CSRF token (the page may live on another site); they are rate-limited per client address
with the kernel's attempt counter (the login throttle's table, so every worker process sees one count), and a
filled honeypot field is accepted silently, recorded as spam and otherwise dropped.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core import db
from core.db import json_column
from core.errors import ValidationError
from core.i18n import N_
from core.runtime import current
from core.security import audit
from core.security.access import Access
from crm_marketing.manifest import FORM
from crm_marketing.models import CaptureForm, FormSubmission, Segment, SegmentMember

# person fields a form may ask; company and message go to the lead and the submission only
FIELDS: dict[str, str] = {
    "name": N_("Name"),
    "email": N_("E-mail"),
    "phone": N_("Phone"),
    "company": N_("Company"),
    "message": N_("Message"),
}
MAX_LENGTH = {"name": 200, "email": 254, "phone": 60, "company": 200, "message": 2000}
UTM = ("utm_source", "utm_medium", "utm_campaign")
HONEYPOT = "website"  # hidden from people by CSS; a bot fills every field it finds
RATE_LIMIT = 10  # submissions per client address …
RATE_WINDOW_SECONDS = 600  # … in this window
DEFINITION = ("name", "title_en", "title_zh", "fields", "tags", "segment", "thanks_en", "thanks_zh", "creates_lead",
              "is_active")


class TooMany(Exception):
    """The client address went past :data:`RATE_LIMIT` submissions in the window (answer 429)."""


@dataclass(frozen=True)
class Outcome:
    submission_id: int
    person_id: int | None
    lead_id: int | None
    is_spam: bool


loaded = json_column  # a JSON column as read (core.db.json_column)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def check(values: Mapping[str, Any]) -> dict[str, Any]:
    """A form definition checked (422 naming the field): known fields, e-mail or phone asked, a static list."""
    out: dict[str, Any] = {}
    name = str(values.get("name") or "").strip()
    if not name:
        raise ValidationError({"name": N_("is required")})
    out["name"] = name[:200]
    for field_name, limit in (("title_en", 200), ("title_zh", 200), ("thanks_en", 2000), ("thanks_zh", 2000)):
        text = str(values.get(field_name) or "").strip()
        if len(text) > limit:
            raise ValidationError({field_name: N_("is longer than %(limit)s characters") % {"limit": limit}})
        out[field_name] = text
    raw = loaded(values.get("fields"), [])
    if not isinstance(raw, list) or not raw:
        raise ValidationError({"fields": N_("choose at least one field")})
    fields: list[dict[str, Any]] = []
    for i, item in enumerate(raw):
        key: Any = item.get("field") if isinstance(item, dict) else item
        if key not in FIELDS:
            raise ValidationError({f"fields[{i}]": N_("must be one of: %(choices)s") % {"choices": ", ".join(FIELDS)}})
        if any(f["field"] == key for f in fields):
            raise ValidationError({f"fields[{i}]": N_("is given twice")})
        fields.append({"field": key, "required": bool(item.get("required")) if isinstance(item, dict) else False})
    if not any(f["field"] in ("email", "phone") for f in fields):
        raise ValidationError({"fields": N_("a form must ask for an e-mail or a phone")})
    out["fields"] = fields
    tags = loaded(values.get("tags"), [])
    if isinstance(tags, str):
        tags = [tags]
    if not isinstance(tags, list) or not all(isinstance(t, str) and 0 < len(t.strip()) <= 60 for t in tags):
        raise ValidationError({"tags": N_("must be tag names of at most 60 characters")})
    out["tags"] = sorted({t.strip() for t in tags})
    segment = values.get("segment")
    if segment in (None, ""):
        out["segment"] = None
    else:
        try:
            segment_id = int(str(segment))
        except ValueError:
            raise ValidationError({"segment": N_("must be a whole number")}) from None
        if not await Segment.exists().where((Segment.id == segment_id) & Segment.is_static.eq(True)):
            raise ValidationError({"segment": N_("must be a static list")})
        out["segment"] = segment_id
    out["creates_lead"] = values.get("creates_lead") not in (None, False, "", "0", "false", "off")
    out["is_active"] = values.get("is_active") not in (None, False, "", "0", "false", "off")
    return out


async def save(acc: Access, values: Mapping[str, Any], form_id: int | None = None) -> int:
    """Create or update a form definition as ``acc``'s user; audited."""
    clean = await check(values)
    stored = {**clean, "fields": json.dumps(clean["fields"]), "tags": json.dumps(clean["tags"], ensure_ascii=False)}
    async with db.atomic():
        if form_id is None:
            await acc.require(FORM, "create")
            row = CaptureForm(_data={CaptureForm._meta.get_column_by_name(k): v for k, v in stored.items()})
            await row.save()
            form_id = int(row.id)
            await audit.record("create", model=FORM, record_id=form_id, changes=audit.diff(None, stored))
        else:
            before = await acc.get(CaptureForm, FORM, form_id, action="update")
            changes: dict[Any, Any] = {CaptureForm._meta.get_column_by_name(k): v for k, v in stored.items()}
            changes[CaptureForm.version] = CaptureForm.version + 1
            await CaptureForm.update(changes).where(CaptureForm.id == form_id)
            old = {k: before[k] for k in stored}
            await audit.record("update", model=FORM, record_id=form_id, changes=audit.diff(old, stored))
    return form_id


async def active(form_id: int) -> dict[str, Any] | None:
    """A form the public may fill in (active), with its fields and tags decoded; None otherwise."""
    row = await CaptureForm.select().where((CaptureForm.id == form_id) & CaptureForm.is_active.eq(True)).first()
    if row is None:
        return None
    return {**row, "fields": loaded(row["fields"], []), "tags": loaded(row["tags"], [])}


async def throttle(ip: str) -> None:
    """Count a submission from ``ip``; :class:`TooMany` past the limit (every process shares the count)."""
    from core.security import sessions
    from core.security.models import LoginAttempt

    settings = current().settings.extra
    limit = int(settings.get("CRM_X_MARKETING_FORM_LIMIT", RATE_LIMIT))
    key = f"crm_marketing.form:{ip}"
    # every post leaves a row (the login throttle keeps only failures): the address's rows past the window go
    await LoginAttempt.delete().where(
        (LoginAttempt.key == key) & (LoginAttempt.at < _now() - dt.timedelta(seconds=RATE_WINDOW_SECONDS)))
    _, over = await sessions.reserve_attempt([key], limit=limit, window_seconds=RATE_WINDOW_SECONDS)
    if over is not None:
        raise TooMany(ip)


def values_of(form: Mapping[str, Any], raw: Mapping[str, Any]) -> dict[str, str]:
    """The asked fields from the post, trimmed and checked for presence and length (422 naming the field)."""
    out: dict[str, str] = {}
    for item in form["fields"]:
        key = item["field"]
        text: Any = raw.get(key, "")
        text = " ".join(text.split()) if isinstance(text, str) and key != "message" else (
            text.strip() if isinstance(text, str) else "")
        if item.get("required") and not text:
            raise ValidationError({key: N_("is required")})
        if len(text) > MAX_LENGTH[key]:
            raise ValidationError({key: N_("is longer than %(limit)s characters") % {"limit": MAX_LENGTH[key]}})
        out[key] = text
    if not out.get("email") and not out.get("phone"):
        asked = "email" if any(f["field"] == "email" for f in form["fields"]) else "phone"
        raise ValidationError({asked: N_("an e-mail or a phone is required")})
    return out


def utm_of(raw: Mapping[str, Any], query: Mapping[str, Any]) -> dict[str, str]:
    """UTM codes from the hidden fields, else from the page's query string (at most 100 characters each)."""
    out = {}
    for key in UTM:
        value = raw.get(key) or query.get(key) or ""
        out[key] = " ".join(str(value).split())[:100]
    return out


async def submit(form: Mapping[str, Any], raw: Mapping[str, Any], query: Mapping[str, Any], *, ip: str = "",
                 language: str = "") -> Outcome:
    """Record one public submission of ``form`` (see the module's docstring); raises ``ValidationError``
    naming the field, with nothing written."""
    from crm_contacts.api import find_or_create_person, standardize_fields

    utm = utm_of(raw, query)
    if str(raw.get(HONEYPOT) or "").strip():
        async with db.atomic():
            row = FormSubmission(form=form["id"], is_spam=True, ip=ip[:64], at=_now(), utm_source=utm["utm_source"],
                                 utm_medium=utm["utm_medium"], utm_campaign=utm["utm_campaign"])
            await row.save()
            await audit.record("create", model=FORM, record_id=int(form["id"]), detail="honeypot: dropped")
        return Outcome(int(row.id), None, None, True)
    values = values_of(form, raw)
    values.update(standardize_fields({k: values[k] for k in ("email", "phone") if k in values}))
    name = values.get("name") or values.get("email") or values.get("phone") or ""
    async with db.atomic():
        person, created = await find_or_create_person(
            name=name, email=values.get("email", ""), phone=values.get("phone", ""), language=language,
            source="form")
        from crm_marketing.journeys import _tag

        for tag in form["tags"]:
            await _tag(person.id, tag, True)
        if form["segment"] and not await SegmentMember.exists().where(
            (SegmentMember.segment == form["segment"]) & (SegmentMember.person == person.id)
        ):
            await SegmentMember.insert(SegmentMember(segment=form["segment"], person=person.id))
            await Segment.update({Segment.member_count: Segment.member_count + 1}).where(
                Segment.id == form["segment"])
        lead_id = None
        if form["creates_lead"]:
            lead_id = await _lead(int(person.id), int(form["id"]), {
                "name": (values.get("company") or name)[:200], "contact_name": name,
                "company_name": values.get("company", ""), "email": values.get("email", ""),
                "phone": values.get("phone", ""), "language": language, "source": "form", **utm})
        row = FormSubmission(form=form["id"], person=person.id, lead_id=lead_id,
                             data=json.dumps(values, ensure_ascii=False), ip=ip[:64], at=_now(),
                             utm_source=utm["utm_source"], utm_medium=utm["utm_medium"],
                             utm_campaign=utm["utm_campaign"])
        await row.save()
        await audit.record("create", model=FORM, record_id=int(form["id"]),
                           detail=f"submission {row.id}: person {person.id}" + (" (new)" if created else "")
                           + (f", lead {lead_id}" if lead_id else ""))
    return Outcome(int(row.id), person.id, lead_id, False)


#: the kernel action a lead-making addon provides (crm_sales); crm_marketing names no addon module
LEAD_ACTION = "crm_sales.create_lead"


async def _lead(person_id: int, form_id: int, values: dict[str, str]) -> int | None:
    """A lead for the submitter through the kernel action ``LEAD_ACTION`` when an installed addon provides it
    (in the submission's transaction); its id, or None without one."""
    import re

    from crm_contacts.api import PERSON_MODEL

    from core.automation import registry
    from core.hooks import AutomationContext

    action = (await registry.actions()).get(LEAD_ACTION)
    if action is None or (action.models and PERSON_MODEL not in action.models):
        return None
    params: Mapping[str, Any] = values
    person_model = await registry.model(PERSON_MODEL)
    if action.check is not None and person_model is not None:
        params = await action.check(person_model, values)
    done = await action.run(AutomationContext(
        rule_id=0, rule_name=f"crm_marketing: form {form_id}", run_id=form_id, key=f"crm_marketing.form:{form_id}",
        model=PERSON_MODEL, record_id=person_id, record={"id": person_id}, params=dict(params),
        url=f"/marketing/forms/{form_id}"))
    found = re.match(r"lead (\d+)", done)
    return int(found.group(1)) if found else None


async def counts(form_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per form: submissions (people's) and honeypot hits."""
    from piccolo.query.functions.aggregate import Count

    out: dict[int, dict[str, int]] = {i: {"submissions": 0, "spam": 0} for i in form_ids}
    if not form_ids:
        return out
    for r in await FormSubmission.select(FormSubmission.form, FormSubmission.is_spam, Count()).where(
        FormSubmission.form.is_in(form_ids)
    ).group_by(FormSubmission.form, FormSubmission.is_spam):
        out[int(r["form"])]["spam" if r["is_spam"] else "submissions"] = int(r["count"])
    return out


def public_url(form_id: int) -> str:
    return f"{current().settings.base_url.rstrip('/')}/marketing/public/forms/{form_id}"
