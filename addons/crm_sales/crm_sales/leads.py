"""Lead creation from every entry point (web form, API, CSV import): insert, audit, then assign by the rules."""

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


def clean(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {k: (v.strip() if isinstance(v, str) else v) for k, v in values.items()
                           if k in FIELDS or k == "custom"}  # custom fields: checked by core.customfields
    if not out.get("name"):
        raise ValidationError({"name": N_("is required")})
    raw = out.get("expected_revenue")
    if raw in (None, ""):
        out["expected_revenue"] = Decimal(0)
    else:
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
