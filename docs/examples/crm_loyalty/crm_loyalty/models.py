"""Tables of crm_loyalty: named ``crm_loyalty_<noun>``; a change here needs ``crm addons makemigrations``."""

from __future__ import annotations

from piccolo.columns import ForeignKey, Integer, Varchar
from piccolo.table import Table


class Tier(Table, tablename="crm_loyalty_tier"):
    name = Varchar(length=50)
    min_points = Integer(default=0)


class Account(Table, tablename="crm_loyalty_account"):
    customer = Varchar(length=200)
    points = Integer(default=0)
    tier = ForeignKey(Tier, null=True)
    version = Integer(default=1)  # optimistic concurrency for the REST API (409 on a stale write)
