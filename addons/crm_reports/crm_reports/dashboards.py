"""Dashboards: one per role out of the box, built from the datasets installed (a card whose dataset is missing
is left out), cards users add, remove, arrange and colour with KPI thresholds, shared with roles or users.

Defaults carry a ``template_key``: an upgrade (and the first visit after another addon brings a dataset)
refreshes a default dashboard only while nobody has edited it; editing a dashboard one does not own edits a
copy of one's own, so the original and everyone else's view stay as they were."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core import datasets
from core.errors import NotFound, ValidationError
from core.hooks import Dataset
from core.i18n import N_
from core.security import audit
from core.security.access import Access
from crm_reports.manifest import DASHBOARD
from crm_reports.models import Dashboard, Report
from crm_reports.reports import loaded, me, shared_with

MAX_CARDS = 24


@dataclass(frozen=True)
class CardTemplate:
    key: str
    name: str
    dataset: str
    dimensions: tuple[str, ...]
    measures: tuple[str, ...]
    chart: str
    condition: Any = None
    width: int = 1


@dataclass(frozen=True)
class DashboardTemplate:
    key: str
    name: str
    roles: tuple[str, ...]
    cards: tuple[CardTemplate, ...]


def _eq(field: str, value: Any) -> dict[str, Any]:
    return {"field": field, "op": "eq", "value": value}


def _in(field: str, values: list[str]) -> dict[str, Any]:
    return {"field": field, "op": "in", "value": values}


DEALS, ORDERS, BINDINGS, INVOICES = ("crm_sales.opportunities", "crm_sales.orders", "erp_bridge.bindings",
                                     "erp_bridge.invoices")
CAMPAIGNS, RECIPIENTS, EVENTS, SEGMENTS, TIERS, ROI = ("crm_marketing.campaigns", "crm_marketing.recipients",
                                                       "crm_marketing.events", "crm_marketing.segment_members",
                                                       "crm_marketing.tiers", "crm_marketing.campaign_roi")
TICKETS, USAGE = "crm_service.tickets", "core.usage"
_BACKLOG = _in("state", ["new", "open", "pending_customer", "pending_third_party"])
_WRITES = _in("action", ["create", "update", "delete", "archive", "merge", "assign", "transfer", "stage_move"])
TEMPLATES: tuple[DashboardTemplate, ...] = (
    DashboardTemplate("sales", N_("Sales"), ("sales_manager", "sales_rep"), (
        CardTemplate("sales.funnel", N_("Open pipeline by stage"), DEALS, ("stage",), ("expected_revenue",),
                     "funnel", _eq("state", "open")),
        CardTemplate("sales.won_by_month", N_("Won revenue by month"), DEALS, ("closed_at:month",),
                     ("expected_revenue",), "line", _eq("state", "won")),
        CardTemplate("sales.open_count", N_("Open deals"), DEALS, (), ("count",), "table", _eq("state", "open")),
        CardTemplate("sales.by_owner", N_("Open deals by owner"), DEALS, ("owner",), ("count", "expected_revenue"),
                     "bar", _eq("state", "open")),
        CardTemplate("sales.by_source", N_("Deals by source and state"), DEALS, ("source", "state"), ("count",),
                     "stacked_bar", None, 2),
        CardTemplate("sales.orders_by_month", N_("Orders by month"), ORDERS, ("confirmed_at:month",), ("total",),
                     "bar", _eq("state", "confirmed")),
        CardTemplate("sales.cycle_by_industry", N_("Deal cycle by industry (days)"), DEALS, ("industry",),
                     ("cycle_days",), "bar", _eq("state", "won")),
        CardTemplate("sales.cycle_by_owner", N_("Deal cycle by owner (days)"), DEALS, ("owner",), ("cycle_days",),
                     "bar", _eq("state", "won")),
    )),
    DashboardTemplate("marketing", N_("Marketing"), ("marketing",), (
        CardTemplate("marketing.segments", N_("Segment sizes"), SEGMENTS, ("segment",), ("count",), "bar"),
        CardTemplate("marketing.tiers", N_("Customers by value tier"), TIERS, ("tier",), ("count", "monetary"),
                     "pie"),
        CardTemplate("marketing.cost", N_("Campaign cost by state"), CAMPAIGNS, ("state",), ("cost", "count"),
                     "table"),
        # revenue of the orders attributed to each campaign (as the viewer may read orders), its cost and ROI
        CardTemplate("marketing.roi", N_("Campaign ROI"), ROI, ("campaign",), ("roi", "revenue", "cost"), "bar",
                     None, 2),
        CardTemplate("marketing.recipients", N_("Recipients by campaign and state"), RECIPIENTS,
                     ("campaign", "state"), ("count",), "stacked_bar", None, 2),
        CardTemplate("marketing.events", N_("Opens and clicks by campaign"), EVENTS, ("campaign", "kind"),
                     ("count",), "stacked_bar", _eq("is_scanner", False), 2),
    )),
    DashboardTemplate("service", N_("Service"), ("service_agent", "service_manager"), (
        CardTemplate("service.backlog", N_("Backlog by priority"), TICKETS, ("priority",), ("count",), "bar",
                     _BACKLOG),
        CardTemplate("service.backlog_count", N_("Open tickets"), TICKETS, (), ("count",), "table", _BACKLOG),
        CardTemplate("service.sla_resolution", N_("Resolution SLA breached"), TICKETS, ("resolution_breached",),
                     ("count",), "pie"),
        CardTemplate("service.sla_response", N_("First response SLA breached"), TICKETS,
                     ("first_response_breached",), ("count",), "pie"),
        CardTemplate("service.csat", N_("Customer rating (CSAT)"), TICKETS, (), ("csat",), "table"),
        CardTemplate("service.csat_by_team", N_("CSAT by team"), TICKETS, ("team",), ("csat", "count"), "bar"),
        CardTemplate("service.by_channel", N_("Tickets by channel and state"), TICKETS, ("channel", "state"),
                     ("count",), "stacked_bar", None, 2),
    )),
    DashboardTemplate("admin", N_("Administration"), ("admin",), (
        CardTemplate("admin.by_month", N_("Audited actions by month"), USAGE, ("at:month",), ("count",), "line",
                     None, 2),
        CardTemplate("admin.active_users", N_("Active users by month"), USAGE, ("at:month",), ("distinct:user_login",),
                     "bar"),
        CardTemplate("admin.writes", N_("Changes by model"), USAGE, ("model",), ("count",), "bar", _WRITES),
        CardTemplate("admin.by_user", N_("Changes by user"), USAGE, ("user",), ("count",), "bar", _WRITES),
        CardTemplate("admin.actions", N_("Audited actions by kind"), USAGE, ("action",), ("count",), "table"),
    )),
    DashboardTemplate("finance", N_("Finance"), ("finance",), (
        CardTemplate("finance.orders", N_("Orders by state"), ORDERS, ("state",), ("count", "total"), "table"),
        CardTemplate("finance.sync", N_("Synced and unsynced orders"), BINDINGS, ("state",), ("count",), "pie"),
        CardTemplate("finance.invoices", N_("Invoices paid and unpaid"), INVOICES, ("is_paid",),
                     ("count", "amount_to_pay"), "bar"),
        CardTemplate("finance.won_by_month", N_("Won revenue by month"), DEALS, ("closed_at:month",),
                     ("expected_revenue",), "line", _eq("state", "won"), 2),
    )),
)


async def _installed() -> dict[str, Dataset]:
    return {d.key: d for d in await datasets.datasets()}


def _fits(ds: Dataset, card: CardTemplate) -> bool:
    dims = {d.name for d in ds.dimensions}
    meas = {m.name for m in ds.measures}
    columns = {d.column for d in ds.dimensions}  # "distinct:user_login": an aggregate over a declared column
    return all(d.partition(":")[0] in dims for d in card.dimensions) and all(
        m in meas or m.partition(":")[2] in columns for m in card.measures)


async def _report_for(card: CardTemplate, roles: Sequence[str]) -> int:
    spec = {"dimensions": list(card.dimensions), "measures": list(card.measures), "condition": card.condition,
            "sort": "", "limit": 500, "totals": False}
    found = await Report.select(Report.id).where(Report.template_key == card.key).first()
    values: dict[Any, Any] = {Report.name: card.name, Report.dataset: card.dataset, Report.spec: spec,
                              Report.chart: card.chart, Report.shared_roles: list(roles)}
    if found:
        await Report.update(values).where(Report.id == found["id"])
        return int(found["id"])
    row = Report(name=card.name, dataset=card.dataset, spec=spec, chart=card.chart, shared_roles=list(roles),
                 template_key=card.key, owner=None)
    return int((await Report.insert(row).returning(Report.id))[0]["id"])


_DONE: set[tuple[str, frozenset[str], int]] = set()


async def upgrade(*_: Any, **__: Any) -> int:
    """The addon's upgrade step: the defaults refreshed whatever this process did before."""
    _DONE.clear()
    return await refresh_defaults()


