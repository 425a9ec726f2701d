from core.api import Resource
from core.hooks import Widget, hookimpl


@hookimpl
def crm_api_resources():
    from crm_loyalty.models import Account

    return [Resource(path="/loyalty/accounts", model="crm_loyalty.account", table=Account,
                     fields=("customer", "points", "tier", "version"), writable=("customer",),
                     required=("customer",), sortable=("id", "points"))]


@hookimpl
def crm_dashboard_widgets(access):
    return Widget(key="loyalty", title="Loyalty", template="crm_loyalty/widget.html")
