"""What a campaign brought: recipients, delivered, opens, clicks, unsubscribes, cost and ROI.

Opens and clicks count people (distinct recipients), scanner hits excluded. Revenue is attributed only when an
addon reports it (crm_sales through its events, not installed here): without it ROI is not computed, rather
than shown as a loss of 100 %.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from piccolo.query.functions.aggregate import Count

from crm_marketing.models import Campaign, CampaignEvent, CampaignRecipient


async def _distinct(campaign_id: int, kind: str) -> int:
    rows = (
        await CampaignEvent.select(CampaignEvent.recipient)
        .where(
            (CampaignEvent.campaign == campaign_id) & (CampaignEvent.kind == kind) & CampaignEvent.is_scanner.eq(False)
        )
        .distinct()
    )
    return len(rows)


async def figures(campaign_id: int) -> dict[str, Any]:
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
        "queued": states.get("queued", 0) + states.get("sending", 0),
        "skipped": states.get("skipped", 0),
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
    return out
