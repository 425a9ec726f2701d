"""crm_sales' global-search providers and reporting datasets."""

from __future__ import annotations

from collections.abc import Sequence

from core.hooks import Dataset, Dimension, Measure, SearchHit, SearchProvider
from core.i18n import gettext
from core.search import contains
from core.security.access import Access
from crm_sales.manifest import LEAD, OPPORTUNITY, ORDER


async def _deals(access: Access, query: str, limit: int) -> Sequence[SearchHit]:
    from crm_sales.models import Opportunity

    if not access.can(OPPORTUNITY):
        return []
    rows = await (await access.select(Opportunity, OPPORTUNITY, Opportunity.id, Opportunity.name, Opportunity.state,
                                      where=contains(Opportunity.name, query))).order_by(
        Opportunity.id, ascending=False).limit(limit)
    return [SearchHit(title=r["name"], subtitle=gettext(r["state"]), url=f"/sales/opportunities/{r['id']}",
                      kind="deals") for r in rows]


async def _leads(access: Access, query: str, limit: int) -> Sequence[SearchHit]:
    from crm_sales.models import Lead

    if not access.can(LEAD):
        return []
    # names only: a lead's phone and e-mail may be masked for the searching role
    where = contains(Lead.name, query) | contains(Lead.company_name, query)
    rows = await (await access.select(Lead, LEAD, Lead.id, Lead.name, Lead.company_name, where=where)).order_by(
        Lead.id, ascending=False).limit(limit)
    return [SearchHit(title=r["name"], subtitle=r["company_name"], url=f"/sales/leads/{r['id']}", kind="leads")
            for r in rows]


def providers() -> list[SearchProvider]:
    return [SearchProvider(kind="deals", label=gettext("Deals"), search=_deals, order=20),
            SearchProvider(kind="leads", label=gettext("Leads"), search=_leads, order=21)]


def datasets() -> list[Dataset]:
    from crm_sales.models import Opportunity, Order, OrderLine

    return [Dataset(
        key="crm_sales.opportunities", label=gettext("Deals"), model=OPPORTUNITY, table=Opportunity,
        dimensions=(Dimension("state", gettext("State"), "state"), Dimension("stage", gettext("Stage"), "stage"),
                    Dimension("currency", gettext("Currency"), "currency"),
                    Dimension("source", gettext("Source"), "source"), Dimension("region", gettext("Region"), "region"),
                    Dimension("owner", gettext("Owner"), "owner"),
                    Dimension("industry", gettext("Industry"), "industry"),
                    Dimension("created_at", gettext("Created"), "created_at"),
                    Dimension("closed_at", gettext("Closed"), "closed_at"),
                    Dimension("expected_close", gettext("Expected close"), "expected_close")),
        measures=(Measure("count", gettext("Number of deals"), "count"),
                  Measure("expected_revenue", gettext("Expected revenue"), "sum", "expected_revenue"),
                  Measure("probability", gettext("Average probability"), "avg", "probability"),
                  # days from creation to closing: report it over won deals for the sales cycle
                  Measure("cycle_days", gettext("Deal cycle (days)"), "avg", span=("created_at", "closed_at"))),
        drill="/sales/opportunities"),
        Dataset(key="crm_sales.orders", label=gettext("Orders"), model=ORDER, table=Order,
                dimensions=(Dimension("state", gettext("State"), "state"),
                            Dimension("currency", gettext("Currency"), "currency"),
                            Dimension("owner", gettext("Owner"), "owner"),
                            Dimension("person", gettext("Customer"), "person"),
                            Dimension("confirmed_at", gettext("Confirmed"), "confirmed_at")),
                measures=(Measure("count", gettext("Number of orders"), "count"),
                          Measure("total", gettext("Total"), "sum", "total"),
                          Measure("untaxed", gettext("Untaxed amount"), "sum", "untaxed"))),
        # what was bought: crm_marketing's segment filter "bought product X" reads it by key, never the model
        Dataset(key="crm_sales.order_lines", label=gettext("Order lines"), model=ORDER, table=OrderLine,
                dimensions=(Dimension("order", gettext("Order"), "order"),
                            Dimension("code", gettext("Product code"), "code")),
                measures=(Measure("count", gettext("Number of lines"), "count"),
                          Measure("quantity", gettext("Quantity"), "sum", "quantity"),
                          Measure("total", gettext("Total"), "sum", "total")))]
