"""The customer portal's content: each installed addon's section for the signed-in customer
(``crm_portal_sections``). The portal pages themselves belong to the addon that serves customers."""

from __future__ import annotations

from core import hooks
from core.hooks import PortalCustomer, PortalSection


async def sections(customer: PortalCustomer) -> list[PortalSection]:
    """What ``customer`` may see, in display order."""
    found: list[PortalSection] = await hooks.call("crm_portal_sections", customer=customer)
    return sorted(found, key=lambda s: s.order)
