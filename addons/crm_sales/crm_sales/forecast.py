"""The forecast: weighted pipeline (expected revenue × probability) by month of expected close, per owner or
team, next to the revenue already won in that month. Amounts stay ``Decimal`` and are kept per currency."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from core.security.access import Access
from crm_sales.manifest import OPPORTUNITY
from crm_sales.models import Opportunity
from crm_sales.pricing import round_money

CENT = Decimal("0.01")


@dataclass
class Cell:
    pipeline: Decimal = Decimal(0)  # open deals' expected revenue
    weighted: Decimal = Decimal(0)  # … × probability
    won: Decimal = Decimal(0)  # won deals closed that month
    deals: int = 0


@dataclass
class Forecast:
    group_by: str
    months: list[str]
    groups: dict[str, str]  # key → label
    cells: dict[tuple[str, str, str], Cell] = field(default_factory=dict)  # (group, month, currency)

    def as_json(self) -> dict[str, Any]:
        rows = [{"group": g, "label": self.groups.get(g, g), "month": m, "currency": c,
                 "pipeline": str(cell.pipeline), "weighted": str(cell.weighted), "won": str(cell.won),
                 "deals": cell.deals} for (g, m, c), cell in sorted(self.cells.items())]
        return {"group_by": self.group_by, "months": self.months, "rows": rows}


def _month(day: dt.date | dt.datetime | None) -> str:
    return day.strftime("%Y-%m") if day else "none"


async def forecast(acc: Access, *, group_by: str = "owner", start: dt.date | None = None, months: int = 6) -> Forecast:
    """The forecast over the deals this user may see, from ``start``'s month for ``months`` months."""
    if group_by not in ("owner", "team"):
        group_by = "owner"
    start = (start or dt.date.today()).replace(day=1)
    labels: list[str] = []
    y, m = start.year, start.month
    for _ in range(max(1, min(months, 24))):
        labels.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    col = Opportunity.owner if group_by == "owner" else Opportunity.team
    query = await acc.select(Opportunity, OPPORTUNITY, Opportunity.state, Opportunity.expected_revenue,
                             Opportunity.currency, Opportunity.probability, Opportunity.expected_close,
                             Opportunity.closed_at, col, col.name,
                             where=Opportunity.state.is_in(["open", "won"]))
    out = Forecast(group_by=group_by, months=labels, groups={})
    cells: dict[tuple[str, str, str], Cell] = defaultdict(Cell)
    for row in await query:
        key = str(row[group_by] or "")
        out.groups[key] = row[f"{group_by}.name"] or "—"
        revenue = Decimal(row["expected_revenue"] or 0)
        if row["state"] == "open":
            month = _month(row["expected_close"])
            if month not in labels:
                continue
            cell = cells[(key, month, row["currency"])]
            cell.pipeline += revenue
            cell.weighted += revenue * Decimal(row["probability"]) / 100
            cell.deals += 1
        else:
            month = _month(row["closed_at"])
            if month in labels:
                cells[(key, month, row["currency"])].won += revenue
    for (group, month, currency), cell in cells.items():
        cell.weighted = round_money(cell.weighted, currency)
        out.cells[(group, month, currency)] = cell
    return out
