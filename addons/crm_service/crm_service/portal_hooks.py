"""Hook implementations of the customer portal that are not pages: the demo's portal sign-in for ``crm demo``."""

from __future__ import annotations

from collections.abc import Sequence

from core.hooks import DemoLogin, hookimpl


@hookimpl
async def crm_demo_logins() -> Sequence[DemoLogin]:
    """The demo portal customer (``demo/crm_service_portal_account.csv``), when the demo data is installed."""
    from core.demo import DEMO_PASSWORD
    from core.i18n import gettext
    from core.models import ExternalId
    from core.runtime import current
    from crm_service.models import PortalAccount
    from crm_service.portal import BASE

    bound = await ExternalId.select(ExternalId.record_id).where(
        (ExternalId.addon == "crm_service") & (ExternalId.key == "demo_portal_account")).first()
    if bound is None:
        return []
    row = await PortalAccount.select(PortalAccount.email).where(PortalAccount.id == bound["record_id"]).first()
    if row is None:
        return []
    return [DemoLogin(label=gettext("customer portal"), url=f"{current().settings.base_url}{BASE}/login",
                      login=row["email"], password=DEMO_PASSWORD)]