async def refresh_defaults() -> int:
    """Create the default dashboards (and their reports) the installed datasets allow; refresh those nobody
    edited. Idempotent; returns how many dashboards were written. Pages call it (an addon installed later brings
    its datasets): once per process, database and set of datasets, so a page view costs nothing after the first."""
    from core import db

    installed = await _installed()
    engine = db.current()
    # the database, the datasets, and how many defaults it holds (a reinstall after a purge starts again)
    key = (repr(getattr(engine, "path", None) or getattr(engine, "config", None)), frozenset(installed),
           await Dashboard.count().where(Dashboard.template_key != ""))
    if key in _DONE:
        return 0
    written = 0
    for tpl in TEMPLATES:
        cards = [c for c in tpl.cards if c.dataset in installed and _fits(installed[c.dataset], c)]
        if not cards:
            continue
        current = await Dashboard.select(Dashboard.id, Dashboard.edited, Dashboard.cards).where(
            Dashboard.template_key == tpl.key).first()
        current = loaded(current) if current else None
        if current and current["edited"]:
            continue  # someone arranged it: theirs now
        laid = [{"report": await _report_for(c, tpl.roles), "width": c.width} for c in cards]
        if current is None:
            await Dashboard.insert(Dashboard(name=tpl.name, cards=laid, shared_roles=list(tpl.roles),
                                             template_key=tpl.key, owner=None))
            written += 1
        elif current["cards"] != laid:
            await Dashboard.update({Dashboard.cards: laid, Dashboard.name: tpl.name}).where(
                Dashboard.id == current["id"])
            written += 1
    _DONE.add((key[0], key[1], await Dashboard.count().where(Dashboard.template_key != "")))
    return written


