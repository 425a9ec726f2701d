"""Hook implementations of crm_sales: the API, the contact's 360° page, merges, the dashboard."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from piccolo.custom_types import Combinable

from core.hooks import Dataset, OwnedRecords, Panel, SearchProvider, TimelineEntry, Widget, hookimpl
from core.i18n import gettext
from core.security.access import Access


@hookimpl
def crm_api_resources() -> Any:
    from crm_sales.resources import resources

    return resources()


def _aware(at: dt.datetime | dt.date | None) -> dt.datetime:
    if isinstance(at, dt.datetime):
        return at if at.tzinfo else at.replace(tzinfo=dt.UTC)
    if isinstance(at, dt.date):
        return dt.datetime.combine(at, dt.time(), tzinfo=dt.UTC)
    return dt.datetime.now(dt.UTC)


async def _person_records(person_id: int, acc: Access) -> dict[str, list[dict[str, Any]]]:
    """What this user may see of a person's deals, quotes, orders and activities (record rules apply)."""
    from crm_sales.manifest import ACTIVITY, OPPORTUNITY, ORDER, QUOTE
    from crm_sales.models import Activity, Opportunity, Order, Quote

    out: dict[str, list[dict[str, Any]]] = {"deals": [], "quotes": [], "orders": [], "activities": []}
    if acc.can(OPPORTUNITY):
        out["deals"] = list(await (await acc.select(
            Opportunity, OPPORTUNITY, Opportunity.id, Opportunity.name, Opportunity.state, Opportunity.stage.name,
            Opportunity.stage.name_zh,
            Opportunity.expected_revenue, Opportunity.currency, Opportunity.created_at, Opportunity.closed_at,
            where=Opportunity.person == person_id)).order_by(Opportunity.id, ascending=False).limit(50))
    deal_ids = [d["id"] for d in out["deals"]]
    if acc.can(QUOTE) and deal_ids:
        out["quotes"] = list(await (await acc.select(
            Quote, QUOTE, Quote.id, Quote.number, Quote.revision, Quote.state, Quote.total, Quote.currency,
            Quote.created_at, Quote.sent_at, where=Quote.opportunity.is_in(deal_ids))).order_by(
            Quote.id, ascending=False).limit(50))
    if acc.can(ORDER):
        out["orders"] = list(await (await acc.select(
            Order, ORDER, Order.id, Order.reference, Order.state, Order.total, Order.currency, Order.confirmed_at,
            where=Order.person == person_id)).order_by(Order.id, ascending=False).limit(50))
    if acc.can(ACTIVITY):
        where: Combinable = Activity.person == person_id
        if deal_ids:
            where = where | Activity.opportunity.is_in(deal_ids)
        out["activities"] = list(await (await acc.select(
            Activity, ACTIVITY, Activity.id, Activity.kind, Activity.subject, Activity.due_at, Activity.done_at,
            Activity.created_at, where=where)).order_by(Activity.due_at, ascending=False).limit(50))
    return out


@hookimpl
async def crm_record_panels(access: Access, model: str, record_id: int) -> Sequence[Panel]:
    from crm_contacts.api import PERSON_MODEL

    if model != PERSON_MODEL or access.principal is None:
        return []
    records = await _person_records(record_id, access)
    return [Panel(key="crm_sales", title=gettext("Sales"), template="crm_sales/panel_person.html", context=records,
                  order=20, count=len(records["deals"]))]


@hookimpl
async def crm_timeline_entries(access: Access, model: str, record_id: int) -> Sequence[TimelineEntry]:
    from crm_contacts.api import PERSON_MODEL

    if model != PERSON_MODEL or access.principal is None:
        return []
    records = await _person_records(record_id, access)
    out: list[TimelineEntry] = []
    for d in records["deals"]:
        out.append(TimelineEntry(at=_aware(d["created_at"]), kind="deal", title=f"Deal: {d['name']}",
                                 url=f"/sales/opportunities/{d['id']}", source="crm_sales"))
        if d["closed_at"]:
            out.append(TimelineEntry(at=_aware(d["closed_at"]), kind=f"deal_{d['state']}",
                                     title=f"Deal {d['state']}: {d['name']}", source="crm_sales",
                                     url=f"/sales/opportunities/{d['id']}"))
    for q in records["quotes"]:
        out.append(TimelineEntry(at=_aware(q["sent_at"] or q["created_at"]), kind="quote", source="crm_sales",
                                 title=f"Quote {q['number']} v{q['revision']} ({q['state']})",
                                 body=f"{q['total']} {q['currency']}", url=f"/sales/quotes/{q['id']}"))
    for o in records["orders"]:
        out.append(TimelineEntry(at=_aware(o["confirmed_at"]), kind="order", title=f"Order {o['reference']}",
                                 body=f"{o['total']} {o['currency']}", url=f"/sales/orders/{o['id']}",
                                 source="crm_sales"))
    for a in records["activities"]:
        out.append(TimelineEntry(at=_aware(a["done_at"] or a["due_at"]), kind=f"activity_{a['kind']}",
                                 title=a["subject"], body="done" if a["done_at"] else "planned",
                                 source="crm_sales"))
    return out


