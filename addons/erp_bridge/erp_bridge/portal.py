"""The customer portal's invoices (kernel hooks ``crm_portal_sections`` and ``crm_portal_document``): the ERP
invoices and credit notes last pulled (``RemoteInvoice``) for the customer's own orders — number, date, amount,
paid or not. Drafts and documents deleted in the ERP are not the customer's to see; another customer's invoice
id is ``None``, a 404 like an id that does not exist."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.hooks import PortalCustomer, PortalDocument, PortalSection, hookimpl
from core.i18n import gettext
from erp_bridge import sales
from erp_bridge.models import RemoteInvoice

SECTION = "erp_bridge_invoices"
LIMIT = 100


async def _references(person_id: int) -> list[str]:
    return [o.reference for o in (await sales.get_orders(await sales.order_ids(person_id=person_id))).values()
            if o.reference]


def _visible(refs: list[str]) -> Any:
    return (RemoteInvoice.order_reference.is_in(refs) & RemoteInvoice.deleted_at.is_null()
            & (RemoteInvoice.state != "draft"))


@hookimpl
async def crm_portal_sections(customer: PortalCustomer) -> Sequence[PortalSection]:
    refs = await _references(customer.person_id)
    rows = [] if not refs else await RemoteInvoice.select(
        RemoteInvoice.id, RemoteInvoice.number, RemoteInvoice.kind, RemoteInvoice.state, RemoteInvoice.invoice_date,
        RemoteInvoice.due_date, RemoteInvoice.currency, RemoteInvoice.total, RemoteInvoice.amount_to_pay,
        RemoteInvoice.is_paid, RemoteInvoice.order_reference).where(_visible(refs)).order_by(
        RemoteInvoice.id, ascending=False).limit(LIMIT)
    return [PortalSection(key=SECTION, title=gettext("Your invoices"), template="erp_bridge/portal_invoices.html",
                          context={"rows": rows}, order=130)]


@hookimpl
async def crm_portal_document(customer: PortalCustomer, section: str, record_id: int,
                              view: str) -> PortalDocument | None:
    if section != SECTION or view:
        return None
    refs = await _references(customer.person_id)
    row = await RemoteInvoice.select().where((RemoteInvoice.id == record_id) & _visible(refs)).first() \
        if refs else None
    if row is None:
        return None
    title = gettext("Invoice %(number)s") % {"number": row["number"] or row["external_id"]}
    return PortalDocument(title=title, template="erp_bridge/portal_invoice.html", context={"i": row})