async def visible(acc: Access) -> list[dict[str, Any]]:
    if not acc.can(DASHBOARD):
        return []
    rows = await (await acc.select(Dashboard, DASHBOARD, Dashboard.id, Dashboard.name, Dashboard.owner,
                                   Dashboard.shared_roles, Dashboard.shared_users, Dashboard.template_key)
                  ).order_by(Dashboard.id).limit(500)
    return [loaded(r) for r in rows if shared_with(acc, loaded(r))]


async def get(acc: Access, dashboard_id: int) -> dict[str, Any]:
    row = loaded(await acc.get(Dashboard, DASHBOARD, dashboard_id))
    if not shared_with(acc, row):
        raise NotFound(f"no dashboard {dashboard_id}")
    return row


async def home(acc: Access) -> dict[str, Any] | None:
    """The dashboard to open first: the user's own, else the first shared with them."""
    await refresh_defaults()
    found = await visible(acc)
    own = [d for d in found if d["owner"] == me(acc).user_id]
    first = own or found
    return first[0] if first else None


async def writable(acc: Access, dashboard_id: int) -> int:
    """The id of the dashboard this user edits for ``dashboard_id``: it if theirs (or they administer), else
    their own copy of it, made on the first edit."""
    row = await get(acc, dashboard_id)
    if row["owner"] == me(acc).user_id or (me(acc).is_admin and row["owner"] is None):
        return dashboard_id
    copy = await Dashboard.select(Dashboard.id).where(
        (Dashboard.owner == me(acc).user_id) & (Dashboard.name == row["name"])).first()
    if copy:
        return int(copy["id"])
    await acc.require(DASHBOARD, "create")
    new = Dashboard(name=row["name"], cards=row["cards"], owner=me(acc).user_id, edited=True,
                    refresh_seconds=row["refresh_seconds"])
    new_id = int((await Dashboard.insert(new).returning(Dashboard.id))[0]["id"])
    await audit.record("create", model=DASHBOARD, record_id=new_id, detail=f"copy of {dashboard_id}")
    return new_id