@hookimpl
async def crm_merge_records(model: str, survivor_id: int, loser_ids: list[int]) -> None:
    """Re-point deals, orders and activities of merged people to the survivor (inside the merge transaction)."""
    from crm_contacts.api import PERSON_MODEL

    from core.security import audit
    from crm_sales.models import Activity, Opportunity, Order

    if model != PERSON_MODEL or not loser_ids:
        return
    for table in (Opportunity, Order, Activity):
        moved = await table.update({table.person: survivor_id}).where(table.person.is_in(loser_ids)).returning(
            table.id)
        if moved:
            await audit.record("merge_repoint", model=f"crm_sales.{table._meta.tablename[10:]}",
                               record_id=survivor_id, detail=f"{len(moved)} row(s) from {loser_ids}")


@hookimpl
async def crm_dashboard_widgets(access: Access) -> Sequence[Widget]:
    """My open activities (who works deals), the latest orders (who reads them: sales, finance)."""
    from crm_sales.manifest import ACTIVITY, ORDER
    from crm_sales.models import Activity, Order
    from crm_sales.notify import unread

    user = access.principal
    if user is None:
        return []
    out: list[Widget] = []
    if access.can(ACTIVITY):
        mine = (Activity.owner == user.user_id) & Activity.done_at.is_null()
        due = await access.count(Activity, ACTIVITY,
                                 where=mine & (Activity.due_at <= dt.datetime.now(dt.UTC) + dt.timedelta(days=1)))
        upcoming = await (await access.select(Activity, ACTIVITY, Activity.id, Activity.kind, Activity.subject,
                                              Activity.due_at, where=mine)).order_by(Activity.due_at).limit(5)
        out.append(Widget(key="crm_sales", title=gettext("My open activities"), template="crm_sales/widget.html",
                          order=10, context={"due": due, "activities": upcoming,
                                             "notifications": await unread(user.user_id, 5)}))
    if access.can(ORDER):
        orders = await (await access.select(Order, ORDER, Order.id, Order.reference, Order.state, Order.confirmed_at,
                                            Order.opportunity.name)).order_by(Order.id, ascending=False).limit(5)
        out.append(Widget(key="crm_sales_orders", title=gettext("Latest orders"), order=40,
                          template="crm_sales/widget_orders.html", context={"orders": orders}))
    return out


@hookimpl
def crm_search_providers() -> Sequence[SearchProvider]:
    from crm_sales.search import providers

    return providers()


@hookimpl
def crm_datasets() -> Sequence[Dataset]:
    from crm_sales.search import datasets

    return datasets()


@hookimpl
def crm_owned_records() -> Sequence[OwnedRecords]:
    """Leads, deals, quotes and orders pass on when their owner leaves, and activities not done yet: a done
    activity stays with who did it."""
    from crm_sales.manifest import ACTIVITY, LEAD, OPPORTUNITY, ORDER, QUOTE
    from crm_sales.models import Activity, Lead, Opportunity, Order, Quote

    return [OwnedRecords(LEAD, gettext("Leads"), Lead, order=20),
            OwnedRecords(OPPORTUNITY, gettext("Deals"), Opportunity, order=21),
            OwnedRecords(QUOTE, gettext("Quotes"), Quote, order=22),
            OwnedRecords(ORDER, gettext("Orders"), Order, order=23),
            OwnedRecords(ACTIVITY, gettext("Open activities"), Activity, open_only=Activity.done_at.is_null(),
                         order=24)]
