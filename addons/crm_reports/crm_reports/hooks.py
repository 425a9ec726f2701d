"""Hook implementations of crm_reports: the home page links the user's first dashboard; the JSON API."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.hooks import Widget, hookimpl
from core.i18n import gettext
from core.security.access import Access


@hookimpl
async def crm_dashboard_widgets(access: Access) -> Sequence[Widget]:
    from crm_reports import dashboards

    found = await dashboards.visible(access)
    if not found:
        return []
    return [Widget(key="crm_reports", title=gettext("Dashboards"), template="crm_reports/widget.html",
                   context={"dashboards": found[:5]}, order=60)]


@hookimpl
def crm_api_resources() -> Any:
    from crm_reports.resources import resources

    return resources()
