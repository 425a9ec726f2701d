"""Churn rules per customer tier, and what a flagged customer brings about.

A churn report (latest date per customer, ``stale_days``) may give some tiers their own number of days
(``stale_days_by_tier``: ``{"gold": 30}``). A customer's tier is read from whichever installed dataset has the
dimensions ``person`` and ``tier`` (crm_marketing's value tiers), as the report's owner may read it; a customer
with no tier (or no such dataset) gets ``stale_days``.

A flagged customer gets an activity for their owner (the report's owner when they have none) through the
kernel automation action ``crm_sales.create_activity`` when an addon offers it (crm_reports names none), besides
the report owner's notification stating the rule and the figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from crm_contacts import api as contacts

from core import datasets
from core.automation import registry
from core.errors import CrmError, ValidationError
from core.hooks import AutomationContext, Dataset
from core.security.access import Access

ACTION = "crm_sales.create_activity"
MAX_DAYS = 3650
_BATCH = 500


def by_tier(raw: Any) -> dict[str, int]:
    """``{"gold": 30}`` from a mapping or the form's text (``gold=30, silver=90``); 422 naming the field."""
    if raw in (None, "", {}):
        return {}
    if isinstance(raw, str):
        pairs = [p.partition("=") for p in raw.replace(";", ",").split(",") if p.strip()]
        if any(not sep for _, sep, _ in pairs):
            raise ValidationError({"stale_days_by_tier": "write tier=days, separated by commas"})
        raw = {k.strip(): v.strip() for k, _, v in pairs}
    if not isinstance(raw, Mapping):
        raise ValidationError({"stale_days_by_tier": "must map tiers to days"})
    out: dict[str, int] = {}
    for tier, days in raw.items():
        try:
            n = int(days)
        except (TypeError, ValueError):
            raise ValidationError({"stale_days_by_tier": f"{tier}: days must be a whole number"}) from None
        if not str(tier).strip() or not 1 <= n <= MAX_DAYS:
            raise ValidationError({"stale_days_by_tier": f"{tier}: 1 to {MAX_DAYS} days"})
        out[str(tier).strip()[:40]] = n
    return out


async def source(acc: Access) -> Dataset | None:
    """The dataset telling each customer's tier, if one is installed and readable."""
    for ds in await datasets.datasets(acc):
        if {"person", "tier"} <= {d.name for d in ds.dimensions}:
            return ds
    return None


async def tiers(acc: Access, person_ids: Sequence[Any]) -> dict[Any, str]:
    """Each customer's tier (those without one are left out)."""
    ds = await source(acc)
    if ds is None or not person_ids:
        return {}
    out: dict[Any, str] = {}
    ids = list(dict.fromkeys(person_ids))
    for start in range(0, len(ids), _BATCH):
        part = ids[start:start + _BATCH]
        found = await datasets.run(acc, datasets.Query(ds.key, ("person", "tier"), ("count",), limit=len(part),
                                                       condition={"field": "person", "op": "in", "value": part}))
        out.update({r["person"]: str(r["tier"]) for r in found.rows if r.get("tier")})
    return out


async def activity(report: Mapping[str, Any], person_id: Any, report_owner: int, subject: str, note: str,
                   key: str) -> str:
    """An activity on the customer for their owner, through the kernel action when offered; "" when not."""
    action = (await registry.actions()).get(ACTION)
    if action is None or (action.models and contacts.PERSON_MODEL not in action.models):
        return ""
    try:
        owner = (await contacts.get_contact(int(person_id))).owner_id or report_owner
    except (CrmError, TypeError, ValueError):
        return ""  # not a person (a churn report grouped by something else): the notification is enough
    plain = {"kind": "call", "subject": subject.replace("{", "(").replace("}", ")")[:200],
             "note": note.replace("{", "(").replace("}", ")"), "due_in_hours": 24}
    person_model = await registry.model(contacts.PERSON_MODEL)
    params = dict(await action.check(person_model, plain)) if action.check and person_model else plain
    return str(await action.run(AutomationContext(
        rule_id=0, rule_name=f"crm_reports: {report['name']}"[:200], run_id=int(report["id"]), key=key,
        model=contacts.PERSON_MODEL, record_id=int(person_id),
        record={"id": int(person_id), "owner": owner, "team": None}, params=params,
        url=f"/reports/reports/{report['id']}")))


def limit_for(tier: str | None, default: int, tiers_days: Mapping[str, int]) -> int:
    return tiers_days.get(tier or "", default)
