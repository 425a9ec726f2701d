"""Leads from every entry point (web form, API, CSV import): insert, audit, then assign by the rules; their
phone, e-mail and region standardized like people's (``crm_contacts.api.standardize_fields``); disqualifying."""

from __future__ import annotations

import csv
import io
from decimal import Decimal, InvalidOperation
from typing import Any

from core import db
from core.automation import record_changed
from core.errors import ValidationError
from core.i18n import N_
from core.security import audit
from core.security.access import Access
from crm_sales import assignment
from crm_sales.manifest import LEAD
from crm_sales.models import Lead

FIELDS = ("name", "contact_name", "company_name", "email", "phone", "language", "region", "industry", "source",
          "product_interest", "utm_source", "utm_medium", "utm_campaign", "expected_revenue", "currency")


def clean(values: dict[str, Any], *, creating: bool = True) -> dict[str, Any]:
    """The lead's values checked and standardized; ``creating=False``: only the fields given (an update)."""
    from crm_contacts.api import standardize_fields

    out: dict[str, Any] = {k: (v.strip() if isinstance(v, str) else v) for k, v in values.items()
                           if k in FIELDS or k == "custom"}  # custom fields: checked by core.customfields
    if (creating or "name" in out) and not out.get("name"):
        raise ValidationError({"name": N_("is required")})
    out.update(standardize_fields({k: v for k, v in out.items() if k in ("phone", "email", "region")}))
    raw = out.get("expected_revenue")
    if raw in (None, "") and (creating or "expected_revenue" in out):
        out["expected_revenue"] = Decimal(0)
    elif raw not in (None, ""):
        if isinstance(raw, float):
            raw = repr(raw)  # JSON numbers arrive as float: go through their shortest text, not binary
        try:
            out["expected_revenue"] = Decimal(str(raw))
        except InvalidOperation:
            raise ValidationError({"expected_revenue": N_("is not a number")}) from None
        if out["expected_revenue"] < 0:
            raise ValidationError({"expected_revenue": N_("must not be negative")})
    return out


def _fallback(acc: Access | None) -> int | None:
    # A rep who types a lead keeps it when no rule places it; a manager's or an import's lead stays in the
    # unassigned queue for the catch-up job (rules and capacity change).
    who = acc.principal if acc else None
    if who is None or "sales_manager" in who.roles or who.is_admin:
        return None
    return who.user_id


async def create_lead(acc: Access | None, values: dict[str, Any], *, assign_fallback: bool = True) -> int:
    """Create a lead (checked against ``acc`` when given) and run the assignment rules on it."""
    if acc is not None:
        await acc.require(LEAD, "create")
        await acc.check_write(LEAD, values)
    data = clean(values)
    async with db.atomic():
        if acc is not None and acc.principal and acc.principal.team_ids:
            data.setdefault("team", min(acc.principal.team_ids))
        row = Lead(_data={Lead._meta.get_column_by_name(k): v for k, v in data.items()})
        await row.save()
        lead_id = int(row.id)
        await audit.record("create", model=LEAD, record_id=lead_id, changes=audit.diff(None, data))
        await assignment.assign_lead(lead_id, fallback_owner=_fallback(acc) if assign_fallback else None)
        await record_changed(LEAD, lead_id, None, data)  # after the assignment: rules see the owner
    return lead_id


async def disqualify(acc: Access, lead_id: int, reason: str) -> None:
    """Set a lead aside with the reason (kept, audited, shown on the lead); a qualified one has its deal."""
    reason = " ".join(reason.split())
    if not reason:
        raise ValidationError({"reason": N_("is required")})
    if len(reason) > 300:
        raise ValidationError({"reason": N_("is longer than %(limit)s characters") % {"limit": 300}})
    async with db.atomic():
        lead = await acc.get(Lead, LEAD, lead_id, action="update")
        if lead["state"] != "new":
            raise ValidationError({"state": N_("a %(state)s lead cannot be disqualified") % {"state": lead["state"]}})
        await Lead.update({Lead.state: "disqualified", Lead.disqualified_reason: reason,
                           Lead.version: Lead.version + 1}).where(Lead.id == lead_id)
        changes = {"state": "disqualified", "disqualified_reason": reason}
        await audit.record("disqualify", model=LEAD, record_id=lead_id,
                           changes=audit.diff({k: lead[k] for k in changes}, changes))
        await record_changed(LEAD, lead_id, lead, changes)


async def reopen(acc: Access, lead_id: int) -> None:
    """A disqualified lead back to the incoming ones (the reason is kept in the audit log)."""
    async with db.atomic():
        lead = await acc.get(Lead, LEAD, lead_id, action="update")
        if lead["state"] != "disqualified":
            raise ValidationError({"state": N_("only a disqualified lead can be reopened")})
        await Lead.update({Lead.state: "new", Lead.disqualified_reason: "", Lead.version: Lead.version + 1}).where(
            Lead.id == lead_id)
        changes = {"state": "new", "disqualified_reason": ""}
        await audit.record("reopen", model=LEAD, record_id=lead_id,
                           changes=audit.diff({k: lead[k] for k in changes}, changes))
        await record_changed(LEAD, lead_id, lead, changes)


async def import_csv(acc: Access, text: str) -> tuple[list[int], dict[int, str]]:
    """Import leads from CSV text (header = field names); returns created ids and errors by line number."""
    created: list[int] = []
    errors: dict[int, str] = {}
    for lineno, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        try:
            created.append(await create_lead(acc, {k: v for k, v in row.items() if k in FIELDS},
                                              assign_fallback=False))
        except ValidationError as exc:
            errors[lineno] = exc.message
    return created, errors
