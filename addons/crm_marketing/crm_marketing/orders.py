"""Orders as crm_marketing sees them: the kernel's datasets ``crm_sales.orders`` and ``crm_sales.order_lines``.

crm_marketing never imports crm_sales (it installs and works without it): when an addon provides these
datasets, their tables are read by name in SQL — RFM scores (``rfm``) and the segment filters over orders
(``segments``: bought product X, days since the last order, total spent). Only confirmed orders count, and
money is summed in one currency (:data:`CURRENCY`): totals in different currencies do not add up.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

ORDERS = "crm_sales.orders"
LINES = "crm_sales.order_lines"
#: the currency RFM's monetary score and the "total spent" filter sum (orders in others are left out)
CURRENCY = os.environ.get("CRM_X_MARKETING_CURRENCY", "CNY").upper()[:3]
#: PostgreSQL, for a transaction grouping every customer's orders (RFM, a segment's build): walking the index on
#: the orders' person reads, per order, a heap page out of order (orders are stored by date) — at 3M orders
#: 8.1–9.6 s against 3.8–4.3 s for a sequential scan and a hash aggregate (2026-12-02, load 6–7), yet the planner
#: prices the aggregate's spill above it. Bitmap scans stay: a few people's orders are still found by the index.
GROUPED_BY_HASH = "SET LOCAL enable_indexscan = off"


@dataclass(frozen=True)
class Source:
    """The tables holding orders (``person``, ``state``, ``currency``, ``total``, ``confirmed_at``) and their
    lines (``order``, ``code``); ``lines`` is empty when no addon declares an order-lines dataset."""

    orders: str
    lines: str = ""


async def source() -> Source | None:
    """Where orders are, or None when no installed addon provides them (crm_sales absent)."""
    from core import datasets

    found = {d.key: d for d in await datasets.datasets() if d.key in (ORDERS, LINES)}
    if ORDERS not in found:
        return None
    lines = found.get(LINES)
    return Source(found[ORDERS].table._meta.tablename, lines.table._meta.tablename if lines else "")
