"""What crm_loyalty adds to the kernel's pages and API (every hook is declared in ``core.hooks``)."""

from __future__ import annotations

from collections.abc import Sequence

from core.api import Resource
from core.hooks import Widget, hookimpl
from core.i18n import gettext
from core.security.access import Access

MODEL = "crm_loyalty.account"


@hookimpl
def crm_api_resources() -> Sequence[Resource]:
    from crm_loyalty.models import Account

    return [Resource(path="/loyalty/accounts", model=MODEL, table=Account,
                     fields=("customer", "points", "tier", "version"), writable=("customer",),
                     required=("customer",), sortable=("id", "points"))]


@hookimpl
async def crm_dashboard_widgets(access: Access) -> Sequence[Widget]:
    """A card with the accounts this user may read; nothing for a user who may read none."""
    from crm_loyalty.models import Account

    if not access.can(MODEL):
        return []
    accounts = await access.count(Account, MODEL)
    return [Widget(key="crm_loyalty", title=gettext("Loyalty"), template="crm_loyalty/widget.html",
                   context={"accounts": accounts}, order=60)]
