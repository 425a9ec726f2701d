"""Campaign returns: the orders attributed to each campaign, as rows a report can sum (the dataset
``crm_marketing.campaign_roi``: revenue, cost and ROI by campaign, the marketing dashboard's "Campaign ROI" card).

The rule is the ROI page's (``roi.revenue``): a confirmed, unarchived order in the campaign's currency counts when
its customer's first counted click on the campaign came at most :data:`roi.ATTRIBUTION_DAYS` before it. Orders
come from the kernel's dataset ``crm_sales.orders`` (crm_marketing never imports crm_sales); each row keeps the
order's ``owner`` and ``team`` and the dataset is read under the orders' model, so a viewer's figure sums the
orders they may read, as the page's does, and a role that may not read orders gets no such dataset (the page
shows it no revenue either). Rows are rebuilt per campaign: when an order of someone who clicked it is confirmed
or cancelled (crm_sales' events), and every 15 minutes for changes no event announces (an order's amount, owner,
archiving); the cost follows a campaign's edit at once (:func:`set_cost`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from core import db, versions
from crm_marketing import roi
from crm_marketing.models import Campaign, CampaignEvent, CampaignReturn

DATASET = "crm_marketing.campaign_roi"
#: the model whose rights the rows follow: the orders dataset's (``crm_sales.orders``)
ORDER_MODEL = "crm_sales.order"
_CHUNK = 200


async def _orders() -> Any:
    from core import datasets

    found = {d.key: d for d in await datasets.datasets()}
    return found[roi.ORDERS].table if roi.ORDERS in found else None


async def _first_clicks(campaign_id: int) -> dict[int, dt.datetime]:
    first: dict[int, dt.datetime] = {}
    rows = await CampaignEvent.select(CampaignEvent.recipient.person.as_alias("person"), CampaignEvent.at).where(
        (CampaignEvent.campaign == campaign_id) & (CampaignEvent.kind == "click") & CampaignEvent.is_scanner.eq(False))
    for row in rows:
        if row["person"] is not None:
            at = row["at"] if row["at"].tzinfo else row["at"].replace(tzinfo=dt.UTC)
            first[int(row["person"])] = min(at, first.get(int(row["person"]), at))
    return first


async def _rows(table: Any, campaign: dict[str, Any]) -> list[CampaignReturn]:
    first = await _first_clicks(int(campaign["id"]))
    window = dt.timedelta(days=roi.ATTRIBUTION_DAYS)
    people = sorted(first.items())
    out: list[CampaignReturn] = []
    for start in range(0, len(people), _CHUNK):
        touched: Any = None
        for person, at in people[start:start + _CHUNK]:
            one = (table.person == person) & (table.confirmed_at >= at) & (table.confirmed_at < at + window)
            touched = one if touched is None else touched | one
        where = (table.state == "confirmed") & (table.currency == campaign["currency"]) & touched
        where = where & table.is_archived.eq(False)  # as the access layer reads orders on the ROI page
        for o in await table.select(table.id, table.person, table.owner, table.team, table.total,
                                    table.confirmed_at).where(where):
            out.append(CampaignReturn(campaign=campaign["id"], order_ref=o["id"], owner=o["owner"], team=o["team"],
                                      currency=campaign["currency"], total=o["total"], cost=campaign["cost"],
                                      clicked_at=first[int(o["person"])], confirmed_at=o["confirmed_at"]))
    return out


async def refresh(campaign_ids: Sequence[int] | None = None) -> int:
    """Rebuild the rows of ``campaign_ids`` (every campaign: None); how many rows they have now. Nothing without
    an orders dataset."""
    table = await _orders()
    if table is None:
        return 0
    query = Campaign.select(Campaign.id, Campaign.cost, Campaign.currency)
    if campaign_ids is not None:
        if not campaign_ids:
            return 0
        query = query.where(Campaign.id.is_in(sorted({int(c) for c in campaign_ids})))
    written = 0
    for campaign in await query:
        rows = await _rows(table, campaign)
        async with db.atomic():
            await CampaignReturn.delete().where(CampaignReturn.campaign == campaign["id"])
            if rows:
                await CampaignReturn.insert(*rows)
        written += len(rows)
    await versions.bump(versions.table_key(CampaignReturn._meta.tablename))  # cached figures over it are stale
    return written


async def campaigns_of_order(order_id: int) -> list[int]:
    """The campaigns the customer of order ``order_id`` clicked (a counted click): those its change may move."""
    table = await _orders()
    if table is None:
        return []
    order = await table.select(table.person).where(table.id == int(order_id)).first()
    if order is None or order["person"] is None:
        return []
    rows = await CampaignEvent.select(CampaignEvent.campaign).where(
        (CampaignEvent.recipient.person == order["person"]) & (CampaignEvent.kind == "click")
        & CampaignEvent.is_scanner.eq(False)).distinct()
    return sorted(int(r["campaign"]) for r in rows)


async def note_order(order_id: int) -> None:
    """crm_sales confirmed or cancelled an order: the campaigns its customer clicked are rebuilt by a job."""
    import uuid

    from core import jobs

    found = await campaigns_of_order(order_id)
    if found:
        await jobs.enqueue("crm_marketing.refresh_returns", dedup_key=f"crm_marketing.returns:{uuid.uuid4().hex}",
                           campaign_ids=found)


async def set_cost(campaign_id: int, cost: Decimal) -> None:
    """A campaign's cost changed: its rows carry the new one (in the caller's transaction)."""
    await CampaignReturn.update({CampaignReturn.cost: cost}).where(CampaignReturn.campaign == campaign_id)
    await versions.bump(versions.table_key(CampaignReturn._meta.tablename))

