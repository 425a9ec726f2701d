"""Helpers shared by crm_sales tests (a uniquely named module: tests of several addons run together)."""

from __future__ import annotations

from typing import Any

from core.security.access import Access


async def new_deal(acc: Access, name: str = "Deal", revenue: str = "1000", **extra: Any) -> int:
    """A deal through the real path: a lead, qualified (which creates or matches the contact)."""
    from crm_sales import leads, pipeline

    lead_id = await leads.create_lead(acc, {"name": name, "contact_name": extra.pop("contact", f"{name} Buyer"),
                                            "email": extra.pop("email", ""), "expected_revenue": revenue,
                                            "language": extra.pop("language", "zh_CN"), **extra})
    return await pipeline.qualify(acc, lead_id)