def _threshold(raw: Any, field: str) -> float | None:
    if raw in (None, ""):
        return None
    try:
        return float(raw)
    except (TypeError, ValueError):
        raise ValidationError({field: "must be a number"}) from None


async def set_cards(acc: Access, dashboard_id: int, cards: Sequence[Mapping[str, Any]]) -> int:
    """Replace the cards (order = position). Each names a report the user may open; thresholds are numbers."""
    target = await writable(acc, dashboard_id)
    await acc.get(Dashboard, DASHBOARD, target, action="update")
    out = await checked_cards(acc, cards)
    await Dashboard.update({Dashboard.cards: out, Dashboard.edited: True,
                            Dashboard.version: Dashboard.version + 1}).where(Dashboard.id == target)
    await audit.record("update", model=DASHBOARD, record_id=target, changes={"cards": [None, out]})
    return target


async def checked_cards(acc: Access, cards: Any) -> list[dict[str, Any]]:
    """``cards`` as stored: each names a report ``acc`` may open (a card is a reference, checked like a read of
    the report), width 1 or 2, thresholds numbers; a 422 naming the card's field otherwise."""
    from crm_reports import reports

    if not isinstance(cards, (list, tuple)):
        raise ValidationError({"cards": "must be a list"})
    if len(cards) > MAX_CARDS:
        raise ValidationError({"cards": f"at most {MAX_CARDS} cards"})
    out = []
    for i, card in enumerate(cards):
        try:
            report_id = int(card["report"])
        except (KeyError, TypeError, ValueError):
            raise ValidationError({f"cards[{i}].report": "must be a report id"}) from None
        try:
            await reports.get(acc, report_id)
        except NotFound:
            raise ValidationError({f"cards[{i}].report": f"no report {report_id}"}) from None
        width = 2 if str(card.get("width", 1)) == "2" else 1
        out.append({"report": report_id, "width": width,
                    "warn_below": _threshold(card.get("warn_below"), f"cards[{i}].warn_below"),
                    "good_above": _threshold(card.get("good_above"), f"cards[{i}].good_above")})
    return out


async def pin(acc: Access, dashboard_id: int, report_id: int) -> int:
    row = await get(acc, dashboard_id)
    cards = [c for c in row["cards"] if c.get("report") != report_id] + [{"report": report_id, "width": 1}]
    return await set_cards(acc, dashboard_id, cards)


async def share(acc: Access, dashboard_id: int, roles: Sequence[str], users: Sequence[int]) -> None:
    await acc.get(Dashboard, DASHBOARD, dashboard_id, action="update")
    await Dashboard.update({Dashboard.shared_roles: list(roles), Dashboard.shared_users: [int(u) for u in users],
                            Dashboard.edited: True}).where(Dashboard.id == dashboard_id)
    await audit.record("update", model=DASHBOARD, record_id=dashboard_id,
                       changes={"shared_roles": [None, list(roles)], "shared_users": [None, list(users)]})


def colour(value: Any, card: Mapping[str, Any]) -> str:
    """A KPI card's state: ``bad`` under ``warn_below``, ``good`` over ``good_above``, else ``""``."""
    if value is None:
        return ""
    number = float(value)
    if card.get("warn_below") is not None and number < float(card["warn_below"]):
        return "bad"
    if card.get("good_above") is not None and number > float(card["good_above"]):
        return "good"
    return ""
