"""What a campaign brought: recipients, delivered, opens, clicks, unsubscribes, cost, revenue and ROI.

Opens and clicks count people (distinct recipients), scanner hits excluded.

Revenue comes from the kernel's dataset ``crm_sales.orders`` when an addon provides it (crm_sales), read through
the viewer's rights like every figure of a report: crm_marketing never imports crm_sales. A confirmed order in
the campaign's currency counts when its customer clicked the campaign (a counted click) within
:data:`ATTRIBUTION_DAYS` before it. Without orders to read (crm_sales absent, or the viewer may not read them)
revenue and ROI are not computed, rather than shown as a loss of 100 %.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from piccolo.query.functions.aggregate import Count

from core.errors import NotFound
from core.security.access import Access
from crm_marketing.models import Campaign, CampaignEvent, CampaignRecipient

ORDERS = "crm_sales.orders"
ATTRIBUTION_DAYS = 30
_CHUNK = 200


async def _distinct(campaign_id: int, kind: str) -> int:
    rows = (
        await CampaignEvent.select(CampaignEvent.recipient)
        .where(
            (CampaignEvent.campaign == campaign_id) & (CampaignEvent.kind == kind) & CampaignEvent.is_scanner.eq(False)
        )
        .distinct()
    )
    return len(rows)


async def revenue(access: Access, campaign_id: int, currency: str) -> Decimal | None:
    """Orders attributed to the campaign that ``access``'s user may read; None without an orders dataset."""
    from core import datasets

    try:
        ds = await datasets.dataset(ORDERS, access)
    except NotFound:
        return None
    first: dict[int, dt.datetime] = {}
    rows = await CampaignEvent.select(CampaignEvent.recipient.person.as_alias("person"), CampaignEvent.at).where(
        (CampaignEvent.campaign == campaign_id) & (CampaignEvent.kind == "click") & CampaignEvent.is_scanner.eq(False)
    )
    for row in rows:
        if row["person"] is not None:
            at = row["at"] if row["at"].tzinfo else row["at"].replace(tzinfo=dt.UTC)
            first[int(row["person"])] = min(at, first.get(int(row["person"]), at))
    total = Decimal(0)
    table: Any = ds.table
    window = dt.timedelta(days=ATTRIBUTION_DAYS)
    people = sorted(first.items())
    for start in range(0, len(people), _CHUNK):
        touched: Any = None
        for person, at in people[start : start + _CHUNK]:
            one = (table.person == person) & (table.confirmed_at >= at) & (table.confirmed_at < at + window)
            touched = one if touched is None else touched | one
        where = (table.state == "confirmed") & (table.currency == currency) & touched
        for found in await datasets.aggregate(access, ORDERS, (), ("total",), where=where):
            total += Decimal(str(found["total"] or 0))
    return total


async def figures(campaign_id: int, access: Access | None = None) -> dict[str, Any]:
    campaign = await Campaign.select(Campaign.cost, Campaign.currency).where(Campaign.id == campaign_id).first()
    states = {
        r["state"]: int(r["count"])
        for r in await CampaignRecipient.select(CampaignRecipient.state, Count())
        .where(CampaignRecipient.campaign == campaign_id)
        .group_by(CampaignRecipient.state)
    }
    recipients = sum(states.values())
    delivered = states.get("sent", 0)
    out: dict[str, Any] = {
        "recipients": recipients,
        "delivered": delivered,
        "failed": states.get("failed", 0),
        # held: the rest of an A/B test's segment, waiting for the winner
        "queued": states.get("queued", 0) + states.get("sending", 0) + states.get("held", 0),
        "skipped": states.get("skipped", 0),
        "unknown": states.get("unknown", 0),
        "bounced": states.get("bounced", 0),  # delivery reports said the address does not exist
        "opens": await _distinct(campaign_id, "open"),
        "clicks": await _distinct(campaign_id, "click"),
        "unsubscribes": await _distinct(campaign_id, "unsubscribe"),
        "scanner_hits": await CampaignEvent.count().where(
            (CampaignEvent.campaign == campaign_id) & CampaignEvent.is_scanner.eq(True)
        ),
        "cost": Decimal(campaign["cost"]) if campaign else Decimal(0),
        "currency": campaign["currency"] if campaign else "CNY",
        "revenue": None,
        "roi": None,
    }
    for key, base in (("open_rate", "opens"), ("click_rate", "clicks"), ("unsubscribe_rate", "unsubscribes")):
        out[key] = (Decimal(out[base]) / delivered) if delivered else None
    if access is not None and campaign is not None:
        out["revenue"] = await revenue(access, campaign_id, out["currency"])
        if out["revenue"] is not None and out["cost"] > 0:
            out["roi"] = (out["revenue"] - out["cost"]) / out["cost"]
    return out
