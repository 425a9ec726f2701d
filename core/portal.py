"""The customer portal's content: each installed addon's section for the signed-in customer
(``crm_portal_sections``), one record of a section (``crm_portal_document``) and what the customer may do with it
(``crm_portal_action``). The portal pages themselves (sign-in, session, CSRF) belong to the addon that serves
customers; the addons owning the records decide what is the customer's."""

from __future__ import annotations

from collections.abc import Mapping

from core import hooks
from core.hooks import PortalCustomer, PortalDocument, PortalSection


async def sections(customer: PortalCustomer) -> list[PortalSection]:
    """What ``customer`` may see, in display order."""
    found: list[PortalSection] = await hooks.call("crm_portal_sections", customer=customer)
    return sorted(found, key=lambda s: s.order)


async def document(customer: PortalCustomer, section: str, record_id: int, view: str = "") -> PortalDocument | None:
    """The customer's own record of ``section`` (page or download), or None (not theirs, no such section)."""
    found: list[PortalDocument] = await hooks.call("crm_portal_document", customer=customer, section=section,
                                                   record_id=record_id, view=view)
    return found[0] if found else None


async def act(customer: PortalCustomer, section: str, record_id: int, action: str, form: Mapping[str, str]) -> bool:
    """Run ``action`` on the customer's own record; False when no addon owns it for them (the caller's 404)."""
    done = await hooks.call("crm_portal_action", customer=customer, section=section, record_id=record_id,
                            action=action, form=form)
    return any(done)
