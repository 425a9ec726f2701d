"""Leads, won deals and their revenue attributed to campaigns, by last touch and by first touch (both shown).

A *touch* is a moment a person came through a campaign: a counted click in its mail (scanner hits excluded), or
a capture-form submission carrying its UTM campaign code (``Campaign.utm_campaign``, compared case-insensitively).
A conversion is credited to the campaign of the person's latest touch at or before it (last touch) and to that
of their earliest touch in the :data:`TOUCH_DAYS` before it (first touch); without a touch it is credited to none.

- Leads: the leads capture forms created (``FormSubmission.lead_id``, crm_sales installed), at the submission.
- Won deals: deals in state ``won`` with a customer, at ``closed_at``, read through the kernel's dataset
  ``crm_sales.opportunities`` with the viewer's rights (crm_marketing never imports crm_sales). Revenue sums the
  ``expected_revenue`` of those in the campaign's currency. Without deals the viewer may read (crm_sales absent,
  or a role without the right) deals and revenue are None, not 0.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from core.bulk import any_of
from core.errors import NotFound, PermissionDenied
from core.runtime import current
from core.security.access import Access
from crm_marketing.models import Campaign, CampaignEvent, FormSubmission

DEALS = "crm_sales.opportunities"
TOUCH_DAYS = 90
_CHUNK = 2000
MODELS = ("last", "first")
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Conversion:
    person: int
    at: dt.datetime
    amount: Decimal = Decimal(0)
    currency: str = ""


@dataclass
class Credit:
    """What one campaign is credited with under one model; None: not known to this viewer / installation."""

    leads: int | None = 0
    won: int | None = 0
    revenue: Decimal | None = Decimal(0)
    lead_ids: list[int] = field(default_factory=list)
    deal_ids: list[int] = field(default_factory=list)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


async def leads() -> dict[int, Conversion] | None:
    """Leads made by capture forms, by lead id; None without crm_sales (no leads exist)."""
    if "crm_sales" not in current().names:
        return None
    rows = await FormSubmission.select(FormSubmission.lead_id, FormSubmission.person, FormSubmission.at).where(
        FormSubmission.lead_id.is_not_null() & FormSubmission.person.is_not_null() & FormSubmission.is_spam.eq(False)
    )
    return {int(r["lead_id"]): Conversion(int(r["person"]), _aware(r["at"])) for r in rows}


async def won_deals(access: Access) -> dict[int, Conversion] | None:
    """Won deals with a customer that ``access``'s user may read, by id; None when they may read none."""
    from core import datasets

    try:
        ds = await datasets.dataset(DEALS, access)
        table: Any = ds.table
        query = await access.select(
            table, ds.model, table.id, table.person, table.closed_at, table.expected_revenue, table.currency,
            where=(table.state == "won") & table.person.is_not_null() & table.closed_at.is_not_null())
    except (NotFound, PermissionDenied):
        return None
    return {int(r["id"]): Conversion(int(r["person"]), _aware(r["closed_at"]), Decimal(r["expected_revenue"] or 0),
                                     r["currency"]) for r in await query}


async def touches(people: Iterable[int]) -> dict[int, list[tuple[dt.datetime, int]]]:
    """Per person, their touches (time, campaign id) in time order."""
    ids = sorted(set(people))
    out: dict[int, list[tuple[dt.datetime, int]]] = {}
    if not ids:
        return out
    codes = {str(r["utm_campaign"]).strip().lower(): int(r["id"]) for r in
             await Campaign.select(Campaign.id, Campaign.utm_campaign).where(Campaign.utm_campaign != "")
             .order_by(Campaign.id, ascending=False)}  # a code used twice: the older campaign keeps it
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start:start + _CHUNK]
        for r in await CampaignEvent.select(CampaignEvent.recipient.person.as_alias("person"), CampaignEvent.at,
                                            CampaignEvent.campaign).where(
            (CampaignEvent.kind == "click") & CampaignEvent.is_scanner.eq(False)
            & CampaignEvent.recipient.person.is_in(chunk)
        ):
            out.setdefault(int(r["person"]), []).append((_aware(r["at"]), int(r["campaign"])))
        if codes:
            for r in await FormSubmission.select(FormSubmission.person, FormSubmission.at, FormSubmission.utm_campaign
                                                 ).where(FormSubmission.is_spam.eq(False)
                                                         & any_of(FormSubmission.person, chunk)
                                                         & (FormSubmission.utm_campaign != "")):
                campaign = codes.get(str(r["utm_campaign"]).strip().lower())
                if campaign is not None:
                    out.setdefault(int(r["person"]), []).append((_aware(r["at"]), campaign))
    for found in out.values():
        found.sort()
    return out


def credited(found: list[tuple[dt.datetime, int]], at: dt.datetime) -> tuple[int | None, int | None]:
    """(last-touch campaign, first-touch campaign) of a conversion at ``at``, among touches in time order."""
    end = bisect.bisect_right(found, (at, 2**63))
    start = bisect.bisect_left(found, (at - dt.timedelta(days=TOUCH_DAYS), -1))
    if start >= end:
        return None, None
    return found[end - 1][1], found[start][1]


async def attributed(access: Access) -> dict[int, dict[str, Credit]]:
    """Per campaign: its :class:`Credit` under the ``last`` and the ``first`` touch model."""
    lead_rows, deal_rows = await leads(), await won_deals(access)
    currency = {int(r["id"]): r["currency"] for r in await Campaign.select(Campaign.id, Campaign.currency)}
    out = {c: {m: Credit(leads=None if lead_rows is None else 0, won=None if deal_rows is None else 0,
                         revenue=None if deal_rows is None else Decimal(0)) for m in MODELS} for c in currency}
    people = {c.person for c in (lead_rows or {}).values()} | {c.person for c in (deal_rows or {}).values()}
    found = await touches(people)
    for lead_id, conv in sorted((lead_rows or {}).items()):
        for model, campaign in zip(MODELS, credited(found.get(conv.person, []), conv.at), strict=True):
            if campaign in out:
                credit = out[campaign][model]
                credit.leads = (credit.leads or 0) + 1
                credit.lead_ids.append(lead_id)
    for deal_id, conv in sorted((deal_rows or {}).items()):
        for model, campaign in zip(MODELS, credited(found.get(conv.person, []), conv.at), strict=True):
            if campaign in out:
                credit = out[campaign][model]
                credit.won = (credit.won or 0) + 1
                credit.deal_ids.append(deal_id)
                if conv.currency == currency[campaign]:
                    credit.revenue = (credit.revenue or Decimal(0)) + conv.amount
    return out


async def for_campaign(access: Access, campaign_id: int) -> dict[str, Credit]:
    """The ``last`` and ``first`` touch credits of one campaign."""
    return (await attributed(access)).get(campaign_id, {m: Credit() for m in MODELS})


def as_json(credits: dict[str, Credit]) -> dict[str, dict[str, Any]]:
    return {m: {"leads": c.leads, "won_deals": c.won,
                "revenue": None if c.revenue is None else str(c.revenue.quantize(CENT))} for m, c in credits.items()}
